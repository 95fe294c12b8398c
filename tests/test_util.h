// Shared test helpers: where the golden data lives, and readable tensor
// comparisons in the style of llm.c's check_tensor (first mismatches + max diff).
#pragma once
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "llm/decoder.h"
#include "ops/ops.h"

namespace dsvl2::test {

// ../shared (or $DSVL2_SHARED_DIR). Empty when absent.
std::string shared_dir();
// <shared>/golden (or $DSVL2_GOLDEN_DIR). Empty when absent.
std::string golden_dir();
// <shared>/tokenizer. Empty when absent.
std::string tokenizer_dir();
// Directory of the build (for running the dsvl2 binary in e2e tests).
std::string binary_dir();
// A fresh empty temporary directory for one test, removed with its contents
// when the test process exits (DSVL2_KEEP_TEST_TMP=1 keeps it).
std::string temp_dir(const std::string& tag);

// Runs a shell command with `stdin_text` on its standard input; captures
// stdout and stderr separately.
struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
CommandResult run_command(const std::string& cmd, const std::string& stdin_text = "");
// Path of the built dsvl2 binary.
std::string dsvl2_binary();

// The SIMD kernel tables this CPU runs (AVX2, AVX-512); all_tables() puts the
// scalar reference first.
std::vector<const KernelTable*> simd_tables();
std::vector<const KernelTable*> all_tables();

struct DiffStats {
  double max_abs = 0, mean_abs = 0;
  int64_t argmax_at = -1;
};
DiffStats diff(const float* a, const float* b, int64_t n);

// Greedy decoding through the shipped generation step (model/sequence.h)
// with no tokenizer: prompt embeds[T, hidden] after what the cache holds,
// max_new tokens. step_logits[i] are the logits that chose ids[i].
struct GreedyRun {
  std::vector<int> ids;
  std::vector<float> step_logits;  // [ids.size(), vocab]
  std::string finish_reason;
};
GreedyRun greedy(const LanguageModel& lm, const float* embeds, int T, KVCache& cache, const Ops& ops, int max_new,
                 int prefill_chunk = kDefaultPrefillChunk);

// Whether CI is running (CI=true): then missing golden data fails a test
// instead of skipping it, so a run cannot pass by skipping.
bool in_ci();

// n normal values of standard deviation `scale`, fixed by `seed`.
inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace dsvl2::test

// Skips the current test, visibly, when the golden data is missing; fails it
// under CI.
#define DSVL2_REQUIRE_GOLDEN()                                                                  \
  do {                                                                                          \
    if (::dsvl2::test::golden_dir().empty()) {                                                  \
      if (::dsvl2::test::in_ci()) FAIL() << "golden data not found, and CI=true requires it";   \
      GTEST_SKIP() << "golden data not found (set DSVL2_GOLDEN_DIR or put shared/ beside the checkout)"; \
    }                                                                                           \
  } while (0)
