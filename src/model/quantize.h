// `dsvl2 quantize`: a checkpoint folder -> one .gguf with block-quantized
// language-model matrices (the parts chosen), everything else copied as is.
// Streams tensor by tensor: the model is never held in RAM.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsvl2 {

class ThreadPool;

// Parts that can be quantized. The embedding table, the MoE router, MLA's
// kv_b_proj, the patch embedding and every vector always stay in their stored
// type (their loaders read them element-wise or in f32), as does any matrix
// whose rows are not whole 32-element blocks (SigLIP's fc2, 4304 wide).
struct QuantizeParts {
  bool experts = true;     // routed experts
  bool shared = true;      // shared experts
  bool dense = true;       // dense MLP of the first layers
  bool attention = true;   // q/k/v/o, q_a/q_b, kv_a projections
  bool head = true;        // lm_head
  bool vision = false;     // SigLIP blocks' qkv, proj, fc1 (opt-in)
  bool projector = false;  // the MLP adaptor's layers (opt-in)
};
// A comma list of experts, shared, dense, attention, head, vision, projector;
// "language" (the default: the first five) or "all" (every part). Throws
// Error on unknown names.
QuantizeParts parse_quantize_parts(const std::string& list);

struct QuantizeStats {
  int64_t tensors = 0, quantized = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
};

// A random checkpoint with a preset's config, written straight to one .gguf
// with its language-model matrices in `type` ("q8_0" or "q4_0"; the same
// values make-random-checkpoint writes in BF16, then quantized), so models
// larger than memory in BF16 can be generated and benchmarked. Streams.
QuantizeStats write_random_gguf(const std::string& out_path, const std::string& config_json, uint64_t seed,
                                ThreadPool* pool, const std::string& type = "q8_0");

// type: "q8_0" (blocks of 32 int8 + f16 scale), "q4_0" (blocks of 32 4-bit
// values + f16 scale; ggml layouts) or "bf16" (copy). Blocks of 32 fit every
// DeepSeek-VL2 width (expert widths 896 / 1408 / 1536 are not multiples of
// 256, which rules out the K-quant super-blocks for the experts).
QuantizeStats quantize_checkpoint(const std::string& dir, const std::string& type, const QuantizeParts& parts,
                                  const std::string& out_path);

}  // namespace dsvl2
