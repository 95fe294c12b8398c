#include "core/error.h"

#include <cstdarg>
#include <vector>

namespace dsvl2 {

std::string strformat(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out(n > 0 ? n : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, ap2);
  va_end(ap2);
  return out;
}

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kInvalidInput: return "invalid_input";
    case ErrorKind::kTooLong: return "too_long";
    case ErrorKind::kOutOfResources: return "out_of_resources";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "dsvl2: internal check failed at %s:%d: %s: %s\n", file, line, cond, msg.c_str());
  std::abort();
}

}  // namespace dsvl2
