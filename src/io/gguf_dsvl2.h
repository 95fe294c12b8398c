// The GGUF key set of a DeepSeek-VL2 model file (architecture "deepseek_vl2").
//
// The model is described by the original Hugging Face JSON, stored verbatim,
// so the loader reuses parse_vl_config / parse_processor_config (range checks
// included) rather than a second, GGUF-only config schema:
//   general.architecture                 str  "deepseek_vl2"
//   general.name                         str  e.g. "DeepSeek-VL2-Small"
//   general.file_type                    u32  llama_ftype of most tensors (gguf_file_type)
//   general.quantization_version         u32  2 (ggml's GGML_QNT_VERSION), when any tensor is quantized
//   general.alignment                    u32  optional (default 32)
//   deepseek_vl2.config_json             str  config.json text
//   deepseek_vl2.processor_config_json   str  processor_config.json text
// plus llama.cpp-style keys (derived from config.json, for tools such as
// gguf-dump; the loader checks they agree with the JSON):
//   deepseek_vl2.block_count, .context_length, .embedding_length,
//   .feed_forward_length, .vocab_size, .attention.head_count,
//   .attention.head_count_kv, .attention.layer_norm_rms_epsilon (f32),
//   .rope.freq_base (f32), .leading_dense_block_count, .expert_count,
//   .expert_used_count, .expert_shared_count, .expert_feed_forward_length,
//   .attention.kv_lora_rank, .attention.q_lora_rank  (u32 unless noted)
//   deepseek_vl2.vision.block_count, .vision.embedding_length, .vision.head_count,
//   .vision.image_size, .vision.patch_size (u32)
//
// Note: the spec restricts general.architecture to [a-z0-9]+, but llama.cpp's
// own architecture names already use '_' and '-'; we keep the HF model_type.
//
// Tensor names are the HF state_dict names, unchanged: the longest in the
// released models is 60 bytes ("language.model.layers.29.self_attn.
// kv_a_proj_with_mqa.weight"), under GGUF's 63-byte limit, so no shortening
// scheme is needed; the writer rejects any longer name.
#pragma once
#include <cstdint>
#include <string>

#include "io/gguf.h"
#include "io/model_config.h"

namespace dsvl2 {

constexpr const char* kDsvl2Architecture = "deepseek_vl2";
constexpr uint32_t kGgufQuantizationVersion = 2;  // GGML_QNT_VERSION

namespace gguf_key {
constexpr const char* kArchitecture = "general.architecture";
constexpr const char* kName = "general.name";
constexpr const char* kFileType = "general.file_type";
constexpr const char* kQuantizationVersion = "general.quantization_version";
constexpr const char* kConfigJson = "deepseek_vl2.config_json";
constexpr const char* kProcessorConfigJson = "deepseek_vl2.processor_config_json";
constexpr const char* kBlockCount = "deepseek_vl2.block_count";
constexpr const char* kContextLength = "deepseek_vl2.context_length";
constexpr const char* kEmbeddingLength = "deepseek_vl2.embedding_length";
constexpr const char* kVocabSize = "deepseek_vl2.vocab_size";
constexpr const char* kHeadCount = "deepseek_vl2.attention.head_count";
constexpr const char* kExpertCount = "deepseek_vl2.expert_count";
constexpr const char* kExpertUsedCount = "deepseek_vl2.expert_used_count";
}  // namespace gguf_key

// llama.cpp's llama_ftype for a file whose (largest) tensors are of type t;
// 1024 (LLAMA_FTYPE_GUESSED) when there is no single-type equivalent.
uint32_t gguf_file_type(GgmlType t);

// Adds the key set above. The JSON texts are parsed first (Error if invalid),
// so a file is never written with a config the loader would refuse.
void add_dsvl2_metadata(GgufMetadata& md, const std::string& name, const std::string& config_json,
                        const std::string& processor_config_json, uint32_t file_type, bool quantized);

// Loader side: checks general.architecture, parses the embedded JSON, and
// checks the derived keys that are present agree with it. Throw Error.
VLConfig gguf_vl_config(const GgufMetadata& md);
ProcessorConfig gguf_processor_config(const GgufMetadata& md);

}  // namespace dsvl2
