// Flags shared by the commands that generate text (run, chat, ground).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "model/generate.h"
#include "model/vl_model.h"
#include "ops/ops.h"

namespace dsvl2::cli {

struct GenFlags {
  std::string model;
  int max_new_tokens = 512;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float repeat_penalty = 1.1f;  // the official demo's default
  long long seed = 0;
  int threads = 0;
  int context = 0;
  std::string compute = "bf16";
  std::string system;
  bool quiet = false;
  bool no_repack = false;

  void add_to(CLI::App& app);
  // Repacks the model's matrices for ops (VisionLanguageModel::prepare), or
  // with --no-repack maps the checkpoint's pages up front (populate).
  void prepare(VisionLanguageModel& model, const Ops& ops) const;
  GenerateRequest request() const;
  Compute compute_mode() const;
};

// Streams generated text to stdout as it arrives.
void print_stream(std::string_view text);

// A progress bar on stderr for image encoding (nothing when quiet or when
// stderr is not a terminal).
std::function<void(int, int, int)> encode_progress_bar(const GenFlags& f);

// Writes one status line to stderr unless quiet ("dsvl2: loading ... 0.12 s").
void status(const GenFlags& f, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace dsvl2::cli
