#include "model/sequence.h"

#include <chrono>

#include "core/error.h"

namespace dsvl2 {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "";
    case FinishReason::kEos:
    case FinishReason::kStopString:
    case FinishReason::kGuard: return "stop";
    case FinishReason::kMaxTokens:
    case FinishReason::kContext: return "length";
    case FinishReason::kError: return "error";
  }
  return "";
}

Sequence::Sequence(const Tokenizer* tok, KVCache& cache, const GenerateRequest& req,
                   const std::vector<int32_t>& history, std::function<void(std::string_view)> on_text)
    : tok_(tok),
      cache_(cache),
      req_(req),
      sampler_(req.sampling),
      stops_(tok ? req.stop_strings : std::vector<std::string>{}),
      on_text_(std::move(on_text)) {
  DSVL2_REQUIRE(req.max_new_tokens >= 0, "max_new_tokens must be >= 0, not %d", req.max_new_tokens);
  DSVL2_REQUIRE(req.prefill_chunk >= 1, "the prefill chunk must be >= 1, not %d", req.prefill_chunk);
  if (tok_) decoder_.emplace(*tok_);
  sampler_.accept_prompt(std::vector<int>(history.begin(), history.end()));
}

void Sequence::set_prompt(const float* embeds, int T, int64_t hidden) {
  DSVL2_REQUIRE(T >= 1 && embeds, "a prompt needs at least one position, not %d", T);
  if (int64_t(cache_.length()) + T > cache_.context())
    DSVL2_FAIL_KIND(kTooLong, "the prompt needs %d positions but the context holds %d (%d already used)", T,
                    cache_.context(), cache_.length());
  prompt_.assign(embeds, embeds + int64_t(T) * hidden);
  prompt_rows_ = T;
  prompt_done_ = 0;
  hidden_ = hidden;
  result_ = {};
  result_.prompt_tokens = T;
  t_start_ = now_s();
}

void Sequence::start_from_logits(const float* logits, int vocab) {
  prompt_.clear();
  prompt_rows_ = prompt_done_ = 0;
  result_ = {};
  t_start_ = now_s();
  wants_logits_ = true;
  accept_logits(logits, vocab);
}

int Sequence::add_rows(Batch& b, int max_rows) {
  // Staged only: the sequence changes in commit_rows(), after the forward
  // succeeded, so a failed step leaves it as it was (and can be retried).
  wants_logits_ = false;
  staged_prompt_rows_ = 0;
  staged_token_ = -1;
  if (done()) return 0;
  if (prompt_done_ < prompt_rows_) {
    const int n = std::min(max_rows, prompt_rows_ - prompt_done_);
    if (n <= 0) return 0;
    wants_logits_ = prompt_done_ + n == prompt_rows_;
    b.add_embeddings(b.add_sequence(cache_), prompt_.data() + int64_t(prompt_done_) * hidden_, n, cache_.length(),
                     wants_logits_);
    staged_prompt_rows_ = n;
    return n;
  }
  if (next_token_ < 0) DSVL2_FAIL_KIND(kInternal, "sequence: nothing to run (no prompt was set)");
  b.add_token(b.add_sequence(cache_), next_token_, cache_.length(), true);
  staged_token_ = next_token_;
  wants_logits_ = true;
  return 1;
}

void Sequence::commit_rows() {
  if (staged_prompt_rows_ > 0) {
    prompt_done_ += staged_prompt_rows_;
    if (prompt_done_ == prompt_rows_) std::vector<float>().swap(prompt_);  // every row is in the cache now
  }
  if (staged_token_ >= 0) {
    result_.fed_ids.push_back(staged_token_);
    next_token_ = -1;
  }
  staged_prompt_rows_ = 0;
  staged_token_ = -1;
}

void Sequence::fail(std::exception_ptr e) {
  error_ = std::move(e);
  finish(FinishReason::kError);
}

void Sequence::finish(FinishReason r) {
  result_.finish = r;
  result_.finish_reason = finish_reason_name(r);
  // A stop string or the guard ended the text: what is held back is dropped.
  if (decoder_ && r != FinishReason::kStopString && r != FinishReason::kGuard && r != FinishReason::kError) {
    bool stopped = false;
    std::string tail = stops_.feed(decoder_->flush(), &stopped) + stops_.flush();
    result_.text += tail;
    if (on_text_ && !tail.empty()) on_text_(tail);
  }
  result_.decode_s = t_first_ > 0 ? now_s() - t_first_ : 0;
}

void Sequence::accept_logits(const float* logits, int vocab) {
  if (!wants_logits_ || done()) return;
  wants_logits_ = false;
  if (result_.ids.empty() && t_first_ == 0) {
    t_first_ = now_s();
    result_.prefill_s = t_first_ - t_start_;
  }
  if (int(result_.ids.size()) >= req_.max_new_tokens) return finish(FinishReason::kMaxTokens);
  if (req_.on_logits) req_.on_logits(logits, vocab);
  const int next = sampler_.sample(logits, vocab);
  if (tok_ && next == tok_->eos_id()) return finish(FinishReason::kEos);
  result_.ids.push_back(next);
  sampler_.accept(next);
  if (decoder_) {
    bool stopped = false;
    const std::string piece = decoder_->push(next);
    const std::string out = stops_.feed(piece, &stopped);
    result_.text += out;
    if (on_text_ && !out.empty()) on_text_(out);
    if (stopped) return finish(FinishReason::kStopString);
    if (req_.guard && req_.guard(piece)) return finish(FinishReason::kGuard);
  }
  if (int(result_.ids.size()) == req_.max_new_tokens) return finish(FinishReason::kMaxTokens);
  if (!cache_.can_grow(1)) return finish(FinishReason::kContext);
  next_token_ = next;
}

int step_sequences(const LanguageModel& lm, std::span<Sequence* const> seqs, const Ops& ops, int max_rows) {
  DSVL2_REQUIRE(max_rows >= 1, "a step needs room for at least one row, not %d", max_rows);
  Batch b(lm.config().hidden_size);
  std::vector<Sequence*> in_batch;
  // Decode rows first (one each, never starved), then prompt chunks share
  // what is left of max_rows in turn.
  for (Sequence* s : seqs)
    if (!s->done() && s->pending_prompt_rows() == 0 && s->add_rows(b, 1) > 0) in_batch.push_back(s);
  int left = std::max(0, max_rows - b.rows());
  for (Sequence* s : seqs)
    if (!s->done() && s->pending_prompt_rows() > 0 && left > 0) {
      const int n = s->add_rows(b, left);
      left -= n;
      if (n > 0) in_batch.push_back(s);
    }
  if (b.rows() > 0) {
    // A failed forward touches no cache and no sequence: the error goes to
    // the caller and the same step can be tried again.
    Tensor logits = lm.forward(b, ops);
    for (Sequence* s : in_batch) s->commit_rows();
    // Each sequence's rows are contiguous and at most its last wants logits,
    // so logits rows come in the order the sequences were added. A callback
    // that throws (on_text, the guard) ends its own sequence only.
    const int vocab = lm.config().vocab_size;
    int l = 0;
    for (Sequence* s : in_batch) {
      if (!s->wants_logits()) continue;
      try {
        s->accept_logits(logits.f32() + int64_t(l) * vocab, vocab);
      } catch (...) {
        s->fail(std::current_exception());
      }
      l++;
    }
  }
  int running = 0;
  for (Sequence* s : seqs) running += !s->done();
  return running;
}

void run_to_end(const LanguageModel& lm, Sequence& seq, const Ops& ops, int max_rows) {
  Sequence* one[] = {&seq};
  while (step_sequences(lm, one, ops, max_rows) > 0) {
  }
  if (seq.error()) std::rethrow_exception(seq.error());
}

}  // namespace dsvl2
