#include "io/random_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/tensor_registry.h"

namespace dsvl2 {

namespace {

using ojson = nlohmann::ordered_json;

// The 23 (height, width) tilings every released config lists.
ojson candidate_resolutions() {
  ojson a = ojson::array();
  for (auto [h, w] : std::vector<std::pair<int, int>>{
           {384, 384},   {384, 768},   {768, 384},   {384, 1152}, {1152, 384}, {384, 1536},
           {1536, 384},  {768, 768},   {384, 1920},  {1920, 384}, {384, 2304}, {2304, 384},
           {768, 1152},  {1152, 768},  {384, 2688},  {2688, 384}, {384, 3072}, {3072, 384},
           {768, 1536},  {1536, 768},  {384, 3456},  {3456, 384}, {1152, 1152}})
    a.push_back({h, w});
  return a;
}

struct LangDims {
  int vocab, hidden, inter, moe_inter, layers, heads, experts, topk;
  bool mla;
  int bos, eos;
};

// Key order and spelling follow the released files; keys they omit are left
// out so readers apply the class defaults, as with the real files.
ojson language_config(const LangDims& d, const std::string& variant) {
  ojson l;
  l["architectures"] = {"DeepseekV2ForCausalLM"};
  l["auto_map"] = {{"AutoConfig", "configuration_deepseek.DeepseekV2Config"},
                   {"AutoModel", "modeling_deepseek.DeepseekV2Model"},
                   {"AutoModelForCausalLM", "modeling_deepseek.DeepseekV2ForCausalLM"}};
  l["bos_token_id"] = d.bos;
  l["eos_token_id"] = d.eos;
  l["first_k_dense_replace"] = 1;
  l["hidden_size"] = d.hidden;
  l["intermediate_size"] = d.inter;
  l["lm_head"] = variant != "base";
  l["max_position_embeddings"] = 4096;
  l["model_type"] = "deepseek_v2";
  l["moe_intermediate_size"] = d.moe_inter;
  l["n_group"] = 1;
  l["n_routed_experts"] = d.experts;
  l["n_shared_experts"] = 2;
  l["num_attention_heads"] = d.heads;
  l["num_experts_per_tok"] = d.topk;
  l["num_hidden_layers"] = d.layers;
  l["num_key_value_heads"] = d.heads;
  l["rm_head"] = false;
  l["topk_group"] = 1;
  l["topk_method"] = variant == "base" ? "noaux_tc" : "greedy";
  l["torch_dtype"] = "bfloat16";
  l["vocab_size"] = d.vocab;
  if (!d.mla) {  // Tiny: plain multi-head attention
    l["kv_lora_rank"] = nullptr;
    l["q_lora_rank"] = nullptr;
    l["qk_nope_head_dim"] = 0;
    l["qk_rope_head_dim"] = 0;
    l["use_mla"] = false;
    l["v_head_dim"] = 0;
  } else {
    l["kv_lora_rank"] = 512;
    l["q_lora_rank"] = nullptr;
    l["qk_nope_head_dim"] = 128;
    l["qk_rope_head_dim"] = 64;
    l["v_head_dim"] = 128;
  }
  if (variant == "base") {
    l["scoring_func"] = "sigmoid";
    l["norm_topk_prob"] = true;
    l["routed_scaling_factor"] = 2.0;
  }
  return l;
}

ojson vl_config(const ojson& language, int n_embed, int vision_layers, int vision_width, bool toy) {
  ojson c;
  c["candidate_resolutions"] = candidate_resolutions();
  c["global_view_pos"] = "head";
  c["language_config"] = language;
  c["model_type"] = "deepseek_vl_v2";
  ojson p = {{"model_type", "mlp_projector"}, {"n_embed", n_embed}};
  if (toy) p["input_dim"] = vision_width;  // differs from the 1152 default
  p["projector_type"] = "downsample_mlp_gelu";
  p["depth"] = 2;
  p["mlp_ratio"] = 1;
  p["downsample_ratio"] = 2;
  c["projector_config"] = p;
  c["tile_tag"] = "2D";
  c["torch_dtype"] = "bfloat16";
  c["transformers_version"] = "4.38.2";
  ojson v = {{"layers", vision_layers},
             {"mlp_ratio", 3.7362},
             {"model_name", "siglip_so400m_patch14_384"},
             {"model_type", "vision"},
             {"patch_size", 14},
             {"width", vision_width}};
  if (toy) {
    v["heads"] = 2;
    v["image_size"] = 384;
  }
  c["vision_config"] = v;
  return c;
}

// ---- weights ----

// splitmix64 (core/rng.h) is counter-based, so any block can be produced alone.

using Fill = RandomFill;
using Init = RandomInit;

bool ends_with(const std::string& s, const char* suf) {
  size_t n = std::char_traits<char>::length(suf);
  return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
}

// Scales chosen so activations stay O(1) through the stack: unit-variance
// outputs for linears (std 1/sqrt(fan_in)), identity norms, and the golden
// data's choices for the logit-shaping matrices (lm_head, MoE gate).
Init init_for(const TensorSpec& s, const VLConfig& cfg) {
  const std::string& n = s.name;
  const float hidden = float(cfg.language.hidden_size);
  bool norm = ends_with(n, "norm.weight") || ends_with(n, "norm1.weight") || ends_with(n, "norm2.weight") ||
              ends_with(n, "layernorm.weight");
  bool norm_bias = ends_with(n, "norm.bias") || ends_with(n, "norm1.bias") || ends_with(n, "norm2.bias");
  if (norm) return {Fill::kOnes, 1.f};
  if (norm_bias) return {Fill::kZeros, 0.f};
  if (n == "language.lm_head.weight") return {Fill::kNormal, 2.5f / std::sqrt(hidden)};
  if (ends_with(n, "mlp.gate.weight")) return {Fill::kNormal, 3.f / std::sqrt(hidden)};
  if (ends_with(n, "e_score_correction_bias")) return {Fill::kUniform, 0.3f};
  if (n == "language.model.embed_tokens.weight") return {Fill::kNormal, 0.02f};
  if (n == "vision.pos_embed") return {Fill::kNormal, 0.02f};
  if (ends_with(n, ".bias")) return {Fill::kNormal, 0.02f};
  if (s.fan_in > 0) return {Fill::kNormal, 1.f / std::sqrt(float(s.fan_in))};
  // Vectors used as embeddings (image_newline, view_seperator, attn_pool latent):
  // the official init, randn * 1/sqrt(dim).
  return {Fill::kNormal, 1.f / std::sqrt(float(std::max<int64_t>(1, s.shape.back())))};
}

constexpr int64_t kBlock = 1 << 16;  // elements per PRNG stream
static_assert(kBlock == kRandomBlock, "the header promises this block size");

std::string shard_name(int i, int n) { return strformat("model-%05d-of-%05d.safetensors", i + 1, n); }

}  // namespace

// One PRNG block: out[0, count) = elements [first, first+count) of `stream`,
// first a multiple of kBlock and count at most kBlock.
static void fill_block(uint16_t* out, int64_t count, uint64_t seed, uint64_t index, int64_t first, Init init) {
  if (init.fill == Fill::kOnes || init.fill == Fill::kZeros) {
    std::fill(out, out + count, f32_to_bf16(init.fill == Fill::kOnes ? 1.f : 0.f));
    return;
  }
  uint64_t state = splitmix64(seed ^ splitmix64(index * 0x100000001b3ull + uint64_t(first / kBlock)));
  if (init.fill == Fill::kUniform) {
    const float k = init.scale / float(1ull << 23);
    for (int64_t i = 0; i < count; i++) {
      uint64_t r = splitmix64(state++);
      out[i] = f32_to_bf16(init.offset + float(int64_t(r >> 40) - (1 << 23)) * k);
    }
    return;
  }
  // Irwin-Hall(4) of 16-bit uniforms: mean 0, variance 1 after scaling,
  // bounded at +-3.46 std (no outliers, which suits synthetic weights).
  const float k = init.scale * std::sqrt(3.f) / 65536.f;
  for (int64_t i = 0; i < count; i++) {
    uint64_t r = splitmix64(state++);
    int64_t sum = int64_t(r & 0xffff) + int64_t((r >> 16) & 0xffff) + int64_t((r >> 32) & 0xffff) + int64_t(r >> 48);
    out[i] = f32_to_bf16(init.offset + float(sum - 131070) * k);
  }
}

void fill_random_bf16(uint16_t* out, int64_t count, uint64_t seed, uint64_t stream, int64_t first, RandomInit init) {
  DSVL2_CHECK(first % kBlock == 0, "fill_random_bf16: first %lld is not block-aligned", (long long)first);
  for (int64_t off = 0; off < count; off += kBlock)
    fill_block(out + off, std::min(kBlock, count - off), seed, stream, first + off, init);
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tiny", "small", "base", "test", "tiny-test"};
  return names;
}

std::string preset_config_json(const std::string& preset) {
  ojson c;
  if (preset == "tiny") {
    c = vl_config(language_config({129280, 1280, 6848, 896, 12, 10, 64, 6, false, 0, 1}, "tiny"), 1280, 27, 1152, false);
  } else if (preset == "small") {
    c = vl_config(language_config({102400, 2048, 10944, 1408, 27, 16, 64, 6, true, 100000, 100001}, "small"), 2048, 27,
                  1152, false);
  } else if (preset == "base") {
    c = vl_config(language_config({129280, 2560, 12288, 1536, 30, 32, 72, 6, true, 0, 1}, "base"), 2560, 27, 1152, false);
  } else if (preset == "test") {  // toy dims, Small's schema (MLA + MoE)
    c = vl_config(language_config({256, 64, 96, 32, 3, 4, 8, 2, true, 0, 1}, "small"), 64, 2, 32, true);
    c["language_config"]["kv_lora_rank"] = 32;
    c["language_config"]["qk_nope_head_dim"] = 16;
    c["language_config"]["qk_rope_head_dim"] = 8;
    c["language_config"]["v_head_dim"] = 16;
  } else if (preset == "tiny-test") {
    // Tiny's schema (MHA, softmax greedy routing) and its real vocabulary at
    // toy widths: end-to-end tests with the real tokenizer in a 40 MB folder.
    c = vl_config(language_config({129280, 64, 96, 32, 2, 4, 8, 2, false, 0, 1}, "tiny"), 64, 2, 32, true);
  } else {
    DSVL2_FAIL("unknown preset \"%s\" (expected tiny, small, base, test or tiny-test)", preset.c_str());
  }
  return c.dump(2) + "\n";
}

std::string processor_config_json() {
  ojson p;
  p["add_special_token"] = false;
  p["candidate_resolutions"] = candidate_resolutions();
  p["downsample_ratio"] = 2;
  p["ignore_id"] = -100;
  p["image_mean"] = {0.5, 0.5, 0.5};
  p["image_std"] = {0.5, 0.5, 0.5};
  p["image_token"] = "<image>";
  p["mask_prompt"] = false;
  p["normalize"] = true;
  p["pad_token"] = "<\xef\xbd\x9c\xe2\x96\x81pad\xe2\x96\x81\xef\xbd\x9c>";  // <｜▁pad▁｜>
  p["patch_size"] = 14;
  p["processor_class"] = "DeepseekVLV2Processor";
  p["sft_format"] = "deepseek";
  return p.dump(2) + "\n";
}

void random_tensor_chunk(const VLConfig& cfg, const TensorSpec& spec, uint64_t index, uint64_t seed, int64_t first,
                         int64_t count, uint16_t* out, ThreadPool* pool) {
  DSVL2_CHECK(first % kBlock == 0, "random_tensor_chunk: first %lld is not block-aligned", (long long)first);
  const Init init = init_for(spec, cfg);
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  auto run = [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; b++) {
      int64_t off = b * kBlock;
      fill_block(out + off, std::min(kBlock, count - off), seed, index, first + off, init);
    }
  };
  if (pool && blocks > 1) {
    pool->parallel_for(blocks, run);
  } else {
    run(0, blocks, 0);
  }
}

RandomCheckpointStats write_random_checkpoint(const std::string& dir, const std::string& config_json,
                                              const RandomCheckpointOptions& opt) {
  VLConfig cfg = parse_vl_config(config_json, dir + "/config.json");
  std::vector<TensorSpec> specs = expected_tensors(cfg);  // the full official state_dict
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) DSVL2_FAIL("%s: cannot create folder: %s", dir.c_str(), ec.message().c_str());

  // Group tensors into shards in registry order.
  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0;
  RandomCheckpointStats st;
  for (size_t i = 0; i < specs.size(); i++) {
    uint64_t nb = uint64_t(shape_numel(specs[i].shape)) * 2;
    if (opt.shard_bytes && in_shard > 0 && in_shard + nb > opt.shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += nb;
    st.bytes += nb;
    st.params += uint64_t(shape_numel(specs[i].shape));
  }
  st.tensors = specs.size();
  st.shards = int(shards.size());

  // Remove a stale layout of the other kind so the folder is unambiguous.
  std::filesystem::remove(path_join(dir, "model.safetensors.index.json"), ec);
  std::filesystem::remove(path_join(dir, "model.safetensors"), ec);
  write_file(path_join(dir, "config.json"), config_json);
  write_file(path_join(dir, "processor_config.json"), processor_config_json());

  constexpr int64_t kChunk = 256 * kBlock;  // 16 M elements = 32 MB per write
  std::vector<uint16_t> buf;
  nlohmann::ordered_json weight_map;
  for (size_t s = 0; s < shards.size(); s++) {
    std::string name = shards.size() == 1 ? "model.safetensors" : shard_name(int(s), int(shards.size()));
    std::vector<SafetensorsWriter::Entry> entries;
    for (size_t i : shards[s]) {
      entries.push_back({specs[i].name, DType::kBF16, specs[i].shape});
      weight_map[specs[i].name] = name;
    }
    SafetensorsWriter w(path_join(dir, name), entries, {{"format", "pt"}});
    for (size_t i : shards[s]) {
      const int64_t n = shape_numel(specs[i].shape);
      for (int64_t first = 0; first < n; first += kChunk) {
        const int64_t count = std::min(kChunk, n - first);
        buf.resize(size_t(count));
        random_tensor_chunk(cfg, specs[i], i, opt.seed, first, count, buf.data(), opt.pool);
        w.write(buf.data(), size_t(count) * 2);
      }
    }
    w.close();
  }
  if (shards.size() > 1) {
    nlohmann::ordered_json idx;
    idx["metadata"] = {{"total_size", st.bytes}};
    idx["weight_map"] = weight_map;
    write_file(path_join(dir, "model.safetensors.index.json"), idx.dump(2) + "\n");
  }
  return st;
}

}  // namespace dsvl2
