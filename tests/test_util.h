// Shared test helpers: where the golden data lives, and readable tensor
// comparisons in the style of llm.c's check_tensor (first mismatches + max diff).
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "core/tensor.h"

namespace dsvl2::test {

// ../shared (or $DSVL2_SHARED_DIR). Empty when absent.
std::string shared_dir();
// <shared>/golden (or $DSVL2_GOLDEN_DIR). Empty when absent.
std::string golden_dir();
// <shared>/tokenizer. Empty when absent.
std::string tokenizer_dir();
// Directory of the build (for running the dsvl2 binary in e2e tests).
std::string binary_dir();
// A fresh empty temporary directory for one test.
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

struct DiffStats {
  double max_abs = 0, mean_abs = 0;
  int64_t argmax_at = -1;
};
DiffStats diff(const float* a, const float* b, int64_t n);

}  // namespace dsvl2::test

// Skips the current test, visibly, when the golden data is missing.
#define DSVL2_REQUIRE_GOLDEN()                                                            \
  do {                                                                                    \
    if (::dsvl2::test::golden_dir().empty())                                              \
      GTEST_SKIP() << "golden data not found (set DSVL2_GOLDEN_DIR or put shared/ beside the checkout)"; \
  } while (0)
