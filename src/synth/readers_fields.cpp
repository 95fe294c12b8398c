// Shared pieces of the annotation readers: how a stream's early stop is
// reported, typed field access with errors that name the field, and the
// final id order of a set.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "synth/readers_json.h"

namespace dsvl2::synth {

using nlohmann::json;

void finish_stream(const std::string& path, const JsonStreamResult& r, AnnotationSet& set) {
  if (r.stopped.empty()) return;
  if (r.records == 0) DSVL2_FAIL("%s: %s", path.c_str(), r.stopped.c_str());
  set.errors.push_back({path, r.stopped + "; the rest of the file was not read"});
}

int64_t json_int(const json& rec, const char* key) {
  auto it = rec.find(key);
  if (it == rec.end()) DSVL2_FAIL("no \"%s\"", key);
  if (it->is_number_integer()) return it->get<int64_t>();
  // Some converters write ids as 123.0.
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return int64_t(d);
  }
  DSVL2_FAIL("\"%s\" is not an integer", key);
}

int json_dim(const json& rec, const char* key) {
  // Checked as 64 bits: a narrowing cast first would let 2^32 + 640 pass as 640.
  const int64_t v = json_int(rec, key);
  if (v < 0 || v > kMaxImageSide) DSVL2_FAIL("\"%s\" %lld is outside 0..%d", key, (long long)v, kMaxImageSide);
  return int(v);
}

double json_finite(const json& v, const std::string& what) {
  if (!v.is_number()) DSVL2_FAIL("%s is not a number", what.c_str());
  double d = v.get<double>();
  if (!std::isfinite(d)) DSVL2_FAIL("%s is not finite", what.c_str());
  return d;
}

double json_number(const json& rec, const char* key) {
  auto it = rec.find(key);
  if (it == rec.end()) DSVL2_FAIL("no \"%s\"", key);
  return json_finite(*it, strformat("\"%s\"", key));
}

std::string json_string(const json& rec, const char* key) {
  auto it = rec.find(key);
  if (it == rec.end() || !it->is_string()) DSVL2_FAIL("no string \"%s\"", key);
  return it->get<std::string>();
}

std::vector<AnnotatedImage> sorted_images(std::map<int64_t, AnnotatedImage>&& by_id) {
  std::vector<AnnotatedImage> out;
  out.reserve(by_id.size());
  for (auto& [id, img] : by_id) {
    std::stable_sort(img.objects.begin(), img.objects.end(),
                     [](const AnnotatedObject& a, const AnnotatedObject& b) { return a.id < b.id; });
    out.push_back(std::move(img));
  }
  return out;
}

}  // namespace dsvl2::synth
