// The DeepSeekMoE language model of DeepSeek-VL2 (DeepseekV2ForCausalLM):
// embed_tokens -> layers of [x += attn(RMSNorm(x)); x += ffn(RMSNorm(x))] ->
// final RMSNorm -> untied lm_head, logits in f32. Attention is MHA (Tiny) or
// MLA (Small / Base); the FFN is a dense MLP for layers < first_k_dense_replace
// (or off the moe_layer_freq grid), else the MoE.
//
// The model is immutable after construction; all per-sequence state lives in
// KVCaches named by the rows of a Batch, so one model steps several sequences
// in one forward (see llm/batch.h):
//
//   Checkpoint ckpt(dir);
//   LanguageModel lm(cfg.language, checkpoint_source(ckpt));   // ckpt must outlive lm
//   KVCache cache(cfg.language);                               // context = max_position_embeddings
//   Tensor logits = lm.forward(embeds.f32(), T, cache, ops, LogitsMode::kLast);   // one sequence
//   Tensor rows = lm.forward(batch, ops);                                         // many
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/argmax.h"
#include "io/model_config.h"
#include "llm/attention_mha.h"
#include "llm/attention_mla.h"
#include "llm/batch.h"
#include "llm/kv_cache.h"
#include "llm/mlp.h"
#include "llm/moe.h"
#include "llm/weights.h"
#include "ops/ops.h"
#include "ops/prepack.h"

namespace dsvl2 {

// Which logits the one-sequence forward() returns (a Batch says it per row).
enum class LogitsMode { kNone, kLast, kAll };

// Prompt chunk size of the official incremental_prefilling: bounds activation
// memory for long prompts; results do not depend on it.
constexpr int kDefaultPrefillChunk = 512;

class LanguageModel {
 public:
  // `prefix` is prepended to every state_dict name ("language." in DeepSeek-VL2).
  LanguageModel(const LanguageConfig& config, const WeightSource& src, const std::string& prefix = "language.");
  LanguageModel(LanguageModel&&) = default;
  ~LanguageModel();

  const LanguageConfig& config() const { return cfg_; }
  // embed_tokens [vocab, hidden] as stored (read one row per token).
  const Weight& embedding_table() const { return embed_tokens_; }

  // Token embeddings [T, hidden] (f32). Error for ids outside the vocabulary.
  Tensor embed(const std::vector<int>& ids) const;
  void embed(const int* ids, int T, float* out) const;

  // Runs every row of the batch, writes each row's K/V into its sequence's
  // cache at the row's position (the cache then holds positions up to its
  // last row) and returns the logits [batch.logit_rows(), vocab] of the rows
  // that want them, in row order (empty when none does).
  // Errors, with every cache untouched: an empty batch, a cache built for
  // another config, rows of a sequence not contiguous or not at consecutive
  // positions, a first position past the cache's length, a token outside the
  // vocabulary (kInvalidInput); positions past a cache's capacity (kTooLong).
  Tensor forward(const Batch& batch, const Ops& ops) const;

  // One sequence: T new positions (embeds[T, hidden]) after the
  // cache.length() already stored, in batches of at most `chunk` rows.
  // Returns logits [T, vocab] (kAll), [1, vocab] (kLast) or an empty tensor.
  Tensor forward(const float* embeds, int T, KVCache& cache, const Ops& ops, LogitsMode mode = LogitsMode::kLast,
                 int chunk = kDefaultPrefillChunk) const;
  // One decoding step: embeds `token` at position cache.length(), returns its logits [1, vocab].
  Tensor step(int token, KVCache& cache, const Ops& ops) const;

  // Once, before the model is shared: repacks every matrix that runs through
  // Ops::linear into the layout ops' kernel table prefers for ops.compute
  // (Ops::prepare), in one huge-page arena, packing on ops' threads. After a
  // matrix is packed, `release(data, bytes)` is called for its source bytes
  // (VisionLanguageModel drops the checkpoint's mapped pages there, so the
  // packed copy replaces the mapped one in memory instead of doubling it).
  // The source views stay valid: other tables and modes still read them.
  // Returns the packed bytes (0 when the table has no packed form).
  size_t prepare(const Ops& ops, const ReleaseSource& release = {});

 private:
  struct Layer {
    Tensor input_norm, post_norm;
    std::optional<AttentionMha> mha;
    std::optional<AttentionMla> mla;
    std::optional<Mlp> dense;
    std::optional<Moe> moe;
  };
  // Checks the batch and cuts it into per-sequence segments (caches untouched).
  std::vector<BatchSegment> plan(const Batch& batch) const;

  // f(block) for each layer's attention and MLP / MoE block.
  template <class F>
  void for_each_block(F&& f);

  LanguageConfig cfg_;
  std::unique_ptr<Arena> packed_;
  bool prepared_ = false;
  Weight embed_tokens_, lm_head_;
  Tensor final_norm_;
  std::vector<Layer> layers_;
};

}  // namespace dsvl2
