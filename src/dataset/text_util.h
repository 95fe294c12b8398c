// Internal to dataset/: UTF-8 checks for bytes that came from untrusted files
// (tar member names, EXIF strings, parser messages) before they reach a
// message or a JSON string, which must be valid UTF-8.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace dsvl2::dataset::detail {

// Length of the well-formed UTF-8 character at s[i] (1-4), or 0 when the bytes
// there are not one (overlong forms, surrogates and code points over U+10FFFF
// are not).
size_t utf8_char_len(std::string_view s, size_t i);

bool valid_utf8(std::string_view s);

// `s` for a message: valid UTF-8 kept, other bytes and control characters
// written as \xNN, cut to about `max_bytes` with "...".
std::string printable(std::string_view s, size_t max_bytes = 256);

// While alive, this thread's character type is UTF-8 (C.UTF-8), whatever
// the process locale (the C locale, unless main() called setlocale). libarchive
// converts tar names between UTF-8 and the locale's charset; in the C locale
// it cannot convert a non-ASCII name at all, so the tar code runs under this.
// Does nothing where C.UTF-8 does not exist.
class ScopedUtf8Locale {
 public:
  ScopedUtf8Locale();
  ~ScopedUtf8Locale();
  ScopedUtf8Locale(const ScopedUtf8Locale&) = delete;
  ScopedUtf8Locale& operator=(const ScopedUtf8Locale&) = delete;

 private:
  void* previous_ = nullptr;  // a locale_t
};

}  // namespace dsvl2::dataset::detail
