// Token sampling, in the order Hugging Face's generate() applies its logits
// processors: repetition penalty -> temperature -> top-k -> top-p -> draw.
// Temperature 0 means greedy (argmax after the penalty).
//
//   SamplingParams p;  p.temperature = 0.7f;  p.top_p = 0.9f;  p.seed = 42;
//   Sampler s(p);
//   s.accept_prompt(prompt_ids);
//   int tok = s.sample(logits, vocab);   // then s.accept(tok)
#pragma once
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/argmax.h"
#include "core/rng.h"

namespace dsvl2 {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float repetition_penalty = 1.0f;  // 1: off; the official demo uses 1.1
  uint64_t seed = 0;
};

// Validates ranges; throws Error naming the bad parameter.
void validate_sampling(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Tokens already in the context count for the repetition penalty (HF's
  // RepetitionPenaltyLogitsProcessor sees the prompt ids too).
  void accept_prompt(const std::vector<int>& ids);
  void accept(int token);
  // Picks the next token. `logits` is not modified.
  int sample(const float* logits, int vocab);
  void reset();

 private:
  SamplingParams p_;
  Rng rng_;  // counter-based: a seed gives the same draws on every platform
  std::unordered_set<int> seen_;
  std::vector<float> work_;
  std::vector<int> idx_;
};


// Watches decoded text for stop strings. Text that could be the start of a
// stop string is held back until it is decided, so a stop string never leaks
// to the output.
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds decoded text; returns the text safe to emit now. Sets *stopped when a
  // stop string completed (the stop string and anything after it are dropped).
  std::string feed(const std::string& text, bool* stopped);
  // At the end of generation: whatever is still held back.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace dsvl2
