// Sampling loop over the language model with the KV cache for one request:
// prefill the prompt embeddings, then sample token by token, streaming decoded
// text, until EOS, a stop string, max_new_tokens, a guard, or the end of the
// context. A Sequence (model/sequence.h) stepped alone.
#pragma once
#include <functional>
#include <string_view>
#include <vector>

#include "model/sequence.h"

namespace dsvl2 {

// `embeds` [T, hidden] are prefilled after whatever `cache` holds; `history`
// are the ids already in the context (prompt included) for the repetition
// penalty. on_text receives each piece of text as it becomes final.
GenerateResult generate(const LanguageModel& lm, const Tokenizer& tok, const float* embeds, int T,
                        const std::vector<int32_t>& history, KVCache& cache, const Ops& ops,
                        const GenerateRequest& req, const std::function<void(std::string_view)>& on_text);

}  // namespace dsvl2
