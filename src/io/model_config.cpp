#include "io/model_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"

namespace dsvl2 {

namespace {

using json = nlohmann::json;

// Readers for optional keys: absent or null keeps the default; wrong type or
// out-of-range value is an Error naming the file and key.
struct Reader {
  const json& j;
  std::string what;  // "config.json: language_config"

  bool present(const char* k) const { return j.contains(k) && !j[k].is_null(); }

  void get_int(const char* k, int* v, long lo, long hi) const {
    if (!present(k)) return;
    const json& x = j[k];
    if (!x.is_number_integer()) DSVL2_FAIL("%s.%s: expected an integer, got %s", what.c_str(), k, x.dump().c_str());
    if (x.is_number_unsigned() && x.get<uint64_t>() > uint64_t(hi))  // would wrap in get<long>
      DSVL2_FAIL("%s.%s = %s is out of range [%ld, %ld]", what.c_str(), k, x.dump().c_str(), lo, hi);
    long n = x.get<long>();
    if (n < lo || n > hi) DSVL2_FAIL("%s.%s = %ld is out of range [%ld, %ld]", what.c_str(), k, n, lo, hi);
    *v = int(n);
  }
  void get_double(const char* k, double* v, double lo, double hi) const {
    if (!present(k)) return;
    const json& x = j[k];
    if (!x.is_number()) DSVL2_FAIL("%s.%s: expected a number, got %s", what.c_str(), k, x.dump().c_str());
    double d = x.get<double>();
    if (!(d >= lo && d <= hi)) DSVL2_FAIL("%s.%s = %g is out of range [%g, %g]", what.c_str(), k, d, lo, hi);
    *v = d;
  }
  void get_bool(const char* k, bool* v) const {
    if (!present(k)) return;
    if (!j[k].is_boolean()) DSVL2_FAIL("%s.%s: expected true/false, got %s", what.c_str(), k, j[k].dump().c_str());
    *v = j[k].get<bool>();
  }
  void get_string(const char* k, std::string* v) const {
    if (!present(k)) return;
    if (!j[k].is_string()) DSVL2_FAIL("%s.%s: expected a string, got %s", what.c_str(), k, j[k].dump().c_str());
    *v = j[k].get<std::string>();
  }
};

json parse_json(const std::string& text, const std::string& what) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) DSVL2_FAIL("%s: expected a JSON object", what.c_str());
    return j;
  } catch (const json::exception& e) {
    DSVL2_FAIL("%s: invalid JSON: %s", what.c_str(), e.what());
  }
}

std::vector<std::pair<int, int>> parse_resolutions(const json& j, const std::string& what) {
  std::vector<std::pair<int, int>> out;
  if (!j.is_array() || j.empty() || j.size() > 1024) DSVL2_FAIL("%s.candidate_resolutions: expected a non-empty array", what.c_str());
  for (const json& r : j) {
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer())
      DSVL2_FAIL("%s.candidate_resolutions: each entry must be [height, width], got %s", what.c_str(), r.dump().c_str());
    long h = r[0].get<long>(), w = r[1].get<long>();
    if (h < 1 || h > 16384 || w < 1 || w > 16384)
      DSVL2_FAIL("%s.candidate_resolutions: %s out of range", what.c_str(), r.dump().c_str());
    out.emplace_back(int(h), int(w));
  }
  return out;
}

constexpr long kMaxDim = 1 << 16;

}  // namespace

VLConfig parse_vl_config(const std::string& text, const std::string& what) {
  json root = parse_json(text, what);
  VLConfig c;
  Reader top{root, what};
  top.get_string("tile_tag", &c.tile_tag);
  top.get_string("global_view_pos", &c.global_view_pos);
  if (root.contains("candidate_resolutions")) c.candidate_resolutions = parse_resolutions(root["candidate_resolutions"], what);

  if (root.contains("vision_config")) {
    const json& v = root["vision_config"];
    if (!v.is_object()) DSVL2_FAIL("%s.vision_config: expected an object", what.c_str());
    Reader r{v, what + ": vision_config"};
    VisionConfig& x = c.vision;
    r.get_string("model_name", &x.model_name);
    r.get_int("layers", &x.layers, 1, 256);
    r.get_int("width", &x.width, 1, kMaxDim);
    r.get_int("heads", &x.heads, 1, 1024);
    r.get_double("mlp_ratio", &x.mlp_ratio, 0.01, 64);
    r.get_int("patch_size", &x.patch_size, 1, 1024);
    r.get_int("image_size", &x.image_size, 1, 8192);
    r.get_bool("ignore_head", &x.ignore_head);
    r.get_string("global_pool", &x.global_pool);
    if (x.width % x.heads) DSVL2_FAIL("%s: vision width %d is not divisible by heads %d", what.c_str(), x.width, x.heads);
    if (x.image_size < x.patch_size) DSVL2_FAIL("%s: vision image_size < patch_size", what.c_str());
    if (x.mlp_hidden() < 1) DSVL2_FAIL("%s: vision MLP width int(width*mlp_ratio) < 1", what.c_str());
  }
  if (root.contains("projector_config")) {
    const json& v = root["projector_config"];
    if (!v.is_object()) DSVL2_FAIL("%s.projector_config: expected an object", what.c_str());
    Reader r{v, what + ": projector_config"};
    ProjectorConfig& x = c.projector;
    r.get_string("projector_type", &x.projector_type);
    r.get_int("input_dim", &x.input_dim, 1, kMaxDim);
    r.get_int("n_embed", &x.n_embed, 1, kMaxDim);
    r.get_int("depth", &x.depth, 1, 64);
    r.get_int("mlp_ratio", &x.mlp_ratio, 1, 64);
    r.get_int("downsample_ratio", &x.downsample_ratio, 1, 16);
  }
  if (!root.contains("language_config") || !root["language_config"].is_object())
    DSVL2_FAIL("%s: missing \"language_config\" object", what.c_str());
  {
    const json& v = root["language_config"];
    Reader r{v, what + ": language_config"};
    LanguageConfig& x = c.language;
    r.get_int("vocab_size", &x.vocab_size, 1, 10'000'000);
    r.get_int("hidden_size", &x.hidden_size, 1, kMaxDim);
    r.get_int("intermediate_size", &x.intermediate_size, 1, 1 << 20);
    r.get_int("moe_intermediate_size", &x.moe_intermediate_size, 1, 1 << 20);
    r.get_int("num_hidden_layers", &x.num_hidden_layers, 1, 512);
    r.get_int("num_attention_heads", &x.num_attention_heads, 1, 1024);
    r.get_int("num_key_value_heads", &x.num_key_value_heads, 1, 1024);
    r.get_int("n_shared_experts", &x.n_shared_experts, 0, 1024);
    r.get_int("n_routed_experts", &x.n_routed_experts, 0, 4096);
    r.get_double("routed_scaling_factor", &x.routed_scaling_factor, 0, 1e6);
    // null means "absent" for the LoRA ranks (MHA configs and no-q-LoRA MLA).
    if (v.contains("kv_lora_rank") && v["kv_lora_rank"].is_null()) x.kv_lora_rank = 0;
    if (v.contains("q_lora_rank") && v["q_lora_rank"].is_null()) x.q_lora_rank = 0;
    r.get_int("kv_lora_rank", &x.kv_lora_rank, 0, kMaxDim);
    r.get_int("q_lora_rank", &x.q_lora_rank, 0, kMaxDim);
    r.get_int("qk_rope_head_dim", &x.qk_rope_head_dim, 0, 4096);
    r.get_int("v_head_dim", &x.v_head_dim, 0, 4096);
    r.get_int("qk_nope_head_dim", &x.qk_nope_head_dim, 0, 4096);
    r.get_string("topk_method", &x.topk_method);
    if (x.topk_method == "gready") x.topk_method = "greedy";  // the class default's spelling
    r.get_int("n_group", &x.n_group, 1, 4096);
    r.get_int("topk_group", &x.topk_group, 1, 4096);
    r.get_int("num_experts_per_tok", &x.num_experts_per_tok, 0, 4096);
    r.get_int("moe_layer_freq", &x.moe_layer_freq, 1, 512);
    r.get_int("first_k_dense_replace", &x.first_k_dense_replace, 0, 512);
    r.get_bool("norm_topk_prob", &x.norm_topk_prob);
    r.get_double("aux_loss_alpha", &x.aux_loss_alpha, 0, 1e6);
    r.get_string("scoring_func", &x.scoring_func);
    r.get_string("hidden_act", &x.hidden_act);
    r.get_int("max_position_embeddings", &x.max_position_embeddings, 1, 1 << 24);
    r.get_double("rms_norm_eps", &x.rms_norm_eps, 0, 1);
    r.get_double("rope_theta", &x.rope_theta, 1, 1e12);
    r.get_bool("attention_bias", &x.attention_bias);
    r.get_bool("use_mla", &x.use_mla);
    r.get_int("bos_token_id", &x.bos_token_id, 0, 10'000'000);
    r.get_int("eos_token_id", &x.eos_token_id, 0, 10'000'000);
    if (r.present("rope_scaling")) {
      const json& rs = v["rope_scaling"];
      if (!rs.is_object()) DSVL2_FAIL("%s: language_config.rope_scaling: expected an object or null", what.c_str());
      Reader s{rs, what + ": language_config.rope_scaling"};
      RopeScaling& y = x.rope_scaling;
      s.get_string("type", &y.type);
      if (y.type.empty()) s.get_string("rope_type", &y.type);
      s.get_double("factor", &y.factor, 1e-6, 1e6);
      s.get_int("original_max_position_embeddings", &y.original_max_position_embeddings, 1, 1 << 24);
      s.get_double("beta_fast", &y.beta_fast, 0, 1e6);
      s.get_double("beta_slow", &y.beta_slow, 0, 1e6);
      s.get_double("mscale", &y.mscale, 0, 1e6);
      s.get_double("mscale_all_dim", &y.mscale_all_dim, 0, 1e6);
      if (y.type != "yarn") DSVL2_FAIL("%s: rope_scaling type \"%s\" is not supported (only yarn)", what.c_str(), y.type.c_str());
    }
    // Cross-field checks.
    if (x.hidden_act != "silu") DSVL2_FAIL("%s: hidden_act \"%s\" is not supported (silu only)", what.c_str(), x.hidden_act.c_str());
    if (x.scoring_func != "softmax" && x.scoring_func != "sigmoid")
      DSVL2_FAIL("%s: scoring_func \"%s\" is not supported", what.c_str(), x.scoring_func.c_str());
    if (x.topk_method != "greedy" && x.topk_method != "group_limited_greedy" && x.topk_method != "noaux_tc")
      DSVL2_FAIL("%s: topk_method \"%s\" is not supported", what.c_str(), x.topk_method.c_str());
    if (x.n_routed_experts > 0) {
      if (x.num_experts_per_tok < 1 || x.num_experts_per_tok > x.n_routed_experts)
        DSVL2_FAIL("%s: num_experts_per_tok %d must be in [1, n_routed_experts=%d]", what.c_str(), x.num_experts_per_tok, x.n_routed_experts);
      if (x.n_routed_experts % x.n_group)
        DSVL2_FAIL("%s: n_routed_experts %d not divisible by n_group %d", what.c_str(), x.n_routed_experts, x.n_group);
      if (x.topk_group > x.n_group) DSVL2_FAIL("%s: topk_group %d > n_group %d", what.c_str(), x.topk_group, x.n_group);
    }
    if (x.use_mla) {
      if (x.kv_lora_rank < 1 || x.qk_rope_head_dim < 2 || x.qk_rope_head_dim % 2 || x.v_head_dim < 1)
        DSVL2_FAIL("%s: MLA needs kv_lora_rank >= 1, an even qk_rope_head_dim and v_head_dim >= 1", what.c_str());
    } else {
      if (x.hidden_size % x.num_attention_heads || x.head_dim() % 2)
        DSVL2_FAIL("%s: hidden_size %d must split into an even head size over %d heads", what.c_str(), x.hidden_size, x.num_attention_heads);
      if (x.num_attention_heads % x.num_key_value_heads)
        DSVL2_FAIL("%s: num_attention_heads %d not divisible by num_key_value_heads %d", what.c_str(), x.num_attention_heads, x.num_key_value_heads);
    }
  }
  if (c.candidate_resolutions.empty()) c.candidate_resolutions = {{384, 384}};
  if (c.tile_tag != "2D") DSVL2_FAIL("%s: tile_tag \"%s\" is not supported (only \"2D\")", what.c_str(), c.tile_tag.c_str());
  if (c.global_view_pos != "head" && c.global_view_pos != "tail")
    DSVL2_FAIL("%s: global_view_pos \"%s\" must be \"head\" or \"tail\"", what.c_str(), c.global_view_pos.c_str());
  if (c.projector.projector_type != "downsample_mlp_gelu")
    DSVL2_FAIL("%s: projector_type \"%s\" is unsupported (only downsample_mlp_gelu)", what.c_str(), c.projector.projector_type.c_str());
  if (c.projector.input_dim != c.vision.width)
    DSVL2_FAIL("%s: projector input_dim %d != vision width %d", what.c_str(), c.projector.input_dim, c.vision.width);
  if (c.projector.n_embed != c.language.hidden_size)
    DSVL2_FAIL("%s: projector n_embed %d != language hidden_size %d", what.c_str(), c.projector.n_embed, c.language.hidden_size);
  return c;
}

ProcessorConfig parse_processor_config(const std::string& text, const std::string& what) {
  json root = parse_json(text, what);
  ProcessorConfig c;
  Reader r{root, what};
  if (root.contains("candidate_resolutions")) c.candidate_resolutions = parse_resolutions(root["candidate_resolutions"], what);
  r.get_int("patch_size", &c.patch_size, 1, 1024);
  r.get_int("downsample_ratio", &c.downsample_ratio, 1, 16);
  r.get_bool("normalize", &c.normalize);
  r.get_string("image_token", &c.image_token);
  r.get_string("pad_token", &c.pad_token);
  r.get_string("sft_format", &c.sft_format);
  r.get_bool("add_special_token", &c.add_special_token);
  for (const char* k : {"image_mean", "image_std"}) {
    if (!r.present(k)) continue;
    const json& a = root[k];
    if (!a.is_array() || a.size() != 3) DSVL2_FAIL("%s.%s: expected 3 numbers", what.c_str(), k);
    auto& dst = std::string(k) == "image_mean" ? c.image_mean : c.image_std;
    for (int i = 0; i < 3; i++) {
      if (!a[i].is_number()) DSVL2_FAIL("%s.%s: expected 3 numbers", what.c_str(), k);
      dst[i] = a[i].get<float>();
    }
  }
  for (float s : c.image_std)
    if (!(s > 0)) DSVL2_FAIL("%s.image_std: must be positive", what.c_str());
  if (c.candidate_resolutions.empty()) c.candidate_resolutions = {{384, 384}};
  c.image_size = c.candidate_resolutions[0].first;
  return c;
}

VLConfig load_vl_config(const std::string& dir) {
  std::string p = path_join(dir, "config.json");
  return parse_vl_config(read_file(p), p);
}

ProcessorConfig load_processor_config(const std::string& dir) {
  std::string p = path_join(dir, "processor_config.json");
  return parse_processor_config(read_file(p), p);
}

ProcessorConfig processor_config_for(const std::string& dir, const VLConfig& cfg) {
  if (file_exists(path_join(dir, "processor_config.json"))) return load_processor_config(dir);
  ProcessorConfig p;
  p.candidate_resolutions = cfg.candidate_resolutions;
  p.image_size = cfg.candidate_resolutions[0].first;
  p.patch_size = cfg.vision.patch_size;
  p.downsample_ratio = cfg.projector.downsample_ratio;
  return p;
}

}  // namespace dsvl2
