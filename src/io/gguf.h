// GGUF (v3) files: a validating reader over a memory map, typed metadata, and
// a streaming writer. Format: ggml docs/gguf.md. The reader performs every
// check of llama.cpp's gguf_init_from_reader (ggml/src/gguf.cpp) plus stricter
// ones (see ../shared/design/reliability-and-ecosystem.md §A2):
//   magic "GGUF"; version 2 or 3 (0, 1, >3 and byte-swapped rejected);
//   n_tensors / n_kv bounded by the bytes left; strings <= 1 GiB and inside the
//   file; arrays <= 2^30 elements, n*size overflow-checked and inside the file,
//   no arrays of arrays; keys non-empty, printable ASCII, <= 65535 bytes, unique;
//   bools 0 or 1; general.alignment a UINT32 power of two (default 32);
//   tensor names 1..63 bytes, no NUL, unique; n_dims <= 4, every ne >= 0,
//   element count and byte size overflow-checked; type known (gguf_types.h);
//   ne[0] a whole number of blocks; offsets contiguous, in order, each the
//   running padded total; data section at PAD(header_end, alignment); the
//   file holds every tensor byte (no truncation) and nothing past the padded
//   data section (no trailing bytes, as our safetensors reader).
//
//   GgufFile f("model-Q8_0.gguf");                 // throws Error on any violation
//   uint32_t n = f.metadata().get<uint32_t>("deepseek_vl2.block_count");
//   const GgufTensor* t = f.find("vision.norm.weight");
//   t->shape;  t->view;                             // PyTorch order; bytes in the map
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "core/tensor.h"
#include "io/gguf_types.h"
#include "io/tensor_stream.h"

namespace dsvl2 {

constexpr uint32_t kGgufVersion = 3;
constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr uint64_t kGgufMaxStringLength = uint64_t(1) << 30;   // llama.cpp GGUF_MAX_STRING_LENGTH
constexpr uint64_t kGgufMaxArrayElements = uint64_t(1) << 30;  // llama.cpp GGUF_MAX_ARRAY_ELEMENTS
constexpr size_t kGgufMaxKeyLength = 65535;                    // spec: keys at most 2^16-1 bytes
constexpr size_t kGgufMaxNameLength = 63;                      // < GGML_MAX_NAME (64, NUL included)
constexpr int kGgufMaxDims = 4;                                // GGML_MAX_DIMS
constexpr const char* kGgufKeyAlignment = "general.alignment";

// Metadata value types (gguf_metadata_value_type).
enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* gguf_type_name(GgufType t);  // "u32", "str", "arr", ... ("?" if unknown)
size_t gguf_type_size(GgufType t);       // bytes of a fixed-size type; 0 for string/array/unknown

template <class T>
constexpr GgufType gguf_type_of() {
  if constexpr (std::is_same_v<T, uint8_t>) return GgufType::kU8;
  else if constexpr (std::is_same_v<T, int8_t>) return GgufType::kI8;
  else if constexpr (std::is_same_v<T, uint16_t>) return GgufType::kU16;
  else if constexpr (std::is_same_v<T, int16_t>) return GgufType::kI16;
  else if constexpr (std::is_same_v<T, uint32_t>) return GgufType::kU32;
  else if constexpr (std::is_same_v<T, int32_t>) return GgufType::kI32;
  else if constexpr (std::is_same_v<T, float>) return GgufType::kF32;
  else if constexpr (std::is_same_v<T, bool>) return GgufType::kBool;
  else if constexpr (std::is_same_v<T, std::string>) return GgufType::kString;
  else if constexpr (std::is_same_v<T, uint64_t>) return GgufType::kU64;
  else if constexpr (std::is_same_v<T, int64_t>) return GgufType::kI64;
  else if constexpr (std::is_same_v<T, double>) return GgufType::kF64;
  else static_assert(sizeof(T) == 0, "not a GGUF metadata type");
}

// One metadata value: a scalar (count 1) or an array of scalars or strings.
struct GgufValue {
  GgufType type = GgufType::kU8;     // element type, never kArray
  bool is_array = false;
  uint64_t count = 1;                // number of elements (1 for a scalar)
  std::vector<uint8_t> bytes;        // fixed-size types: count * size, little-endian
  std::vector<std::string> strings;  // kString: count strings

  template <class T>
  T at(uint64_t i) const {  // caller has checked type and i < count
    if constexpr (std::is_same_v<T, std::string>) {
      return strings[i];
    } else if constexpr (std::is_same_v<T, bool>) {
      return bytes[i] != 0;
    } else {
      T v;
      std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
      return v;
    }
  }
};

// Ordered key -> value map. Getters check the stored type (and count) before
// returning anything: metadata consumers that trusted declared types are where
// the llama.cpp CVEs landed (PR #26690). Every failure throws Error naming the
// source and the key.
class GgufMetadata {
 public:
  explicit GgufMetadata(std::string what = "gguf") : what_(std::move(what)) {}

  // Adds a value; throws Error for an invalid or duplicate key or a value
  // over the format limits.
  void add(const std::string& key, GgufValue v);
  template <class T>
  void set(const std::string& key, const T& value) {
    GgufValue v;
    v.type = gguf_type_of<T>();
    if constexpr (std::is_same_v<T, std::string>) {
      v.strings.push_back(value);
    } else if constexpr (std::is_same_v<T, bool>) {
      v.bytes.push_back(value ? 1 : 0);
    } else {
      v.bytes.resize(sizeof(T));
      std::memcpy(v.bytes.data(), &value, sizeof(T));
    }
    add(key, std::move(v));
  }
  void set(const std::string& key, const char* value) { set(key, std::string(value)); }
  template <class T>
  void set_array(const std::string& key, const std::vector<T>& values) {
    GgufValue v;
    v.type = gguf_type_of<T>();
    v.is_array = true;
    v.count = values.size();
    if constexpr (std::is_same_v<T, std::string>) {
      v.strings = values;
    } else {
      for (const T& x : values) {
        uint8_t b[sizeof(T)];
        if constexpr (std::is_same_v<T, bool>) {
          b[0] = x ? 1 : 0;
        } else {
          std::memcpy(b, &x, sizeof(T));
        }
        v.bytes.insert(v.bytes.end(), b, b + sizeof(T));
      }
    }
    add(key, std::move(v));
  }

  bool has(std::string_view key) const { return index_.find(key) != index_.end(); }
  const GgufValue* find(std::string_view key) const;
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, GgufValue>>& entries() const { return entries_; }
  const std::string& what() const { return what_; }

  // A scalar of exactly type T (no silent widening); throws if missing.
  template <class T>
  T get(std::string_view key) const {
    return require(key, gguf_type_of<T>(), false).template at<T>(0);
  }
  // Same, or nullopt when the key is absent (a present key of another type throws).
  template <class T>
  std::optional<T> get_opt(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return get<T>(key);
  }
  // An unsigned count stored as u32 or u64 (the spec allows both), <= max.
  uint64_t get_count(std::string_view key, uint64_t max) const;
  // An array whose elements are exactly T, with at most max_count elements.
  template <class T>
  std::vector<T> get_array(std::string_view key, uint64_t max_count) const {
    const GgufValue& v = require(key, gguf_type_of<T>(), true);
    check_count(key, v.count, max_count);
    std::vector<T> out;
    out.reserve(size_t(v.count));
    for (uint64_t i = 0; i < v.count; i++) out.push_back(v.template at<T>(i));
    return out;
  }

 private:
  const GgufValue& require(std::string_view key, GgufType type, bool is_array) const;
  void check_count(std::string_view key, uint64_t count, uint64_t max) const;

  std::string what_;
  std::vector<std::pair<std::string, GgufValue>> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

struct GgufTensor {
  std::string name;
  const GgmlTypeInfo* type = nullptr;  // never null once parsed
  Shape shape;                         // PyTorch order: GGUF ne[] reversed
  uint64_t offset = 0;                 // relative to the data section
  // data/nbytes always valid; dtype only when has_dtype() (else kU8 as a placeholder).
  TensorView view;
  bool has_dtype() const { return type->has_dtype; }
};

struct GgufHeader {
  uint32_t version = kGgufVersion;
  uint32_t alignment = kGgufDefaultAlignment;
  GgufMetadata metadata;
  std::vector<GgufTensor> tensors;  // in file order
  uint64_t data_offset = 0;         // file offset of the data section
  uint64_t data_size = 0;           // padded size of the data section
};

// Parses and validates a GGUF image in memory; `what` names the source in
// errors. Throws Error. Exposed separately for tests and the fuzzer.
GgufHeader parse_gguf(const uint8_t* data, size_t size, const std::string& what);

// Why a key or tensor name is invalid, or nullptr if it is fine (shared by
// the reader and the writer so both apply the same rules).
const char* gguf_key_problem(std::string_view key);
const char* gguf_tensor_name_problem(std::string_view name);
// Escapes an untrusted name for an error message (printable ASCII, capped).
std::string gguf_escape(std::string_view s);

// True if the file starts with the GGUF magic (false for unreadable files).
bool is_gguf_file(const std::string& path);

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  const std::string& path() const { return map_.path(); }
  uint32_t version() const { return header_.version; }
  uint32_t alignment() const { return header_.alignment; }
  uint64_t data_offset() const { return header_.data_offset; }
  const GgufMetadata& metadata() const { return header_.metadata; }
  const std::vector<GgufTensor>& tensors() const { return header_.tensors; }
  const GgufTensor* find(std::string_view name) const;
  const MappedFile& mapping() const { return map_; }

 private:
  MappedFile map_;
  GgufHeader header_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Streaming writer, the GGUF twin of SafetensorsWriter: metadata and tensor
// infos are declared up front (and validated with the reader's rules), then
// each tensor's bytes are written in declared order (chunks allowed); the
// writer inserts the alignment padding. The alignment is general.alignment
// from the metadata (a UINT32 power of two, multiple of 8) or 32.
class GgufWriter {
 public:
  struct Entry {
    std::string name;
    GgmlType type;
    Shape shape;  // PyTorch order; the last dimension is a whole number of blocks
  };
  GgufWriter(const std::string& path, const GgufMetadata& metadata, std::vector<Entry> entries);
  void write(const void* bytes, size_t n) { stream_->write(bytes, n); }
  void close() { stream_->close(); }  // checks every tensor was written in full; throws on I/O error
  uint64_t tensor_bytes(size_t i) const { return stream_->size_of(i); }

 private:
  std::vector<Entry> entries_;
  uint32_t alignment_ = kGgufDefaultAlignment;
  std::unique_ptr<TensorStream> stream_;
};

// Convenience: writes whole tensors (F32/F16/BF16/I* and the block DTypes).
void save_gguf(const std::string& path, const GgufMetadata& metadata,
               const std::vector<std::pair<std::string, const Tensor*>>& tensors);

}  // namespace dsvl2
