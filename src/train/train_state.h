// A resumable training checkpoint: OUT/checkpoint/ holds the trainable
// parameters (trained.safetensors, official or PEFT names), the AdamW
// moments (optimizer.safetensors) and where the run was (state.json: step,
// samples consumed, and a fingerprint of the settings that must not change
// across a resume). It is written beside and renamed over the previous one,
// so a kill at any moment leaves one complete checkpoint.
#pragma once
#include <cstdint>
#include <string>

#include "train/adamw.h"
#include "train/params.h"

namespace dsvl2 {

struct TrainProgress {
  int64_t step = 0;      // optimizer steps done
  int64_t consumed = 0;  // samples consumed (epoch = consumed / dataset size)
  std::string fingerprint;
};

// Writes the trainable parameters by name (F32).
void save_trainable(const ParamStore& ps, const std::string& path);
// Loads values into parameters of the same names and shapes; Error when a
// trainable parameter is missing from the file or a shape differs.
void load_trainable(ParamStore& ps, const std::string& path);

void save_train_checkpoint(const std::string& out_dir, const ParamStore& ps, AdamW& opt, const TrainProgress& p);
// Whether out_dir has a checkpoint; when it has, restores parameters,
// moments and progress (Error when its fingerprint differs from `fingerprint`).
bool load_train_checkpoint(const std::string& out_dir, ParamStore& ps, AdamW& opt, const std::string& fingerprint,
                           TrainProgress* p);

}  // namespace dsvl2
