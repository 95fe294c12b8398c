// `dsvl2 quantize`: a checkpoint folder -> one .gguf with block-quantized
// language-model matrices (the parts chosen), everything else copied as is.
// Streams tensor by tensor: the model is never held in RAM.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsvl2 {

class ThreadPool;

// Parts that can be quantized. The MoE router, MLA's kv_b_proj, the patch
// embedding and every vector always stay in their stored
// type (their loaders read them element-wise or in f32), as does any matrix
// whose rows are not whole 32-element blocks (SigLIP's fc2, 4304 wide).
struct QuantizeParts {
  bool experts = true;     // routed experts
  bool shared = true;      // shared experts
  bool dense = true;       // dense MLP of the first layers
  bool attention = true;   // q/k/v/o, q_a/q_b, kv_a projections
  bool head = true;        // lm_head
  bool embed = true;       // embed_tokens (one row read a token)
  bool vision = false;     // SigLIP blocks' qkv, proj, fc1 (opt-in)
  bool projector = false;  // the MLP adaptor's layers (opt-in)
};
// A comma list of experts, shared, dense, attention, head, embed, vision,
// projector; "language" (the default: the first six) or "all" (every part). Throws
// Error on unknown names.
QuantizeParts parse_quantize_parts(const std::string& list);

struct QuantizeStats {
  int64_t tensors = 0, quantized = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
};

// A random checkpoint with a preset's config, written straight to one .gguf
// with its language-model matrices in `type` (a quantize_checkpoint type but
// bf16; the same values make-random-checkpoint writes in BF16, then
// quantized), so models larger than memory in BF16 can be generated and
// benchmarked. Streams.
QuantizeStats write_random_gguf(const std::string& out_path, const std::string& config_json, uint64_t seed,
                                ThreadPool* pool, const std::string& type = "q8_0");

// type (ggml layouts, blocks of 32 with an f16 scale; docs/performance.md has
// the measured quality):
//   "q4_m"   the recommended mix: the routed experts (nearly all the
//            weights) and lm_head in IQ4_NL, every other chosen matrix
//            (shared experts, dense MLP, attention, embed_tokens; vision and
//            projector when chosen) in Q8_0
//   "q8_0"   int8 values            "q4_0"  4-bit, evenly spaced
//   "iq4_nl" 4-bit indices into ggml's non-linear grid (ggml type 20)
//   "bf16"   copy, nothing quantized
// Blocks of 32 fit every DeepSeek-VL2 width (expert widths 896 / 1408 / 1536
// are not multiples of 256, which rules out the K-quant super-blocks for the
// experts). `parts` chooses what is quantized at all; the rest keeps its
// stored type. The quantization runs on `pool` when given (same bytes).
QuantizeStats quantize_checkpoint(const std::string& dir, const std::string& type, const QuantizeParts& parts,
                                  const std::string& out_path, ThreadPool* pool = nullptr);

}  // namespace dsvl2
