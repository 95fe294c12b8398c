// `dsvl2 train`: the training loop. Reads a JSONL of conversations
// (train/sft_jsonl.h), picks what trains by stage, runs forward/backward per
// sample with gradient accumulation, clips by global norm, steps AdamW on a
// warm-up + cosine schedule, logs one JSON line a step, and checkpoints so
// that --resume continues exactly where the run stopped.
//
// Stages (ms-swift's switches):
//   align — the projector and the image_newline / view_seperator vectors
//           (and with train_vision the SigLIP tower); the language model frozen:
//           activation gradients flow through it, no weight gradients.
//   sft   — LoRA on the language model when lora.rank > 0 (else the whole
//           language model); projector / vision by flag.
// Outputs in out_dir: adapter_model.safetensors + adapter_config.json (LoRA,
// PEFT names), trained.safetensors (every other trained tensor, official
// names), train_log.jsonl, checkpoint/ (resume state); `dsvl2 merge-lora`
// folds them into a complete checkpoint folder.
#pragma once
#include <cstdint>
#include <string>

#include "ops/ops.h"
#include "train/lora.h"
#include "train/sft_jsonl.h"

namespace dsvl2 {

struct TrainerConfig {
  std::string model_dir, data, out_dir;
  enum class Stage { kAlign, kSft } stage = Stage::kSft;
  bool train_vision = false, train_projector = false;
  LoraConfig lora;  // rank 0: no LoRA
  int epochs = 1;
  int64_t max_steps = 0;  // > 0: stop after this many optimizer steps
  int grad_accum = 1;
  double lr = 1e-4, min_lr = 0, weight_decay = 0.0, clip = 1.0;
  int64_t warmup = 0;
  bool recompute = true;
  uint64_t seed = 0;
  Compute compute = Compute::kF32;
  int64_t save_every = 0;  // optimizer steps between checkpoints (0: only at the end)
  bool resume = false;
  BadLinePolicy on_bad_line = BadLinePolicy::kStop;
  int64_t max_length = 0;  // 0: the model's max_position_embeddings
  std::string export_dir;  // non-empty: also write a complete checkpoint folder here
  bool quiet = false;
};

struct TrainerReport {
  int64_t steps = 0, samples = 0, bad_lines = 0, trainable = 0;
  double first_loss = 0, last_loss = 0, samples_per_s = 0, seconds = 0;
  bool resumed = false;
};

TrainerReport run_training(const TrainerConfig& cfg, ThreadPool& pool);

}  // namespace dsvl2
