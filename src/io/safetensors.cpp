#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/utf8.h"

namespace dsvl2 {

namespace {

using json = nlohmann::json;

// Escapes a tensor name for error messages (names are attacker-controlled).
std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += char(c);
    } else {
      out += strformat("\\x%02x", c);
    }
  }
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}


bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& what) {
  const char* w = what.c_str();
  if (size < 8) DSVL2_FAIL("%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length", w, size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | data[i];  // little-endian u64
  if (n > kSafetensorsMaxHeader)
    DSVL2_FAIL("%s: safetensors header length %llu exceeds the 100 MB limit", w, (unsigned long long)n);
  if (n > size - 8)
    DSVL2_FAIL("%s: safetensors header length %llu runs past the end of the file (%zu bytes): truncated?", w,
               (unsigned long long)n, size);
  const uint8_t* hdr = data + 8;
  // Strict UTF-8, as Rust's str::from_utf8 (the reference reader) accepts it.
  if (!utf8::is_valid(std::string_view(reinterpret_cast<const char*>(hdr), n)))
    DSVL2_FAIL("%s: safetensors header is not valid UTF-8", w);

  // Duplicate keys: nlohmann keeps the last one silently, so track the keys
  // of every open object while parsing (tensor entries too: two "dtype"s).
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (ev == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (ev == json::parse_event_t::key && !open_objects.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(hdr, hdr + n, cb);
  } catch (const json::exception& e) {
    DSVL2_FAIL("%s: safetensors header is not valid JSON: %s", w, e.what());
  }
  if (!duplicate.empty()) DSVL2_FAIL("%s: safetensors header has duplicate key \"%s\"", w, escape(duplicate).c_str());
  if (!j.is_object()) DSVL2_FAIL("%s: safetensors header is not a JSON object", w);

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t buffer_size = size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name.find('\0') != std::string::npos) DSVL2_FAIL("%s: tensor name contains a NUL byte: \"%s\"", w, escape(name).c_str());
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) DSVL2_FAIL("%s: __metadata__ is not an object", w);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) DSVL2_FAIL("%s: __metadata__ value for \"%s\" is not a string", w, escape(m.key()).c_str());
        const std::string& s = m.value().get_ref<const std::string&>();
        if (m.key().find('\0') != std::string::npos || s.find('\0') != std::string::npos)
          DSVL2_FAIL("%s: __metadata__ contains a NUL byte", w);
        h.metadata[m.key()] = s;
      }
      continue;
    }
    std::string en = escape(name);
    if (!v.is_object()) DSVL2_FAIL("%s: tensor \"%s\": entry is not an object", w, en.c_str());
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!v.contains(key)) DSVL2_FAIL("%s: tensor \"%s\": missing \"%s\"", w, en.c_str(), key);
    const json& jd = v["dtype"];
    const json& js = v["shape"];
    const json& jo = v["data_offsets"];
    if (!jd.is_string()) DSVL2_FAIL("%s: tensor \"%s\": dtype is not a string", w, en.c_str());
    SafetensorsTensor t;
    t.name = name;
    if (!dtype_from_name(jd.get_ref<const std::string&>(), &t.view.dtype))
      DSVL2_FAIL("%s: tensor \"%s\": unsupported dtype \"%s\"", w, en.c_str(), escape(jd.get_ref<const std::string&>()).c_str());
    if (!js.is_array() || js.size() > 8) DSVL2_FAIL("%s: tensor \"%s\": shape must be an array of at most 8 dimensions", w, en.c_str());
    uint64_t numel = 1;
    for (const json& d : js) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        DSVL2_FAIL("%s: tensor \"%s\": shape entries must be non-negative integers", w, en.c_str());
      uint64_t dim = d.get<uint64_t>();
      if (dim > uint64_t(INT64_MAX) || mul_overflows(numel, dim, &numel))
        DSVL2_FAIL("%s: tensor \"%s\": shape %s overflows", w, en.c_str(), js.dump().c_str());
      t.view.shape.push_back(int64_t(dim));
    }
    uint64_t nbytes;
    if (mul_overflows(numel, dtype_size(t.view.dtype), &nbytes) || nbytes > uint64_t(INT64_MAX))
      DSVL2_FAIL("%s: tensor \"%s\": byte size of shape %s overflows", w, en.c_str(), js.dump().c_str());
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      DSVL2_FAIL("%s: tensor \"%s\": data_offsets must be two non-negative integers", w, en.c_str());
    t.begin = jo[0].get<uint64_t>();
    t.end = jo[1].get<uint64_t>();
    if (t.end < t.begin) DSVL2_FAIL("%s: tensor \"%s\": data_offsets end before begin", w, en.c_str());
    if (t.end - t.begin != nbytes)
      DSVL2_FAIL("%s: tensor \"%s\": data_offsets span %llu bytes but %s %s needs %llu", w, en.c_str(),
                 (unsigned long long)(t.end - t.begin), dtype_name(t.view.dtype), js.dump().c_str(),
                 (unsigned long long)nbytes);
    t.view.nbytes = size_t(nbytes);
    h.tensors.push_back(std::move(t));
  }
  // Offsets must chain exactly: sorted by begin, each starts where the last
  // ended, the first at 0 — no holes, no overlap, no aliasing.
  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& t : h.tensors) {
    if (t.begin != expect)
      DSVL2_FAIL("%s: tensor \"%s\": data_offsets [%llu, %llu] %s (expected it to start at %llu)", w,
                 escape(t.name).c_str(), (unsigned long long)t.begin, (unsigned long long)t.end,
                 t.begin < expect ? "overlap another tensor" : "leave a hole", (unsigned long long)expect);
    expect = t.end;
  }
  if (expect != buffer_size)
    DSVL2_FAIL("%s: tensors cover %llu bytes but the data section has %llu (%s)", w, (unsigned long long)expect,
               (unsigned long long)buffer_size, expect < buffer_size ? "trailing bytes" : "file truncated");
  for (auto& t : h.tensors) t.view.data = data + h.data_start + t.begin;
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : map_(path) {
  header_ = parse_safetensors(map_.data(), map_.size(), path);
  for (size_t i = 0; i < header_.tensors.size(); i++) index_[header_.tensors[i].name] = i;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<Entry> entries,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json j;
  if (!metadata.empty()) j["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> names;
  std::vector<std::string> order;
  std::vector<uint64_t> sizes;
  for (const auto& e : entries) {
    if (!names.insert(e.name).second) DSVL2_FAIL("%s: duplicate tensor name \"%s\"", path.c_str(), e.name.c_str());
    if (dtype_is_quantized(e.dtype))
      DSVL2_FAIL("%s: tensor \"%s\": %s is a GGUF block type, not a safetensors dtype", path.c_str(), e.name.c_str(),
                 dtype_name(e.dtype));
    uint64_t n = uint64_t(shape_numel(e.shape)) * dtype_size(e.dtype);
    j[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + n}}};
    order.push_back(e.name);
    sizes.push_back(n);
    offset += n;
  }
  std::string header = j.dump();
  if (header == "null") header = "{}";
  while (header.size() % 8) header += ' ';  // align the data section to 8 bytes
  if (header.size() > kSafetensorsMaxHeader) DSVL2_FAIL("%s: safetensors header would exceed 100 MB", path.c_str());
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; i++) prefix[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  stream_ = std::make_unique<TensorStream>(path, prefix + header, std::move(order), std::move(sizes), 1);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors) {
  std::vector<SafetensorsWriter::Entry> entries;
  for (const auto& [name, t] : tensors) entries.push_back({name, t->dtype(), t->shape()});
  SafetensorsWriter w(path, entries);
  for (const auto& [name, t] : tensors) w.write(t->data(), t->nbytes());
  w.close();
}

}  // namespace dsvl2
