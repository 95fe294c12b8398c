// A model's weights: a Hugging Face checkpoint folder (model.safetensors, or
// shards listed in model.safetensors.index.json), a single .safetensors file,
// or a single GGUF file (detected by its magic). Every file is mmapped and
// validated.
//
//   Checkpoint ckpt("deepseek-vl2-tiny/");
//   TensorView w = ckpt.require("vision.norm.weight", {1152});   // Error names tensor + file
//
// GGUF: tensors keep their HF names; the config comes from the file's metadata
// (gguf_vl_config(ckpt.gguf()->metadata()), io/gguf_dsvl2.h) instead of
// config.json. require() still returns only F32/F16/BF16; weights that the
// kernels can consume quantized are fetched with require_weight(), which also
// returns block-quantized views (DType::kQ8_0, kQ4_0, ...; nbytes from the
// block table). GGUF writers may drop leading size-1 dimensions, so for GGUF
// the shape check ignores leading 1s and the view carries the requested shape.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.h"
#include "io/safetensors.h"

namespace dsvl2 {

class Checkpoint {
 public:
  // `dir` is a folder (single file or sharded), a single .safetensors file or
  // a single .gguf file.
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool has(std::string_view name) const;
  // The tensor with exactly this shape, F32/F16/BF16; throws Error naming tensor and file.
  TensorView require(const std::string& name, const Shape& shape) const;
  // Same, but block-quantized tensors (GGUF) are returned too.
  TensorView require_weight(const std::string& name, const Shape& shape) const;
  // Same as require, with a missing tensor allowed (returns false).
  bool get(const std::string& name, const Shape& shape, TensorView* out, bool allow_quantized = false) const;
  // The GGUF file when the checkpoint is one, else nullptr.
  const GgufFile* gguf() const { return gguf_.get(); }
  // File that holds `name` (for error messages); for a missing name, the
  // single file, or the folder of a sharded checkpoint.
  std::string file_of(std::string_view name) const;
  std::vector<std::string> names() const;
  // The tensor as stored (its own shape and dtype, quantized included), or
  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  size_t total_bytes() const;
  // Maps all files' pages up front when they fit in `budget_bytes` (the
  // caller passes what memory can hold), so the first prompt does not pay a
  // page fault per 4 KiB of weights. Returns whether it populated.
  bool populate(size_t budget_bytes) const;
  // Drops the mapped pages of bytes [p, p + n) of whichever file holds them
  // (MappedFile::release, with the page cache too when drop_cache); returns
  // the bytes dropped.
  size_t release(const void* p, size_t n, bool drop_cache = false) const;
  // Bytes of all files (headers included).
  size_t file_bytes() const;

 private:
  struct Loc {
    size_t shard;
    const TensorView* view;
    const GgmlTypeInfo* ggml;  // GGUF tensors only
  };
  const std::string& shard_path(size_t shard) const;
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::unique_ptr<GgufFile> gguf_;
  std::map<std::string, Loc, std::less<>> index_;
};

}  // namespace dsvl2
