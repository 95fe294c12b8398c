// Internal to dataset/: making bytes from untrusted files (tar member names,
// parser messages) fit for a message, and the UTF-8 locale libarchive needs.
// Validation itself is core/utf8.h.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace dsvl2::dataset::detail {

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
