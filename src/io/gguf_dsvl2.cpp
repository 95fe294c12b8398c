#include "io/gguf_dsvl2.h"

#include <vector>

namespace dsvl2 {

namespace {

struct U32Key {
  const char* key;
  uint32_t value;
};
struct F32Key {
  const char* key;
  float value;
};

// The llama.cpp-style keys derived from a parsed config (names follow
// llama.cpp's LLM_KV_* for deepseek2 where one exists).
std::vector<U32Key> u32_keys(const VLConfig& c) {
  const LanguageConfig& l = c.language;
  return {
      {gguf_key::kBlockCount, uint32_t(l.num_hidden_layers)},
      {gguf_key::kContextLength, uint32_t(l.max_position_embeddings)},
      {gguf_key::kEmbeddingLength, uint32_t(l.hidden_size)},
      {"deepseek_vl2.feed_forward_length", uint32_t(l.intermediate_size)},
      {gguf_key::kVocabSize, uint32_t(l.vocab_size)},
      {gguf_key::kHeadCount, uint32_t(l.num_attention_heads)},
      {"deepseek_vl2.attention.head_count_kv", uint32_t(l.num_key_value_heads)},
      {"deepseek_vl2.leading_dense_block_count", uint32_t(l.first_k_dense_replace)},
      {gguf_key::kExpertCount, uint32_t(l.n_routed_experts)},
      {gguf_key::kExpertUsedCount, uint32_t(l.num_experts_per_tok)},
      {"deepseek_vl2.expert_shared_count", uint32_t(l.n_shared_experts)},
      {"deepseek_vl2.expert_feed_forward_length", uint32_t(l.moe_intermediate_size)},
      {"deepseek_vl2.attention.kv_lora_rank", uint32_t(l.kv_lora_rank)},
      {"deepseek_vl2.attention.q_lora_rank", uint32_t(l.q_lora_rank)},
      {"deepseek_vl2.vision.block_count", uint32_t(c.vision.layers)},
      {"deepseek_vl2.vision.embedding_length", uint32_t(c.vision.width)},
      {"deepseek_vl2.vision.head_count", uint32_t(c.vision.heads)},
      {"deepseek_vl2.vision.image_size", uint32_t(c.vision.image_size)},
      {"deepseek_vl2.vision.patch_size", uint32_t(c.vision.patch_size)},
  };
}

std::vector<F32Key> f32_keys(const VLConfig& c) {
  return {
      {"deepseek_vl2.attention.layer_norm_rms_epsilon", float(c.language.rms_norm_eps)},
      {"deepseek_vl2.rope.freq_base", float(c.language.rope_theta)},
  };
}

void check_architecture(const GgufMetadata& md) {
  const std::string& arch = md.get<std::string>(gguf_key::kArchitecture);
  if (arch != kDsvl2Architecture)
    DSVL2_FAIL("%s: general.architecture is \"%s\", expected \"%s\"", md.what().c_str(), gguf_escape(arch).c_str(),
               kDsvl2Architecture);
}

}  // namespace

uint32_t gguf_file_type(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return 0;    // LLAMA_FTYPE_ALL_F32
    case GgmlType::kF16: return 1;    // LLAMA_FTYPE_MOSTLY_F16
    case GgmlType::kQ4_0: return 2;   // LLAMA_FTYPE_MOSTLY_Q4_0
    case GgmlType::kQ4_1: return 3;   // LLAMA_FTYPE_MOSTLY_Q4_1
    case GgmlType::kQ8_0: return 7;   // LLAMA_FTYPE_MOSTLY_Q8_0
    case GgmlType::kQ5_0: return 8;   // LLAMA_FTYPE_MOSTLY_Q5_0
    case GgmlType::kQ5_1: return 9;   // LLAMA_FTYPE_MOSTLY_Q5_1
    case GgmlType::kQ2_K: return 10;  // LLAMA_FTYPE_MOSTLY_Q2_K
    case GgmlType::kQ4_K: return 14;  // LLAMA_FTYPE_MOSTLY_Q4_K_S (uniform Q4_K)
    case GgmlType::kQ5_K: return 16;  // LLAMA_FTYPE_MOSTLY_Q5_K_S
    case GgmlType::kQ6_K: return 18;  // LLAMA_FTYPE_MOSTLY_Q6_K
    case GgmlType::kIQ4_NL: return 25;  // LLAMA_FTYPE_MOSTLY_IQ4_NL
    case GgmlType::kBF16: return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    default: return 1024;             // LLAMA_FTYPE_GUESSED
  }
}

void add_dsvl2_metadata(GgufMetadata& md, const std::string& name, const std::string& config_json,
                        const std::string& processor_config_json, uint32_t file_type, bool quantized) {
  VLConfig c = parse_vl_config(config_json, "config.json");
  parse_processor_config(processor_config_json, "processor_config.json");
  md.set(gguf_key::kArchitecture, std::string(kDsvl2Architecture));
  md.set(gguf_key::kName, name);
  md.set(gguf_key::kFileType, file_type);
  if (quantized) md.set(gguf_key::kQuantizationVersion, kGgufQuantizationVersion);
  md.set(gguf_key::kConfigJson, config_json);
  md.set(gguf_key::kProcessorConfigJson, processor_config_json);
  for (const auto& k : u32_keys(c)) md.set(k.key, k.value);
  for (const auto& k : f32_keys(c)) md.set(k.key, k.value);
}

VLConfig gguf_vl_config(const GgufMetadata& md) {
  check_architecture(md);
  VLConfig c = parse_vl_config(md.get<std::string>(gguf_key::kConfigJson), md.what() + ": " + gguf_key::kConfigJson);
  // The derived keys are for other tools; if one was edited it must not
  // silently disagree with the config the model is built from.
  for (const auto& k : u32_keys(c))
    if (auto v = md.get_opt<uint32_t>(k.key); v && *v != k.value)
      DSVL2_FAIL("%s: %s = %u disagrees with %s (%u)", md.what().c_str(), k.key, *v, gguf_key::kConfigJson, k.value);
  for (const auto& k : f32_keys(c))
    if (auto v = md.get_opt<float>(k.key); v && *v != k.value)
      DSVL2_FAIL("%s: %s = %g disagrees with %s (%g)", md.what().c_str(), k.key, double(*v), gguf_key::kConfigJson,
                 double(k.value));
  return c;
}

ProcessorConfig gguf_processor_config(const GgufMetadata& md) {
  check_architecture(md);
  return parse_processor_config(md.get<std::string>(gguf_key::kProcessorConfigJson),
                                md.what() + ": " + gguf_key::kProcessorConfigJson);
}

}  // namespace dsvl2
