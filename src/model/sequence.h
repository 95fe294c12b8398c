// One generation request as a state machine that a scheduler advances one
// step at a time, batched with others: its prompt rows (prefilled in chunks),
// its sampler, streaming UTF-8 decoder, stop strings, guard and KV cache, and
// why it finished. generate(), ChatSession, `bench` and the golden tests all
// drive this one step, so there is one decoding loop.
//
//   Sequence a(&tok, cache_a, req, prompt_ids_a, on_text_a);
//   a.set_prompt(embeds_a.f32(), Ta);
//   Sequence b(...);
//   std::vector<Sequence*> live = {&a, &b};
//   while (step_sequences(lm, live, ops) > 0) {}
#pragma once
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llm/decoder.h"
#include "sample/sampler.h"
#include "text/tokenizer.h"

namespace dsvl2 {

enum class FinishReason {
  kNone,        // still running
  kEos,         // the model ended its answer
  kStopString,  // a stop string appeared (it is not in the text)
  kGuard,       // the guard stopped it (e.g. the grounding runaway guard)
  kMaxTokens,   // max_new_tokens reached
  kContext,     // the KV cache is full
  kError,       // a callback (on_text, the guard) threw: error() holds it
};
// OpenAI's finish_reason: "stop" (EOS, stop string, guard) or "length";
// "error" for kError.
const char* finish_reason_name(FinishReason r);

struct GenerateRequest {
  int max_new_tokens = 512;
  SamplingParams sampling;
  // The deepseek template's stops: the EOS text and "User:" (conversation.py).
  std::vector<std::string> stop_strings = {"<｜end▁of▁sentence｜>", "User:"};
  int prefill_chunk = kDefaultPrefillChunk;
  // Called with each newly decoded piece of text; returning true stops
  // generation (the grounding runaway guard plugs in here).
  std::function<bool(std::string_view)> guard;
  // Sees every logits row a token is sampled from, before sampling (tests
  // compare runs: alone, batched, with a reused prefix).
  std::function<void(const float*, int)> on_logits;
};

struct GenerateResult {
  std::vector<int32_t> ids;      // sampled tokens (EOS excluded)
  std::vector<int32_t> fed_ids;  // the subset whose K/V are now in the cache
  std::string text;              // streamed text (stop string excluded)
  FinishReason finish = FinishReason::kNone;
  std::string finish_reason;     // finish_reason_name(finish)
  int prompt_tokens = 0;
  double prefill_s = 0, decode_s = 0;
};

class Sequence {
 public:
  // `tok` may be null: then no text is decoded, EOS never ends the sequence
  // and stop strings are not watched (golden tests, benchmarks). `history`:
  // ids already in the context, prompt included, for the repetition penalty.
  // The cache must outlive the sequence.
  Sequence(const Tokenizer* tok, KVCache& cache, const GenerateRequest& req, const std::vector<int32_t>& history = {},
           std::function<void(std::string_view)> on_text = {});

  // The prompt rows to prefill after what the cache holds: embeddings
  // [T, hidden] (copied). Errors: kTooLong when they do not fit the cache.
  void set_prompt(const float* embeds, int T, int64_t hidden);
  // Or: the prompt is already in the cache (run by the caller, e.g. for its
  // logits at every position, or shared from a prefix cache) and `logits` are
  // its last position's; the first token is sampled from them now.
  void start_from_logits(const float* logits, int vocab);

  bool done() const { return result_.finish != FinishReason::kNone; }
  int pending_prompt_rows() const { return prompt_rows_ - prompt_done_; }
  KVCache& cache() const { return cache_; }
  const GenerateResult& result() const { return result_; }
  GenerateResult take_result() { return std::move(result_); }

  // Why it ended with kError (null otherwise).
  std::exception_ptr error() const { return error_; }

  // Adds this sequence's rows for the next step: up to `max_rows` prompt
  // rows, or its one decode row. Returns the rows added (0 when done). The
  // sequence itself changes only in commit_rows(), once the forward ran.
  int add_rows(Batch& b, int max_rows);
  void commit_rows();
  // Whether the rows it last added ask for logits (its last row does).
  bool wants_logits() const { return wants_logits_; }
  // Ends the sequence with kError (a callback of its own threw).
  void fail(std::exception_ptr e);
  // Takes the logits row of this sequence's last added row, if it asked for
  // one: samples, streams text, checks the stops.
  void accept_logits(const float* logits, int vocab);

 private:
  void finish(FinishReason r);
  const Tokenizer* tok_;
  KVCache& cache_;
  GenerateRequest req_;
  Sampler sampler_;
  std::optional<StreamDecoder> decoder_;
  StopStrings stops_;
  std::function<void(std::string_view)> on_text_;
  std::vector<float> prompt_;
  int prompt_rows_ = 0, prompt_done_ = 0;
  int64_t hidden_ = 0;
  int next_token_ = -1;   // sampled, to be fed at the next step
  int staged_prompt_rows_ = 0, staged_token_ = -1;  // in the batch being run
  std::exception_ptr error_;
  bool wants_logits_ = false;
  double t_start_ = 0, t_first_ = 0;
  GenerateResult result_;
};

// Advances every unfinished sequence by one step in one batched forward:
// prompt chunks (at most max_rows rows in all, shared in turn) and decode
// rows. Returns the number of sequences still running. When the forward
// fails, it throws and no sequence or cache has changed; a sequence whose own
// callback throws ends with kError and the others go on.
int step_sequences(const LanguageModel& lm, std::span<Sequence* const> seqs, const Ops& ops,
                   int max_rows = kDefaultPrefillChunk);

// Steps one sequence alone until it finishes; rethrows the error of a
// sequence that ended with kError.
void run_to_end(const LanguageModel& lm, Sequence& seq, const Ops& ops, int max_rows = kDefaultPrefillChunk);

}  // namespace dsvl2
