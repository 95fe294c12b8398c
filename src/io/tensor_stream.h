// The byte-streaming half of our tensor-file writers (safetensors, GGUF):
// after the header, each declared tensor must receive exactly its size, in
// order, in chunks of any size; each is followed by zero padding up to
// `alignment` (1: none). Nothing but the sizes is held in memory.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace dsvl2 {

class TensorStream {
 public:
  // Creates `path` and writes `header`. Throws Error.
  TensorStream(const std::string& path, std::string_view header, std::vector<std::string> names,
               std::vector<uint64_t> sizes, uint32_t alignment);
  TensorStream(const TensorStream&) = delete;
  TensorStream& operator=(const TensorStream&) = delete;
  ~TensorStream();

  // Appends bytes to the current tensor; moves to the next when it is full.
  void write(const void* bytes, size_t n);
  void close();  // checks every tensor was written in full
  uint64_t size_of(size_t i) const { return sizes_.at(i); }

 private:
  void pad_current();
  void skip_empty();

  std::string path_;
  std::ofstream out_;
  std::vector<std::string> names_;
  std::vector<uint64_t> sizes_;
  uint32_t alignment_;
  size_t current_ = 0;
  uint64_t written_in_current_ = 0;
  bool closed_ = false;
};

}  // namespace dsvl2
