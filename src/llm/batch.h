// A batch of rows for one LanguageModel::forward: rows of several sequences,
// each row a token id or an embedding (image positions, spliced prompts), with
// its sequence, its position and whether its logits are wanted (llama.cpp's
// llama_batch). Norms, linears, routing and experts run over all rows at once;
// RoPE, cache writes and attention run per sequence.
//
//   Batch b(cfg.hidden_size);
//   int a = b.add_sequence(*cache_a);                       // decode: one row
//   b.add_token(a, next_a, cache_a->length(), true);
//   int c = b.add_sequence(*cache_c);                       // prefill chunk
//   b.add_embeddings(c, embeds, 512, cache_c->length(), false);
//   Tensor logits = lm.forward(b, ops);                    // [rows wanting logits, vocab]
//
// Rules (checked by forward): the rows of one sequence are contiguous and at
// consecutive positions p0, p0+1, ...; p0 <= the cache's length (positions at
// and after p0 are overwritten, so a shared prefix can be kept) and the last
// position fits the cache's capacity.
#pragma once
#include <cstdint>
#include <vector>

#include "llm/kv_cache.h"

namespace dsvl2 {

struct BatchRow {
  int seq = 0;          // index returned by add_sequence
  int pos = 0;          // position in its sequence
  int token = -1;       // token id, or -1 for a row of embeddings()
  int64_t embed = -1;   // row of embeddings() when token < 0
  bool logits = false;  // wanted in forward()'s result
};

class Batch {
 public:
  explicit Batch(int64_t hidden) : hidden_(hidden) {}
  int64_t hidden() const { return hidden_; }

  // A sequence of the batch, identified by the cache it reads and extends.
  int add_sequence(KVCache& cache);
  void add_token(int seq, int token, int pos, bool logits);
  // n rows of embeddings e[n, hidden] at positions pos..pos+n-1; logits for
  // the last row when last_logits, for every row when all_logits.
  void add_embeddings(int seq, const float* e, int n, int pos, bool last_logits, bool all_logits = false);
  void add_tokens(int seq, const int* ids, int n, int pos, bool last_logits, bool all_logits = false);

  int rows() const { return int(rows_.size()); }
  int logit_rows() const { return n_logits_; }
  const std::vector<BatchRow>& row_list() const { return rows_; }
  KVCache& cache(int seq) const { return *caches_[size_t(seq)]; }
  int sequences() const { return int(caches_.size()); }
  const float* embedding(int64_t i) const { return embeds_.data() + i * hidden_; }
  void clear();

 private:
  int64_t hidden_;
  std::vector<KVCache*> caches_;
  std::vector<BatchRow> rows_;
  std::vector<float> embeds_;
  int n_logits_ = 0;
};

// One sequence's run of rows inside a batch (what attention needs).
struct BatchSegment {
  KVCache* cache = nullptr;
  int row0 = 0, n = 0, pos0 = 0;
};

}  // namespace dsvl2
