// Sampling loop over the language model with the KV cache: prefill the prompt
// embeddings, then sample token by token, streaming decoded text, until EOS, a
// stop string, max_new_tokens, a guard, or the end of the context.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llm/decoder.h"
#include "sample/sampler.h"
#include "text/tokenizer.h"

namespace dsvl2 {

struct GenerateRequest {
  int max_new_tokens = 512;
  SamplingParams sampling;
  // The deepseek template's stops: the EOS text and "User:" (conversation.py).
  std::vector<std::string> stop_strings = {"<｜end▁of▁sentence｜>", "User:"};
  int prefill_chunk = kDefaultPrefillChunk;
  // Called with each newly decoded piece of text; returning true stops
  // generation (the grounding runaway guard plugs in here).
  std::function<bool(std::string_view)> guard;
};

struct GenerateResult {
  std::vector<int32_t> ids;        // sampled tokens (EOS excluded)
  std::vector<int32_t> fed_ids;    // the subset whose K/V are now in the cache
  std::string text;                // streamed text (stop string excluded)
  std::string finish_reason;       // "stop" (EOS, stop string, guard) or "length" (max tokens, context)
  int prompt_tokens = 0;
  double prefill_s = 0, decode_s = 0;
};

// `embeds` [T, hidden] are prefilled after whatever `cache` holds; `history`
// are the ids already in the context (prompt included) for the repetition
// penalty. on_text receives each piece of text as it becomes final.
GenerateResult generate(const LanguageModel& lm, const Tokenizer& tok, const float* embeds, int T,
                        const std::vector<int32_t>& history, KVCache& cache, const Ops& ops,
                        const GenerateRequest& req, const std::function<void(std::string_view)>& on_text);

}  // namespace dsvl2
