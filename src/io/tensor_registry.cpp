#include "io/tensor_registry.h"

#include <set>

#include "core/error.h"

namespace dsvl2 {

namespace {

struct Builder {
  std::vector<TensorSpec> out;
  void add(std::string name, Shape shape, bool required = true) {
    int64_t fan_in = 0;
    if (shape.size() >= 2) {  // [out, in...]: fan-in is everything but dim 0
      fan_in = 1;
      for (size_t i = 1; i < shape.size(); i++) fan_in *= shape[i];
    }
    out.push_back({std::move(name), std::move(shape), required, fan_in});
  }
  // nn.Linear: weight [out, in] (+ bias [out]).
  void linear(const std::string& p, int64_t out_f, int64_t in_f, bool bias, bool required = true) {
    add(p + ".weight", {out_f, in_f}, required);
    if (bias) add(p + ".bias", {out_f}, required);
  }
  void layer_norm(const std::string& p, int64_t n, bool required = true) {
    add(p + ".weight", {n}, required);
    add(p + ".bias", {n}, required);
  }
};

// timm VisionTransformer as built by the official siglip_vit.create_siglip_vit:
// no class token, no pre-norm, qkv with bias, final norm; the MAP head
// (attn_pool, AttentionPoolLatent with latent_len 1) exists but is unused.
void add_vision(Builder& b, const VisionConfig& v) {
  const int64_t w = v.width, hid = v.mlp_hidden(), p = v.patch_size, g = v.grid();
  b.add("vision.patch_embed.proj.weight", {w, 3, p, p});
  b.add("vision.patch_embed.proj.bias", {w});
  b.add("vision.pos_embed", {1, g * g, w});
  for (int i = 0; i < v.layers; i++) {
    std::string blk = "vision.blocks." + std::to_string(i);
    b.layer_norm(blk + ".norm1", w);
    b.linear(blk + ".attn.qkv", 3 * w, w, true);
    b.linear(blk + ".attn.proj", w, w, true);
    b.layer_norm(blk + ".norm2", w);
    b.linear(blk + ".mlp.fc1", hid, w, true);
    b.linear(blk + ".mlp.fc2", w, hid, true);
  }
  b.layer_norm("vision.norm", w);
  if (v.global_pool == "map") {
    b.add("vision.attn_pool.latent", {1, 1, w}, false);
    b.linear("vision.attn_pool.q", w, w, true, false);
    b.linear("vision.attn_pool.kv", 2 * w, w, true, false);
    b.linear("vision.attn_pool.proj", w, w, true, false);
    b.layer_norm("vision.attn_pool.norm", w, false);
    b.linear("vision.attn_pool.mlp.fc1", hid, w, true, false);
    b.linear("vision.attn_pool.mlp.fc2", w, hid, true, false);
  }
}

// MlpProjector, downsample_mlp_gelu: Linear(in*r*r, n*m), then (depth-2) x
// [GELU, Linear(n*m, n*m)], then GELU, Linear(n*m, n). Linears sit at the
// even nn.Sequential indices; depth 1 still gets the final Linear.
void add_projector(Builder& b, const ProjectorConfig& p) {
  const int64_t in = int64_t(p.input_dim) * p.downsample_ratio * p.downsample_ratio;
  const int64_t mid = int64_t(p.n_embed) * p.mlp_ratio;
  b.linear("projector.layers.0", mid, in, true);
  int idx = 2;
  for (int i = 1; i < p.depth - 1; i++, idx += 2) b.linear("projector.layers." + std::to_string(idx), mid, mid, true);
  b.linear("projector.layers." + std::to_string(idx), p.n_embed, mid, true);
}

void add_mlp(Builder& b, const std::string& p, int64_t hidden, int64_t inter) {
  b.linear(p + ".gate_proj", inter, hidden, false);
  b.linear(p + ".up_proj", inter, hidden, false);
  b.linear(p + ".down_proj", hidden, inter, false);
}

// DeepseekV2ForCausalLM (deepseek_vl2/models/modeling_deepseek.py).
void add_language(Builder& b, const LanguageConfig& c) {
  const int64_t h = c.hidden_size, nh = c.num_attention_heads;
  const bool bias = c.attention_bias;
  b.add("language.model.embed_tokens.weight", {c.vocab_size, h});
  for (int i = 0; i < c.num_hidden_layers; i++) {
    std::string l = "language.model.layers." + std::to_string(i);
    b.add(l + ".input_layernorm.weight", {h});
    b.add(l + ".post_attention_layernorm.weight", {h});
    std::string a = l + ".self_attn";
    if (!c.use_mla) {  // LlamaAttention (transformers 4.38)
      const int64_t hd = c.head_dim(), kv = int64_t(c.num_key_value_heads) * hd;
      b.linear(a + ".q_proj", nh * hd, h, bias);
      b.linear(a + ".k_proj", kv, h, bias);
      b.linear(a + ".v_proj", kv, h, bias);
      b.linear(a + ".o_proj", h, nh * hd, bias);
    } else {  // DeepseekV2Attention (MLA)
      const int64_t qd = c.q_head_dim();
      if (c.q_lora_rank == 0) {
        b.linear(a + ".q_proj", nh * qd, h, false);
      } else {
        b.linear(a + ".q_a_proj", c.q_lora_rank, h, bias);
        b.add(a + ".q_a_layernorm.weight", {c.q_lora_rank});
        b.linear(a + ".q_b_proj", nh * qd, c.q_lora_rank, false);
      }
      b.linear(a + ".kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_head_dim, h, bias);
      b.add(a + ".kv_a_layernorm.weight", {c.kv_lora_rank});
      b.linear(a + ".kv_b_proj", nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank, false);
      b.linear(a + ".o_proj", h, nh * c.v_head_dim, bias);
    }
    std::string m = l + ".mlp";
    if (c.is_moe_layer(i)) {  // DeepseekV2MoE
      b.add(m + ".gate.weight", {c.n_routed_experts, h});
      if (c.topk_method == "noaux_tc") b.add(m + ".gate.e_score_correction_bias", {c.n_routed_experts});
      for (int e = 0; e < c.n_routed_experts; e++)
        add_mlp(b, m + ".experts." + std::to_string(e), h, c.moe_intermediate_size);
      if (c.n_shared_experts > 0)
        add_mlp(b, m + ".shared_experts", h, int64_t(c.moe_intermediate_size) * c.n_shared_experts);
    } else {
      add_mlp(b, m, h, c.intermediate_size);
    }
  }
  b.add("language.model.norm.weight", {h});
  b.add("language.lm_head.weight", {c.vocab_size, h});
}

}  // namespace

std::vector<TensorSpec> expected_tensors(const VLConfig& cfg) {
  Builder b;
  add_vision(b, cfg.vision);
  add_projector(b, cfg.projector);
  // tile_tag "2D": DeepseekVLV2ForCausalLM.image_newline / view_seperator (sic).
  b.add("image_newline", {cfg.projector.n_embed});
  b.add("view_seperator", {cfg.projector.n_embed});
  add_language(b, cfg.language);
  return b.out;
}

std::vector<std::string> validate_checkpoint(const Checkpoint& ckpt, const VLConfig& cfg) {
  std::set<std::string, std::less<>> known;
  for (const TensorSpec& s : expected_tensors(cfg)) {
    known.insert(s.name);
    TensorView v;
    // get() throws on a wrong shape or a non-float dtype, naming tensor + file.
    // Matrices may be block-quantized (GGUF); vectors must be float.
    if (!ckpt.get(s.name, s.shape, &v, /*allow_quantized=*/s.shape.size() == 2) && s.required)
      DSVL2_FAIL("%s: required tensor \"%s\" %s is missing", ckpt.file_of(s.name).c_str(), s.name.c_str(),
                 shape_str(s.shape).c_str());
  }
  std::vector<std::string> unexpected;
  for (const std::string& n : ckpt.names())
    if (!known.count(n)) unexpected.push_back(n);
  return unexpected;
}

}  // namespace dsvl2
