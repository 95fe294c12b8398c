// libFuzzer target for the EXIF reader of the recaption pipeline
// (dataset::exif_meta, libexif underneath) and the phrase built from it
// (describe_meta). Build: cmake --preset fuzz && cmake --build build-fuzz
// --target fuzz_exif; run: build-fuzz/fuzz/fuzz_exif -dict=fuzz/exif.dict
// -timeout=10 -rss_limit_mb=2048 CORPUS/ fuzz/corpus_exif
// exif_meta never throws and gives an object whose fields keep the promises of
// dataset/exif.h (strings cleaned, at most 128 bytes; numbers in range), so
// that a strict dump() succeeds; describe_meta gives valid UTF-8. A crash,
// sanitizer report, exception or broken promise (__builtin_trap) is a bug.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/utf8.h"
#include "dataset/exif.h"

namespace {

using nlohmann::json;

// Trimmed, valid UTF-8, no C0/C1 control characters or DEL, no two spaces in a row.
void check_text(const json& v) {
  if (!v.is_string()) __builtin_trap();
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 128 || !dsvl2::utf8::is_valid(s)) __builtin_trap();
  if (s.front() == ' ' || s.back() == ' ' || s.find("  ") != std::string::npos) __builtin_trap();
  for (size_t i = 0; i < s.size(); i++) {
    const auto c = uint8_t(s[i]);
    if (c < 0x20 || c == 0x7F) __builtin_trap();
    if (c == 0xC2 && i + 1 < s.size() && uint8_t(s[i + 1]) < 0xA0) __builtin_trap();  // U+0080..U+009F
  }
}

double number(const json& v, double lo, double hi) {
  if (!v.is_number()) __builtin_trap();
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) __builtin_trap();
  return d;
}

void check_meta(const json& m) {
  if (!m.is_object()) __builtin_trap();
  for (auto it = m.begin(); it != m.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (k == "camera_make" || k == "camera_model" || k == "exposure_time") {
      check_text(v);
    } else if (k == "exposure_s") {
      if (number(v, 0, 1e5) <= 0) __builtin_trap();
    } else if (k == "f_number") {
      number(v, 0, 1e3);  // in (0, 1e3), then rounded to 0.01 (so 0.004 gives 0)
    } else if (k == "focal_length_mm") {
      number(v, 0, 1e5);  // rounded as f_number
    } else if (k == "iso") {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0) __builtin_trap();
    } else if (k == "datetime") {
      // YYYY-MM-DDTHH:MM:SS
      if (!v.is_string()) __builtin_trap();
      const std::string& s = v.get_ref<const std::string&>();
      if (s.size() != 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        __builtin_trap();
    } else if (k == "gps") {
      if (!v.is_object() || v.empty()) __builtin_trap();
      for (auto g = v.begin(); g != v.end(); ++g) {
        if (g.key() == "lat") {
          number(g.value(), -90, 90);
        } else if (g.key() == "lon") {
          number(g.value(), -180, 180);
        } else if (g.key() == "alt_m") {
          number(g.value(), -1e6, 1e6);
        } else {
          __builtin_trap();
        }
      }
    } else {
      __builtin_trap();  // a field exif.h does not list
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const json meta = dsvl2::dataset::exif_meta(bytes);
  check_meta(meta);
  (void)meta.dump();  // strict: throws (an uncaught exception, a crash) on invalid UTF-8
  const std::string phrase = dsvl2::dataset::describe_meta(meta);
  if (!dsvl2::utf8::is_valid(phrase)) __builtin_trap();
  if (meta.empty() && !phrase.empty()) __builtin_trap();  // {} says nothing
  return 0;
}
