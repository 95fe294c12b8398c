// LoRA adapters on the language model, in PEFT's form: for a Linear W [out,
// in], A [r, in] (Kaiming-uniform, bound 1/sqrt(in), as PEFT initialises it)
// and B [out, r] (zeros), y = x W^T + (alpha / r) (x A^T) B^T. Adapter
// parameters live in the ParamStore under PEFT's saved names
// ("base_model.model.<module>.lora_A.weight"), so the optimizer, the
// checkpoints and adapter_model.safetensors all walk them with the rest.
//
// Targets (ms-swift style short names; a full module suffix such as
// "kv_b_proj" also works):
//   q       q_proj | q_a_proj, q_b_proj (MLA with q LoRA)
//   k, v    k_proj, v_proj | kv_a_proj_with_mqa, kv_b_proj (MLA shares them)
//   o       o_proj
//   experts every routed expert's gate/up/down_proj
//   shared  the shared experts' gate/up/down_proj
//   dense   the dense layers' gate/up/down_proj
#pragma once
#include <string>
#include <vector>

#include "train/decoder_train.h"

namespace dsvl2 {

struct LoraConfig {
  int rank = 8;
  float alpha = 16;
  std::vector<std::string> targets{"q", "k", "v", "o"};
  float scale() const { return alpha / float(rank); }
};

// "q,k,v,o" -> targets; Error on an unknown name.
std::vector<std::string> parse_lora_targets(const std::string& list);

// Adds an adapter to every targeted Linear of the decoder (Error when none
// matches). Values from the counter-based RNG keyed by each module's name.
// Returns the number of adapted modules.
int attach_lora(DecoderTrain& dec, ParamStore& ps, const LoraConfig& cfg, uint64_t seed);

// PEFT's adapter folder: adapter_model.safetensors (the lora_A / lora_B
// tensors) and adapter_config.json.
void save_lora_adapter(const ParamStore& ps, const LoraConfig& cfg, const std::string& base_model,
                       const std::string& dir);
// Reads adapter_config.json (rank, alpha, target modules as full names).
LoraConfig read_lora_config(const std::string& dir);

}  // namespace dsvl2
