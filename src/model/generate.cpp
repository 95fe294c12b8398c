#include "model/generate.h"

namespace dsvl2 {

GenerateResult generate(const LanguageModel& lm, const Tokenizer& tok, const float* embeds, int T,
                        const std::vector<int32_t>& history, KVCache& cache, const Ops& ops,
                        const GenerateRequest& req, const std::function<void(std::string_view)>& on_text) {
  Sequence seq(&tok, cache, req, history, on_text);
  seq.set_prompt(embeds, T, lm.config().hidden_size);
  run_to_end(lm, seq, ops, req.prefill_chunk);
  return seq.take_result();
}

}  // namespace dsvl2
