// A Hugging Face checkpoint folder's weights: model.safetensors, or shards
// listed in model.safetensors.index.json. Every shard is mmapped and validated.
//
//   Checkpoint ckpt("deepseek-vl2-tiny/");
//   TensorView w = ckpt.require("vision.norm.weight", {1152});   // Error names tensor + file
#pragma once
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"

namespace dsvl2 {

class Checkpoint {
 public:
  // `dir` is a folder (single file or sharded) or a single .safetensors file.
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool has(std::string_view name) const;
  // The tensor with exactly this shape; throws Error naming tensor and file.
  TensorView require(const std::string& name, const Shape& shape) const;
  // Same, with a missing tensor allowed (returns false).
  bool get(const std::string& name, const Shape& shape, TensorView* out) const;
  // File that holds `name` (for error messages); for a missing name, the
  // single file, or the folder of a sharded checkpoint.
  std::string file_of(std::string_view name) const;
  std::vector<std::string> names() const;
  size_t total_bytes() const;

 private:
  struct Loc {
    size_t shard;
    const SafetensorsTensor* t;
  };
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, Loc, std::less<>> index_;
};

}  // namespace dsvl2
