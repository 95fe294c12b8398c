#include "gen_options.h"

#include <cstdarg>
#include <unistd.h>

#include <cstdio>

#include "core/error.h"

namespace dsvl2::cli {

void GenFlags::add_to(CLI::App& app) {
  app.add_option("-m,--model", model, "Checkpoint folder (config.json, *.safetensors, tokenizer.json)")->required();
  app.add_option("-n,--max-tokens", max_new_tokens, "Most new tokens to generate (default 512)");
  app.add_option("--temp", temperature, "Sampling temperature; 0 = greedy (default 0)");
  app.add_option("--top-p", top_p, "Nucleus sampling mass (default 1 = off)");
  app.add_option("--top-k", top_k, "Keep the k most likely tokens (default 0 = off)");
  app.add_option("--repeat-penalty", repeat_penalty, "Repetition penalty (default 1.1, the official demo's)");
  app.add_option("-s,--seed", seed, "Random seed for sampling (default 0)");
  app.add_option("-t,--threads", threads, "Threads (default: all cores)");
  app.add_option("-c,--ctx", context, "Context length in tokens (default: the model's, 4096)");
  app.add_option("--compute", compute, "Numeric mode: bf16 (fast, default) or f32 (reference)");
  app.add_flag("--no-repack", no_repack,
               "Run from the mapped checkpoint without repacking its matrices at load "
               "(loads faster, generates slower; same results)");
  app.add_option("--system", system, "System text before the conversation");
  app.add_flag("-q,--quiet", quiet, "No progress or timing lines on stderr");
}

void GenFlags::prepare(VisionLanguageModel& model, const Ops& ops) const {
  // Nothing packed (f32 mode on BF16 weights, or a CPU without the packed
  // kernels): run from the mapping, prefaulted.
  model.make_ready(ops, !no_repack);
}

Compute GenFlags::compute_mode() const {
  Compute c;
  if (!parse_compute(compute, &c)) DSVL2_FAIL("--compute must be f32 or bf16, got \"%s\"", compute.c_str());
  return c;
}

GenerateRequest GenFlags::request() const {
  GenerateRequest r;
  if (max_new_tokens < 0) DSVL2_FAIL("--max-tokens must be >= 0");
  r.max_new_tokens = max_new_tokens;
  r.sampling.temperature = temperature;
  r.sampling.top_p = top_p;
  r.sampling.top_k = top_k;
  r.sampling.repetition_penalty = repeat_penalty;
  r.sampling.seed = uint64_t(seed);
  validate_sampling(r.sampling);
  return r;
}

void print_stream(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

std::function<void(int, int, int)> encode_progress_bar(const GenFlags& f) {
  if (f.quiet || !isatty(fileno(stderr))) return {};
  return [](int tiles, int done, int total) {
    const int width = 30, filled = total > 0 ? done * width / total : width;
    std::fprintf(stderr, "\rdsvl2: encoding %d tile%s [%.*s%*s] %d/%d", tiles, tiles == 1 ? "" : "s", filled,
                 "##############################", width - filled, "", done, total);
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

void status(const GenFlags& f, const char* fmt, ...) {
  if (f.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::fputs("dsvl2: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

}  // namespace dsvl2::cli
