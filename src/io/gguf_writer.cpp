// GGUF writer: header (magic, version 3, counts, metadata, tensor infos) is
// built in memory and validated with the reader's rules, then tensor bytes are
// streamed with zero padding to the alignment after every tensor, as
// llama.cpp's gguf_write_to_buf and gguf-py's GGUFWriter do.
#include <algorithm>
#include <set>

#include "io/gguf.h"

namespace dsvl2 {

namespace {

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

uint32_t writer_alignment(const GgufMetadata& md, const std::string& path) {
  const GgufValue* a = md.find(kGgufKeyAlignment);
  if (!a) return kGgufDefaultAlignment;
  if (a->type != GgufType::kU32 || a->is_array) DSVL2_FAIL("%s: %s must be a u32", path.c_str(), kGgufKeyAlignment);
  uint32_t v = a->at<uint32_t>(0);
  // The spec asks writers for a multiple of 8; readers accept any power of two.
  if (v < 8 || (v & (v - 1)) != 0)
    DSVL2_FAIL("%s: %s = %u must be a power of two and a multiple of 8", path.c_str(), kGgufKeyAlignment, v);
  return v;
}

}  // namespace

GgufWriter::GgufWriter(const std::string& path, const GgufMetadata& metadata, std::vector<Entry> entries)
    : entries_(std::move(entries)) {
  const char* w = path.c_str();
  alignment_ = writer_alignment(metadata, path);

  std::string h;
  h.append("GGUF", 4);
  put<uint32_t>(h, kGgufVersion);
  put<uint64_t>(h, entries_.size());
  put<uint64_t>(h, metadata.size());
  for (const auto& [key, v] : metadata.entries()) {  // already validated by GgufMetadata::add
    put_string(h, key);
    if (v.is_array) {
      put<uint32_t>(h, uint32_t(GgufType::kArray));
      put<uint32_t>(h, uint32_t(v.type));
      put<uint64_t>(h, v.count);
    } else {
      put<uint32_t>(h, uint32_t(v.type));
    }
    if (v.type == GgufType::kString) {
      for (const auto& s : v.strings) put_string(h, s);
    } else {
      h.append(reinterpret_cast<const char*>(v.bytes.data()), v.bytes.size());
    }
  }

  std::set<std::string> names;
  std::vector<std::string> order;
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const auto& e : entries_) {
    std::string en = gguf_escape(e.name);
    if (const char* why = gguf_tensor_name_problem(e.name)) DSVL2_FAIL("%s: tensor \"%s\": %s", w, en.c_str(), why);
    if (!names.insert(e.name).second) DSVL2_FAIL("%s: duplicate tensor name \"%s\"", w, en.c_str());
    const GgmlTypeInfo* ti = ggml_type_info(uint32_t(e.type));
    if (!ti) DSVL2_FAIL("%s: tensor \"%s\": unknown ggml type %u", w, en.c_str(), unsigned(e.type));
    if (e.shape.size() > size_t(kGgufMaxDims))
      DSVL2_FAIL("%s: tensor \"%s\": %zu dimensions, GGUF allows at most %d", w, en.c_str(), e.shape.size(), kGgufMaxDims);
    uint64_t numel = 1;
    for (int64_t d : e.shape) {
      if (d < 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel) || numel > uint64_t(INT64_MAX))
        DSVL2_FAIL("%s: tensor \"%s\": invalid shape %s", w, en.c_str(), shape_str(e.shape).c_str());
    }
    int64_t row = e.shape.empty() ? 1 : e.shape.back();
    uint64_t nbytes;
    if (row % int64_t(ti->block_elems) != 0 || !ggml_row_bytes(*ti, numel, &nbytes))
      DSVL2_FAIL("%s: tensor \"%s\": shape %s does not hold whole %s blocks of %u", w, en.c_str(),
                 shape_str(e.shape).c_str(), ti->name, ti->block_elems);
    put_string(h, e.name);
    put<uint32_t>(h, uint32_t(e.shape.size()));
    for (auto it = e.shape.rbegin(); it != e.shape.rend(); ++it) put<int64_t>(h, *it);  // ne[0] = innermost
    put<uint32_t>(h, uint32_t(e.type));
    put<uint64_t>(h, offset);
    sizes.push_back(nbytes);
    order.push_back(e.name);
    uint64_t padded = (nbytes + alignment_ - 1) / alignment_ * alignment_;
    if (padded < nbytes || __builtin_add_overflow(offset, padded, &offset))
      DSVL2_FAIL("%s: data section size overflows", w);
  }
  while (h.size() % alignment_) h += '\0';

  stream_ = std::make_unique<TensorStream>(path, h, std::move(order), std::move(sizes), alignment_);
}

void save_gguf(const std::string& path, const GgufMetadata& metadata,
               const std::vector<std::pair<std::string, const Tensor*>>& tensors) {
  std::vector<GgufWriter::Entry> entries;
  for (const auto& [name, t] : tensors) {
    GgmlType type;
    if (!ggml_type_of(t->dtype(), &type))
      DSVL2_FAIL("%s: tensor \"%s\": dtype %s has no GGUF type", path.c_str(), name.c_str(), dtype_name(t->dtype()));
    entries.push_back({name, type, t->shape()});
  }
  GgufWriter w(path, metadata, entries);
  for (const auto& [name, t] : tensors) w.write(t->data(), t->nbytes());
  w.close();
}

}  // namespace dsvl2
