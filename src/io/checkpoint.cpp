#include "io/checkpoint.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace dsvl2 {

namespace {
// Shard names come from an untrusted index: plain basenames only.
bool safe_shard_name(const std::string& s) {
  return !s.empty() && s != "." && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find("..") == std::string::npos && s.find('\0') == std::string::npos;
}
}  // namespace

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  if (file_exists(dir) && is_gguf_file(dir)) {
    gguf_ = std::make_unique<GgufFile>(dir);
    for (const auto& t : gguf_->tensors()) index_[t.name] = Loc{0, &t.view, t.type};
    return;
  } else if (file_exists(dir)) {  // a single .safetensors file
    shards_.push_back(std::make_unique<SafetensorsFile>(dir));
  } else if (!is_directory(dir)) {
    DSVL2_FAIL("%s: no such checkpoint folder or file", dir.c_str());
  } else {
    std::string index_path = path_join(dir, "model.safetensors.index.json");
    std::string single = path_join(dir, "model.safetensors");
    if (file_exists(index_path)) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file(index_path));
      } catch (const nlohmann::json::exception& e) {
        DSVL2_FAIL("%s: invalid JSON: %s", index_path.c_str(), e.what());
      }
      if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        DSVL2_FAIL("%s: missing \"weight_map\" object", index_path.c_str());
      if (j["weight_map"].empty()) DSVL2_FAIL("%s: \"weight_map\" lists no tensors", index_path.c_str());
      std::map<std::string, size_t> shard_ids;
      std::map<std::string, std::string> wanted;  // tensor -> shard
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it.value().is_string()) DSVL2_FAIL("%s: weight_map[\"%s\"] is not a string", index_path.c_str(), it.key().c_str());
        std::string shard = it.value().get<std::string>();
        if (!safe_shard_name(shard))
          DSVL2_FAIL("%s: shard name \"%s\" for tensor \"%s\" is not a plain file name", index_path.c_str(),
                     shard.c_str(), it.key().c_str());
        if (!shard_ids.count(shard)) {
          shard_ids[shard] = shards_.size();
          shards_.push_back(std::make_unique<SafetensorsFile>(path_join(dir, shard)));
        }
        wanted[it.key()] = shard;
      }
      for (const auto& [name, shard] : wanted) {
        size_t id = shard_ids[shard];
        const SafetensorsTensor* t = shards_[id]->find(name);
        if (!t) DSVL2_FAIL("%s: tensor \"%s\" is listed in the index but missing from %s", index_path.c_str(), name.c_str(), shard.c_str());
        index_[name] = Loc{id, &t->view, nullptr};
      }
      // Every shard tensor must be in the map, and in exactly one shard.
      for (size_t s = 0; s < shards_.size(); s++)
        for (const auto& t : shards_[s]->tensors()) {
          auto it = index_.find(t.name);
          if (it == index_.end())
            DSVL2_FAIL("%s: tensor \"%s\" in %s is not listed in the index", index_path.c_str(), t.name.c_str(),
                       shards_[s]->path().c_str());
          if (it->second.shard != s)
            DSVL2_FAIL("%s: tensor \"%s\" appears in two shards (%s and %s)", index_path.c_str(), t.name.c_str(),
                       shards_[it->second.shard]->path().c_str(), shards_[s]->path().c_str());
        }
      return;
    } else if (file_exists(single)) {
      shards_.push_back(std::make_unique<SafetensorsFile>(single));
    } else {
      DSVL2_FAIL("%s: no model.safetensors or model.safetensors.index.json", dir.c_str());
    }
  }
  for (const auto& t : shards_[0]->tensors()) index_[t.name] = Loc{0, &t.view, nullptr};
}

bool Checkpoint::has(std::string_view name) const { return index_.find(name) != index_.end(); }

const std::string& Checkpoint::shard_path(size_t shard) const {
  return gguf_ ? gguf_->path() : shards_[shard]->path();
}

std::string Checkpoint::file_of(std::string_view name) const {
  auto it = index_.find(name);
  if (it != index_.end()) return shard_path(it->second.shard);
  if (gguf_) return gguf_->path();
  return shards_.size() == 1 ? shards_[0]->path() : dir_;  // a missing tensor: the one file, else the folder
}

namespace {
Shape drop_leading_ones(const Shape& s) {
  size_t i = 0;
  while (i < s.size() && s[i] == 1) i++;
  return Shape(s.begin() + long(i), s.end());
}
}  // namespace

bool Checkpoint::get(const std::string& name, const Shape& shape, TensorView* out, bool allow_quantized) const {
  auto it = index_.find(name);
  if (it == index_.end()) return false;
  const TensorView& v = *it->second.view;
  const char* path = shard_path(it->second.shard).c_str();
  bool same = gguf_ ? drop_leading_ones(v.shape) == drop_leading_ones(shape) : v.shape == shape;
  if (!same)
    DSVL2_FAIL("%s: tensor \"%s\" has shape %s, expected %s", path, name.c_str(), shape_str(v.shape).c_str(),
               shape_str(shape).c_str());
  const GgmlTypeInfo* g = it->second.ggml;
  if (g && !g->has_dtype)
    DSVL2_FAIL("%s: tensor \"%s\" has GGUF type %s, which dsvl2 does not support", path, name.c_str(), g->name);
  bool is_float = v.dtype == DType::kF32 || v.dtype == DType::kBF16 || v.dtype == DType::kF16;
  if (!is_float && !(allow_quantized && dtype_is_quantized(v.dtype)))
    DSVL2_FAIL("%s: tensor \"%s\" has dtype %s; %s", path, name.c_str(), dtype_name(v.dtype),
               allow_quantized ? "weights must be F32, F16, BF16 or block-quantized"
                               : "this tensor must be F32, F16 or BF16");
  *out = v;
  out->shape = shape;
  return true;
}

TensorView Checkpoint::require(const std::string& name, const Shape& shape) const {
  TensorView v;
  if (!get(name, shape, &v))
    DSVL2_FAIL("%s: required tensor \"%s\" %s is missing", gguf_ || shards_.size() == 1 ? shard_path(0).c_str() : dir_.c_str(),
               name.c_str(), shape_str(shape).c_str());
  return v;
}

TensorView Checkpoint::require_weight(const std::string& name, const Shape& shape) const {
  TensorView v;
  if (!get(name, shape, &v, true))
    DSVL2_FAIL("%s: required tensor \"%s\" %s is missing", gguf_ || shards_.size() == 1 ? shard_path(0).c_str() : dir_.c_str(),
               name.c_str(), shape_str(shape).c_str());
  return v;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : index_) out.push_back(k);
  return out;
}

const TensorView* Checkpoint::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.view;
}

size_t Checkpoint::total_bytes() const {
  size_t n = 0;
  for (const auto& [k, v] : index_) n += v.view->nbytes;
  return n;
}

size_t Checkpoint::release(const void* p, size_t n, bool drop_cache) const {
  for (const auto& s : shards_)
    if (s->mapping().contains(p)) return s->mapping().release(p, n, drop_cache);
  if (gguf_ && gguf_->mapping().contains(p)) return gguf_->mapping().release(p, n, drop_cache);
  return 0;
}

size_t Checkpoint::file_bytes() const {
  size_t bytes = 0;
  for (const auto& s : shards_) bytes += s->mapping().size();
  if (gguf_) bytes += gguf_->mapping().size();
  return bytes;
}

bool Checkpoint::populate(size_t budget_bytes) const {
  if (file_bytes() > budget_bytes) return false;
  for (const auto& s : shards_) s->mapping().populate();
  if (gguf_) gguf_->mapping().populate();
  return true;
}

}  // namespace dsvl2
