// Error handling (see docs/architecture.md):
//  * dsvl2::Error — a request that cannot be served, with a kind that the
//    boundary maps to an exit code (CLI) or an HTTP status (server). Thrown by
//    library code, caught at the boundary and reported as one clear line.
//    Library messages name the limit or the input, never a command-line flag.
//  * DSVL2_CHECK — a broken internal invariant; aborts with file:line.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dsvl2 {

enum class ErrorKind {
  kInvalidInput,    // malformed or unsupported input: files, images, JSON, parameters
  kTooLong,         // valid input over a size limit: the context, the images a prompt may carry
  kOutOfResources,  // the limit is the machine's or the budget's: memory, KV cache bytes
  kInternal,        // a failure that is not the caller's: a broken invariant reported as an error
};
const char* error_kind_name(ErrorKind k);  // "invalid_input", "too_long", ...

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, ErrorKind kind = ErrorKind::kInvalidInput)
      : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// printf-style message builder for errors.
std::string strformat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);

}  // namespace dsvl2

#define DSVL2_CHECK(cond, ...)                                                           \
  do {                                                                                   \
    if (!(cond)) ::dsvl2::check_failed(__FILE__, __LINE__, #cond, ::dsvl2::strformat(__VA_ARGS__)); \
  } while (0)

// Throws dsvl2::Error with a printf-formatted message.
#define DSVL2_FAIL(...) throw ::dsvl2::Error(::dsvl2::strformat(__VA_ARGS__))
// Throws dsvl2::Error of kind ErrorKind::KIND, e.g. DSVL2_FAIL_KIND(kTooLong, "...").
#define DSVL2_FAIL_KIND(KIND, ...) \
  throw ::dsvl2::Error(::dsvl2::strformat(__VA_ARGS__), ::dsvl2::ErrorKind::KIND)
#define DSVL2_REQUIRE(cond, ...)              \
  do {                                        \
    if (!(cond)) DSVL2_FAIL(__VA_ARGS__);     \
  } while (0)
