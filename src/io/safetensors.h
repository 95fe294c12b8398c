// safetensors files: a validating reader over a memory map and a streaming writer.
//
// Reader rules follow the reference implementation (safetensors/src/tensor.rs)
// plus the stricter checks our loader wants (duplicate keys, NUL in names):
// see docs/architecture.md and ../shared/design/reliability-and-ecosystem.md §A1.
//
//   SafetensorsFile f("model.safetensors");          // throws Error on any violation
//   const SafetensorsTensor* t = f.find("vision.norm.weight");
//   TensorView v = t->view;                            // dtype, shape, bytes (unaligned!)
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/file.h"
#include "core/tensor.h"
#include "io/tensor_stream.h"

namespace dsvl2 {

constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;  // reference MAX_HEADER_SIZE

struct SafetensorsTensor {
  std::string name;
  TensorView view;  // data points into the map; may be unaligned
  uint64_t begin = 0, end = 0;  // offsets relative to the byte buffer
};

// Parses and validates a safetensors image held in memory. `what` names the
// source in error messages. Throws Error. Exposed separately for the fuzzer.
struct SafetensorsHeader {
  std::vector<SafetensorsTensor> tensors;  // in file (offset) order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + N
};
SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& what);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return map_.path(); }
  const std::vector<SafetensorsTensor>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const SafetensorsTensor* find(std::string_view name) const;
  const MappedFile& mapping() const { return map_; }

 private:
  MappedFile map_;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Streaming writer: declare every tensor first, then write their bytes in the
// declared order (chunks allowed). Nothing is held in memory but the header.
class SafetensorsWriter {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
  };
  SafetensorsWriter(const std::string& path, std::vector<Entry> entries,
                    const std::map<std::string, std::string>& metadata = {});
  // Appends bytes to the current tensor; moves to the next when it is full.
  void write(const void* bytes, size_t n) { stream_->write(bytes, n); }
  void close() { stream_->close(); }  // checks every tensor was written in full

 private:
  std::unique_ptr<TensorStream> stream_;
};

// Convenience: writes whole tensors (small outputs such as traces).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors);

}  // namespace dsvl2
