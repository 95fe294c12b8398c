// Per-session attention cache, separate from the immutable LanguageModel so one
// model can serve several sessions.
//
//   MHA (use_mla false): per layer k and v rows [S, Hkv * head_dim]; k is stored
//       after RoPE (transformers DynamicCache as LlamaAttention fills it).
//   MLA: per layer one row [S, kv_lora + rope] = [kv_a_layernorm(c_kv) | roped k_pe],
//       the compressed cache of the official weight-absorbed DeepseekV2Attention.
//
// The context (maximum positions) is fixed at construction; memory grows on
// demand up to it. Running past it is a dsvl2::Error, never a silent overrun.
#pragma once
#include <cstdint>
#include <vector>

#include "io/model_config.h"

namespace dsvl2 {

class KVCache {
 public:
  // context <= 0: config.max_position_embeddings; a larger value is an Error.
  explicit KVCache(const LanguageConfig& config, int context = 0);

  int context() const { return context_; }
  int length() const { return length_; }  // positions already stored
  int layers() const { return int(k_.size()); }
  int64_t k_width() const { return k_width_; }
  int64_t v_width() const { return v_width_; }  // 0 for MLA (values live in the k row)
  void clear() { length_ = 0; }
  // Drops positions from n on (n <= length).
  void truncate(int n);

  // Makes room for `n` positions in total; Error when n exceeds the context.
  void reserve(int n);
  float* k_row(int layer, int pos) { return k_[size_t(layer)].data() + int64_t(pos) * k_width_; }
  float* v_row(int layer, int pos) { return v_[size_t(layer)].data() + int64_t(pos) * v_width_; }
  // Marks `n` more positions as written (after every layer wrote them).
  void advance(int n);
  size_t bytes() const;

 private:
  int context_ = 0, length_ = 0, capacity_ = 0;
  int64_t k_width_ = 0, v_width_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace dsvl2
