// GGUF reader and typed metadata. The checks mirror llama.cpp's
// gguf_init_from_reader (ggml/src/gguf.cpp) with the stricter additions listed
// in gguf.h. The parser walks a bounds-checked cursor over the mapped bytes:
// every length is compared with the bytes left *before* anything is allocated.
#include "io/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <set>
#include <stdexcept>

namespace dsvl2 {

namespace {

struct TypeRow {
  GgufType t;
  const char* name;
  size_t size;
};
constexpr TypeRow kTypeRows[] = {
    {GgufType::kU8, "u8", 1},    {GgufType::kI8, "i8", 1},     {GgufType::kU16, "u16", 2},
    {GgufType::kI16, "i16", 2},  {GgufType::kU32, "u32", 4},   {GgufType::kI32, "i32", 4},
    {GgufType::kF32, "f32", 4},  {GgufType::kBool, "bool", 1}, {GgufType::kString, "str", 0},
    {GgufType::kArray, "arr", 0}, {GgufType::kU64, "u64", 8},  {GgufType::kI64, "i64", 8},
    {GgufType::kF64, "f64", 8},
};

bool known_type(uint32_t t) { return t <= uint32_t(GgufType::kF64); }

// Overflow-checked round-up to a power-of-two alignment.
bool pad_to(uint64_t x, uint64_t align, uint64_t* out) {
  uint64_t r = x % align;
  if (r == 0) {
    *out = x;
    return true;
  }
  return !__builtin_add_overflow(x, align - r, out);
}

// Bounds-checked little-endian reader over the mapped file.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& what) : p_(data), size_(size), w_(what.c_str()) {}
  size_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  void need(uint64_t n, const char* field) const {
    if (n > left())
      DSVL2_FAIL("%s: truncated GGUF: %s needs %llu bytes at offset %zu but only %llu remain", w_, field,
                 (unsigned long long)n, pos_, (unsigned long long)left());
  }
  template <class T>
  T read(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));  // GGUF is little-endian, as are our targets
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* field) {
    uint64_t n = read<uint64_t>(field);
    if (n > kGgufMaxStringLength)
      DSVL2_FAIL("%s: %s: string length %llu exceeds the 1 GiB limit", w_, field, (unsigned long long)n);
    if (n > left())
      DSVL2_FAIL("%s: %s: string length %llu exceeds the %llu bytes left in the file", w_, field,
                 (unsigned long long)n, (unsigned long long)left());
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }
  const uint8_t* take(uint64_t n, const char* field) {
    need(n, field);
    const uint8_t* q = p_ + pos_;
    pos_ += size_t(n);
    return q;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const char* w_;
};

// Reads one value (scalar or array payload) of element type `t`.
void read_values(Cursor& c, GgufValue& v, const std::string& key, const char* w) {
  std::string ek = gguf_escape(key);
  if (v.type == GgufType::kString) {
    // Each string costs at least its 8-byte length: bound the count first.
    uint64_t min_bytes;
    if (__builtin_mul_overflow(v.count, uint64_t(8), &min_bytes) || min_bytes > c.left())
      DSVL2_FAIL("%s: key \"%s\": array of %llu strings cannot fit in the %llu bytes left", w, ek.c_str(),
                 (unsigned long long)v.count, (unsigned long long)c.left());
    v.strings.reserve(size_t(v.count));
    for (uint64_t i = 0; i < v.count; i++) v.strings.push_back(c.read_string("metadata string"));
    return;
  }
  size_t sz = gguf_type_size(v.type);
  uint64_t n;
  if (__builtin_mul_overflow(v.count, uint64_t(sz), &n) || n > c.left())
    DSVL2_FAIL("%s: key \"%s\": %llu values of type %s need more than the %llu bytes left", w, ek.c_str(),
               (unsigned long long)v.count, gguf_type_name(v.type), (unsigned long long)c.left());
  const uint8_t* q = c.take(n, "metadata value");
  if (v.type == GgufType::kBool)
    for (uint64_t i = 0; i < n; i++)
      if (q[i] > 1) DSVL2_FAIL("%s: key \"%s\": bool value %u is neither 0 nor 1", w, ek.c_str(), unsigned(q[i]));
  v.bytes.assign(q, q + n);
}

GgufHeader parse_impl(const uint8_t* data, size_t size, const std::string& what) {
  const char* w = what.c_str();
  Cursor c(data, size, what);
  GgufHeader h;
  h.metadata = GgufMetadata(what);

  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) {
    char m[5] = {'?', '?', '?', '?', 0};
    for (size_t i = 0; i < 4 && i < size; i++) m[i] = (data[i] >= 0x20 && data[i] < 0x7f) ? char(data[i]) : '?';
    DSVL2_FAIL("%s: not a GGUF file: magic \"%s\", expected \"GGUF\"", w, m);
  }
  c.take(4, "magic");
  h.version = c.read<uint32_t>("version");
  if (h.version == 0) DSVL2_FAIL("%s: bad GGUF version 0", w);
  // A big-endian v3 file reads as 0x03000000 here: low half zero.
  if ((h.version & 0xffffu) == 0)
    DSVL2_FAIL("%s: GGUF version %#x is byte-swapped: a big-endian file, which is not supported", w, h.version);
  if (h.version == 1) DSVL2_FAIL("%s: GGUF version 1 is no longer supported", w);
  if (h.version > kGgufVersion)
    DSVL2_FAIL("%s: GGUF version %u is newer than the supported version %u", w, h.version, kGgufVersion);

  // Counts are int64 on the llama.cpp side; anything that cannot be backed by
  // the bytes left (>= 24 per tensor info, >= 13 per KV) is rejected before
  // any allocation sized by it.
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_tensors > uint64_t(INT64_MAX) || n_tensors > c.left() / 24)
    DSVL2_FAIL("%s: tensor count %llu is impossible for a %zu-byte file", w, (unsigned long long)n_tensors, size);
  if (n_kv > uint64_t(INT64_MAX) || n_kv > c.left() / 13)
    DSVL2_FAIL("%s: metadata count %llu is impossible for a %zu-byte file", w, (unsigned long long)n_kv, size);

  for (uint64_t i = 0; i < n_kv; i++) {
    std::string key = c.read_string("metadata key");
    if (const char* why = gguf_key_problem(key))
      DSVL2_FAIL("%s: metadata key %llu \"%s\": %s", w, (unsigned long long)i, gguf_escape(key).c_str(), why);
    if (h.metadata.has(key)) DSVL2_FAIL("%s: duplicate metadata key \"%s\"", w, gguf_escape(key).c_str());
    uint32_t t = c.read<uint32_t>("metadata type");
    GgufValue v;
    if (t == uint32_t(GgufType::kArray)) {
      uint32_t et = c.read<uint32_t>("array element type");
      if (et == uint32_t(GgufType::kArray))
        DSVL2_FAIL("%s: key \"%s\": arrays of arrays are not supported", w, gguf_escape(key).c_str());
      if (!known_type(et))
        DSVL2_FAIL("%s: key \"%s\": unknown array element type %u", w, gguf_escape(key).c_str(), et);
      v.type = GgufType(et);
      v.is_array = true;
      v.count = c.read<uint64_t>("array length");
      if (v.count > kGgufMaxArrayElements)
        DSVL2_FAIL("%s: key \"%s\": array length %llu exceeds the 2^30 limit", w, gguf_escape(key).c_str(),
                   (unsigned long long)v.count);
    } else if (known_type(t)) {
      v.type = GgufType(t);
    } else {
      DSVL2_FAIL("%s: key \"%s\": unknown value type %u", w, gguf_escape(key).c_str(), t);
    }
    read_values(c, v, key, w);
    h.metadata.add(key, std::move(v));
  }

  if (const GgufValue* a = h.metadata.find(kGgufKeyAlignment)) {
    if (a->type != GgufType::kU32 || a->is_array)
      DSVL2_FAIL("%s: %s must be a u32 but is %s%s", w, kGgufKeyAlignment, a->is_array ? "an array of " : "",
                 gguf_type_name(a->type));
    h.alignment = a->at<uint32_t>(0);
    if (h.alignment == 0 || (h.alignment & (h.alignment - 1)) != 0)
      DSVL2_FAIL("%s: %s = %u is not a power of two", w, kGgufKeyAlignment, h.alignment);
  }

  std::set<std::string, std::less<>> names;
  h.tensors.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; i++) {
    GgufTensor t;
    t.name = c.read_string("tensor name");
    std::string en = gguf_escape(t.name);
    if (const char* why = gguf_tensor_name_problem(t.name))
      DSVL2_FAIL("%s: tensor %llu \"%s\": %s", w, (unsigned long long)i, en.c_str(), why);
    if (!names.insert(t.name).second) DSVL2_FAIL("%s: duplicate tensor name \"%s\"", w, en.c_str());
    uint32_t n_dims = c.read<uint32_t>("tensor n_dims");
    if (n_dims > uint32_t(kGgufMaxDims))
      DSVL2_FAIL("%s: tensor \"%s\" has %u dimensions, more than %d", w, en.c_str(), n_dims, kGgufMaxDims);
    int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};
    uint64_t numel = 1;
    bool overflow = false;
    for (uint32_t j = 0; j < n_dims; j++) {
      ne[j] = c.read<int64_t>("tensor dimension");
      if (ne[j] < 0) DSVL2_FAIL("%s: tensor \"%s\": dimension %u is negative (%lld)", w, en.c_str(), j, (long long)ne[j]);
      overflow |= __builtin_mul_overflow(numel, uint64_t(ne[j]), &numel);
    }
    for (int j = int(n_dims) - 1; j >= 0; j--) t.shape.push_back(ne[j]);  // ne[0] is innermost
    if (overflow || numel > uint64_t(INT64_MAX))
      DSVL2_FAIL("%s: tensor \"%s\": element count of shape %s overflows int64", w, en.c_str(), shape_str(t.shape).c_str());
    uint32_t type_id = c.read<uint32_t>("tensor type");
    t.type = ggml_type_info(type_id);
    if (!t.type) DSVL2_FAIL("%s: tensor \"%s\": unknown or removed ggml type %u", w, en.c_str(), type_id);
    if (ne[0] % int64_t(t.type->block_elems) != 0)
      DSVL2_FAIL("%s: tensor \"%s\": row length %lld is not a multiple of the %s block size %u", w, en.c_str(),
                 (long long)ne[0], t.type->name, t.type->block_elems);
    uint64_t nbytes;
    if (!ggml_row_bytes(*t.type, numel, &nbytes) || nbytes > uint64_t(INT64_MAX) || nbytes > SIZE_MAX)
      DSVL2_FAIL("%s: tensor \"%s\": byte size of %s %s overflows", w, en.c_str(), t.type->name, shape_str(t.shape).c_str());
    t.offset = c.read<uint64_t>("tensor offset");
    t.view.dtype = t.type->has_dtype ? t.type->dtype : DType::kU8;
    t.view.shape = t.shape;
    t.view.nbytes = size_t(nbytes);
    h.tensors.push_back(std::move(t));
  }

  const uint64_t header_end = c.pos();
  if (!pad_to(header_end, h.alignment, &h.data_offset))
    DSVL2_FAIL("%s: data section offset overflows", w);
  // Offsets must be exactly the running padded total: contiguous, in file
  // order, aligned, no overlap or holes (llama.cpp: "tensor has offset X, expected Y").
  uint64_t expect = 0, data_end = 0;
  for (auto& t : h.tensors) {
    if (t.offset != expect)
      DSVL2_FAIL("%s: tensor \"%s\" has data offset %llu, expected %llu (tensors must be contiguous, in order, aligned to %u)",
                 w, gguf_escape(t.name).c_str(), (unsigned long long)t.offset, (unsigned long long)expect, h.alignment);
    uint64_t padded;
    if (__builtin_add_overflow(t.offset, uint64_t(t.view.nbytes), &data_end) || !pad_to(data_end, h.alignment, &padded))
      DSVL2_FAIL("%s: tensor \"%s\": data section size overflows", w, gguf_escape(t.name).c_str());
    expect = padded;
  }
  h.data_size = expect;
  uint64_t need, allowed;
  if (__builtin_add_overflow(h.data_offset, data_end, &need) || __builtin_add_overflow(h.data_offset, expect, &allowed))
    DSVL2_FAIL("%s: data section size overflows", w);
  if (h.tensors.empty()) need = header_end;
  if (size < need)
    DSVL2_FAIL("%s: truncated GGUF: tensor data needs %llu bytes but the file has %zu", w, (unsigned long long)need, size);
  // The last tensor's trailing padding may be missing; anything beyond it is
  // not part of the format (a polyglot or a concatenation).
  if (size > allowed)
    DSVL2_FAIL("%s: %llu trailing bytes after the GGUF data section", w, (unsigned long long)(size - allowed));
  for (auto& t : h.tensors) t.view.data = data + h.data_offset + t.offset;
  return h;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  for (const auto& r : kTypeRows)
    if (r.t == t) return r.name;
  return "?";
}

size_t gguf_type_size(GgufType t) {
  for (const auto& r : kTypeRows)
    if (r.t == t) return r.size;
  return 0;
}

std::string gguf_escape(std::string_view s) {
  std::string out;
  for (unsigned char ch : s) {
    if (out.size() > 200) {
      out += "...";
      break;
    }
    if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"') {
      out += char(ch);
    } else {
      out += strformat("\\x%02x", ch);
    }
  }
  return out;
}

const char* gguf_key_problem(std::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kGgufMaxKeyLength) return "key longer than 65535 bytes";
  for (unsigned char ch : key)
    if (ch < 0x21 || ch > 0x7e) return "key is not printable ASCII";
  return nullptr;
}

const char* gguf_tensor_name_problem(std::string_view name) {
  if (name.empty()) return "empty tensor name";
  if (name.size() > kGgufMaxNameLength) return "tensor name longer than 63 bytes (GGML_MAX_NAME)";
  if (name.find('\0') != std::string_view::npos) return "tensor name contains a NUL byte";
  return nullptr;
}

void GgufMetadata::add(const std::string& key, GgufValue v) {
  const char* w = what_.c_str();
  if (const char* why = gguf_key_problem(key)) DSVL2_FAIL("%s: metadata key \"%s\": %s", w, gguf_escape(key).c_str(), why);
  if (has(key)) DSVL2_FAIL("%s: duplicate metadata key \"%s\"", w, gguf_escape(key).c_str());
  if (v.type == GgufType::kArray || gguf_type_name(v.type)[0] == '?')
    DSVL2_FAIL("%s: key \"%s\": invalid value type %u", w, gguf_escape(key).c_str(), unsigned(v.type));
  if (!v.is_array && v.count != 1) DSVL2_FAIL("%s: key \"%s\": scalar with count %llu", w, gguf_escape(key).c_str(), (unsigned long long)v.count);
  if (v.count > kGgufMaxArrayElements) DSVL2_FAIL("%s: key \"%s\": array longer than 2^30", w, gguf_escape(key).c_str());
  if (v.type == GgufType::kString) {
    if (v.strings.size() != v.count || !v.bytes.empty()) DSVL2_FAIL("%s: key \"%s\": malformed string value", w, gguf_escape(key).c_str());
    for (const auto& s : v.strings)
      if (s.size() > kGgufMaxStringLength) DSVL2_FAIL("%s: key \"%s\": string longer than 1 GiB", w, gguf_escape(key).c_str());
  } else if (v.bytes.size() != v.count * gguf_type_size(v.type) || !v.strings.empty()) {
    DSVL2_FAIL("%s: key \"%s\": malformed %s value", w, gguf_escape(key).c_str(), gguf_type_name(v.type));
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(key, std::move(v));
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const GgufValue& GgufMetadata::require(std::string_view key, GgufType type, bool is_array) const {
  const GgufValue* v = find(key);
  std::string ek = gguf_escape(key);
  if (!v) DSVL2_FAIL("%s: missing metadata key \"%s\"", what_.c_str(), ek.c_str());
  if (v->type != type || v->is_array != is_array)
    DSVL2_FAIL("%s: metadata key \"%s\" is %s%s, expected %s%s", what_.c_str(), ek.c_str(),
               v->is_array ? "an array of " : "", gguf_type_name(v->type), is_array ? "an array of " : "",
               gguf_type_name(type));
  return *v;
}

void GgufMetadata::check_count(std::string_view key, uint64_t count, uint64_t max) const {
  if (count > max)
    DSVL2_FAIL("%s: metadata key \"%s\" has %llu elements, more than the %llu allowed", what_.c_str(),
               gguf_escape(key).c_str(), (unsigned long long)count, (unsigned long long)max);
}

uint64_t GgufMetadata::get_count(std::string_view key, uint64_t max) const {
  const GgufValue* v = find(key);
  uint64_t n;
  if (v && !v->is_array && v->type == GgufType::kU32) {
    n = v->at<uint32_t>(0);
  } else {
    n = require(key, GgufType::kU64, false).at<uint64_t>(0);
  }
  if (n > max)
    DSVL2_FAIL("%s: metadata key \"%s\" = %llu is out of range (max %llu)", what_.c_str(), gguf_escape(key).c_str(),
               (unsigned long long)n, (unsigned long long)max);
  return n;
}

GgufHeader parse_gguf(const uint8_t* data, size_t size, const std::string& what) {
  try {
    return parse_impl(data, size, what);
  } catch (const std::bad_alloc&) {  // sizes are bounded by the file, but never abort
    DSVL2_FAIL("%s: out of memory while parsing the GGUF header", what.c_str());
  } catch (const std::length_error&) {
    DSVL2_FAIL("%s: GGUF header too large", what.c_str());
  }
}

bool is_gguf_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char m[4];
  bool ok = ::read(fd, m, 4) == 4 && std::memcmp(m, "GGUF", 4) == 0;
  ::close(fd);
  return ok;
}

GgufFile::GgufFile(const std::string& path) : map_(path) {
  header_ = parse_gguf(map_.data(), map_.size(), path);
  for (size_t i = 0; i < header_.tensors.size(); i++) index_[header_.tensors[i].name] = i;
}

const GgufTensor* GgufFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

}  // namespace dsvl2
