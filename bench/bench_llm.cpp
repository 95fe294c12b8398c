// Decoder throughput at the real DeepSeek-VL2 Tiny LLM dimensions with random
// BF16 weights built in memory (no checkpoint file): prefill tok/s for a
// prompt, decode tok/s with the KV cache, each with its fraction of this
// machine's roofline measured in the same run (ops/roofline.h):
//   prefill: compute, model/cost.h's FLOPs a token at the bf16 (or f32) peak;
//   decode:  memory, the active BF16 weights a token reads at the streaming
//            read bandwidth measured right before and after the decode.
// The weights are views into a 1.5 GB random pool (values repeat, bytes per
// token do not), so the run fits in memory yet streams model-sized weights.
// They are not prepared (no packed copies, no fused matrices): `dsvl2 bench`
// measures the model as the commands run it.
//
//   ./build/bench/bench_llm --benchmark_filter='Prefill/512|Decode/128'
// DSVL2_COMPUTE=f32|bf16 (default bf16), DSVL2_ISA as for every dsvl2 binary.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

#include "llm/decoder.h"
#include "llm/random_weights.h"
#include "model/cost.h"
#include "ops/roofline.h"

namespace dsvl2 {
namespace {

using Clock = std::chrono::steady_clock;

LanguageConfig tiny_llm() {
  LanguageConfig c;
  c.vocab_size = 129280;
  c.hidden_size = 1280;
  c.intermediate_size = 6848;
  c.moe_intermediate_size = 896;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 10;
  c.num_key_value_heads = 10;
  c.n_shared_experts = 2;
  c.n_routed_experts = 64;
  c.num_experts_per_tok = 6;
  c.first_k_dense_replace = 1;
  c.use_mla = false;
  c.topk_method = "greedy";
  c.scoring_func = "softmax";
  c.max_position_embeddings = 4096;
  return c;
}

struct Bench {
  LanguageConfig cfg = tiny_llm();
  RandomWeights weights{1, size_t(1536) << 20};
  std::unique_ptr<LanguageModel> lm;
  ThreadPool pool{0};
  Ops ops{&kernels_best(), &pool, Compute::kBF16};
  Roofline roof;
  LanguageCost cost;
  Bench() {
    if (const char* c = std::getenv("DSVL2_COMPUTE")) parse_compute(c, &ops.compute);
    lm = std::make_unique<LanguageModel>(cfg, weights.source());
    roof = measure_roofline(pool, true);
    cost = language_cost_per_token(cfg);
  }
  double peak_flops() const { return 1e9 * (ops.compute == Compute::kBF16 ? roof.bf16_gflops : roof.f32_gflops); }
  std::vector<float> embeds(int T) const {
    std::vector<int> ids(static_cast<size_t>(T));
    for (int t = 0; t < T; t++) ids[size_t(t)] = (t * 7919 + 13) % cfg.vocab_size;
    Tensor e = lm->embed(ids);
    return std::vector<float>(e.f32(), e.f32() + e.numel());
  }
};

Bench& bench() {
  static Bench b;
  return b;
}

void label(benchmark::State& state, const Bench& b) {
  state.SetLabel(std::string(isa_name(b.ops.k->isa)) + "/" + compute_name(b.ops.compute) +
                 " threads=" + std::to_string(b.pool.size()));
}

void BM_Prefill(benchmark::State& state) {
  Bench& b = bench();
  const int T = int(state.range(0));
  auto e = b.embeds(T);
  double seconds = 0;
  for (auto _ : state) {
    KVCache cache(b.cfg);
    auto t0 = Clock::now();
    Tensor l = b.lm->forward(e.data(), T, cache, b.ops, LogitsMode::kLast);
    benchmark::DoNotOptimize(l.f32());
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double tok_s = double(T) * double(state.iterations()) / seconds;
  state.counters["tok/s"] = tok_s;
  state.counters["roofline"] = tok_s * b.cost.prefill_flops / b.peak_flops();  // fraction of the compute bound
  label(state, b);
}

void BM_Decode(benchmark::State& state) {
  Bench& b = bench();
  const int N = int(state.range(0)), prompt = 32;
  auto e = b.embeds(prompt + N);
  double seconds = 0, bandwidth = 0;
  for (auto _ : state) {
    state.PauseTiming();
    bandwidth = std::max(bandwidth, measure_read_bandwidth(b.pool, size_t(1) << 30, 2));
    KVCache cache(b.cfg);
    b.lm->forward(e.data(), prompt, cache, b.ops, LogitsMode::kNone);
    state.ResumeTiming();
    auto t0 = Clock::now();
    for (int i = 0; i < N; i++) {
      Tensor l = b.lm->forward(e.data() + int64_t(prompt + i) * b.cfg.hidden_size, 1, cache, b.ops);
      benchmark::DoNotOptimize(l.f32());
    }
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  bandwidth = std::max(bandwidth, measure_read_bandwidth(b.pool, size_t(1) << 30, 2));
  const double tok_s = double(N) * double(state.iterations()) / seconds;
  state.counters["tok/s"] = tok_s;
  state.counters["GB/s"] = bandwidth;
  // Fraction of the memory bound: BF16 weights, 2 bytes each.
  state.counters["roofline"] = tok_s * double(b.cost.linear_params) * 2 / (bandwidth * 1e9);
  label(state, b);
}

// Short variants for slow (scalar) kernels; the 512 / 128 ones are the reference sizes.
BENCHMARK(BM_Prefill)->Arg(64)->Arg(512)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_Decode)->Arg(8)->Arg(128)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace dsvl2

BENCHMARK_MAIN();
