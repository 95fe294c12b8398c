#include "llm/batch.h"

#include "core/error.h"

namespace dsvl2 {

int Batch::add_sequence(KVCache& cache) {
  caches_.push_back(&cache);
  return int(caches_.size()) - 1;
}

void Batch::add_token(int seq, int token, int pos, bool logits) {
  DSVL2_REQUIRE(seq >= 0 && seq < sequences(), "batch: no sequence %d", seq);
  rows_.push_back({seq, pos, token, -1, logits});
  n_logits_ += logits;
}

void Batch::add_tokens(int seq, const int* ids, int n, int pos, bool last_logits, bool all_logits) {
  for (int i = 0; i < n; i++) add_token(seq, ids[i], pos + i, all_logits || (last_logits && i + 1 == n));
}

void Batch::add_embeddings(int seq, const float* e, int n, int pos, bool last_logits, bool all_logits) {
  DSVL2_REQUIRE(seq >= 0 && seq < sequences(), "batch: no sequence %d", seq);
  const int64_t first = int64_t(embeds_.size()) / hidden_;
  embeds_.insert(embeds_.end(), e, e + int64_t(n) * hidden_);
  for (int i = 0; i < n; i++) {
    const bool l = all_logits || (last_logits && i + 1 == n);
    rows_.push_back({seq, pos + i, -1, first + i, l});
    n_logits_ += l;
  }
}

void Batch::clear() {
  caches_.clear();
  rows_.clear();
  embeds_.clear();
  n_logits_ = 0;
}

}  // namespace dsvl2
