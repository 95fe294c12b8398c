// `dsvl2 quantize`: write a .gguf with block-quantized language-model matrices
// (the q4_m mix, Q8_0, Q4_0 or IQ4_NL).
#include <chrono>
#include <cstdio>

#include "command.h"
#include "core/thread_pool.h"
#include "model/quantize.h"

namespace dsvl2::cli {
namespace {

struct QuantizeFlags {
  std::string model, type = "q8_0", parts = "language", out;
  int threads = 0;
};

Command reg("quantize", "Quantize a checkpoint's language-model matrices into one .gguf (recommended: --type q4_m)",
            [](CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  app.add_option("-m,--model", f->model, "Checkpoint folder")->required();
  app.add_option("--type", f->type,
                 "q4_m (recommended: the routed experts and lm_head in 4-bit IQ4_NL, every other matrix in Q8_0), q8_0 "
                 "(default: int8 blocks of 32 with an f16 scale, near-lossless), q4_0 (4-bit blocks of 32), iq4_nl "
                 "(4-bit on ggml's non-linear grid, everywhere; q4_0 and iq4_nl files are 4 % smaller than "
                 "q4_m's but lose far more: docs/performance.md) or bf16 (copy)");
  app.add_option("--parts", f->parts,
                 "Comma list of experts,shared,dense,attention,head,embed,vision,projector; language (default: "
                 "the first six) or all");
  app.add_option("-t,--threads", f->threads, "Quantization threads (default: all cores; same bytes either way)");
  app.add_option("-o,--out", f->out, "Output .gguf (put tokenizer.json beside it)")->required();
  return std::function<int()>([f] {
    auto t0 = std::chrono::steady_clock::now();
    ThreadPool pool(f->threads);
    QuantizeStats st = quantize_checkpoint(f->model, f->type, parse_quantize_parts(f->parts), f->out, &pool);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %lld tensors (%lld quantized to %s), %.2f GB -> %.2f GB in %.1f s\n", f->out.c_str(),
                (long long)st.tensors, (long long)st.quantized, f->type.c_str(), double(st.bytes_in) / 1e9,
                double(st.bytes_out) / 1e9, s);
    return 0;
  });
});

}  // namespace
}  // namespace dsvl2::cli
