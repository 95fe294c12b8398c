// Checkpoint folders that training writes: the base folder with some tensors
// replaced (trained parameters, or base weights with a LoRA adapter merged
// in), every other tensor copied byte for byte in its stored dtype, and the
// folder's other files (config, processor config, tokenizer) copied, so that
// every other command loads the result like the original.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/tensor.h"
#include "io/checkpoint.h"

namespace dsvl2 {

// New values of the tensors named in `names`, made one at a time while the
// file is written (a merged model never holds more than one f32 matrix).
struct Replacements {
  std::set<std::string> names;
  std::function<Tensor(const std::string& name)> values;  // f32, the stored element count
  std::map<std::string, Shape> shapes;  // when known up front: must equal the base's (checked before writing)
};

// Tensors of `replace` are written in the stored dtype (bf16 rounded to
// nearest even), all others copied byte for byte. The base must be a
// safetensors checkpoint with float tensors where replaced. Writes
// out_dir/model.safetensors; out_dir is created and must not be base_dir.
void write_checkpoint_folder(const Checkpoint& base, const std::string& base_dir, const Replacements& replace,
                             const std::string& out_dir);
// The same with values already in memory.
void write_checkpoint_folder(const Checkpoint& base, const std::string& base_dir,
                             const std::map<std::string, const Tensor*>& replace, const std::string& out_dir);

// `dsvl2 merge-lora`: base + (alpha / r) B A for every adapter module of a
// PEFT folder (adapter_model.safetensors + adapter_config.json), and the
// tensors of its trained.safetensors (trained in full) in place of the
// base's, written as a complete folder. Returns the number of LoRA-merged
// matrices.
int merge_lora_folder(const std::string& base_dir, const std::string& adapter_dir, const std::string& out_dir);

}  // namespace dsvl2
