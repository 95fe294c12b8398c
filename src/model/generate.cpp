#include "model/generate.h"

#include <chrono>

#include "core/error.h"

namespace dsvl2 {

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateResult generate(const LanguageModel& lm, const Tokenizer& tok, const float* embeds, int T,
                        const std::vector<int32_t>& history, KVCache& cache, const Ops& ops,
                        const GenerateRequest& req, const std::function<void(std::string_view)>& on_text) {
  if (req.max_new_tokens < 0) DSVL2_FAIL("max_new_tokens must be >= 0");
  if (cache.length() + T > cache.context())
    DSVL2_FAIL("the prompt needs %d positions but the context holds %d (%d already used): shorten the prompt or "
               "raise --ctx",
               T, cache.context(), cache.length());
  GenerateResult r;
  r.prompt_tokens = T;
  auto t0 = std::chrono::steady_clock::now();
  Tensor logits = lm.forward(embeds, T, cache, ops, LogitsMode::kLast, req.prefill_chunk);
  r.prefill_s = since(t0);

  Sampler sampler(req.sampling);
  sampler.accept_prompt(std::vector<int>(history.begin(), history.end()));
  StreamDecoder decoder(tok);
  StopStrings stops(req.stop_strings);
  const int vocab = int(logits.dim(-1));
  const int eos = tok.eos_id();
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text) on_text(s);
  };
  t0 = std::chrono::steady_clock::now();
  r.finish_reason = "length";
  bool cut = false;  // a stop string or the guard ended the text: drop what is held back
  for (int n = 0; n < req.max_new_tokens; n++) {
    int next = sampler.sample(logits.f32(), vocab);
    if (next == eos) {
      r.finish_reason = "stop";
      break;
    }
    r.ids.push_back(next);
    sampler.accept(next);
    bool stopped = false;
    std::string piece = decoder.push(next);
    emit(stops.feed(piece, &stopped));
    if (stopped || (req.guard && req.guard(piece))) {
      r.finish_reason = "stop";
      cut = true;
      break;
    }
    if (n + 1 == req.max_new_tokens || cache.length() + 1 > cache.context()) break;
    logits = lm.step(next, cache, ops);
    r.fed_ids.push_back(next);
  }
  if (!cut) {
    bool stopped = false;
    emit(stops.feed(decoder.flush(), &stopped));
    emit(stops.flush());
  }
  r.decode_s = since(t0);
  return r;
}

}  // namespace dsvl2
