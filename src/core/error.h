// Error handling, two kinds (see docs/architecture.md):
//  * dsvl2::Error — bad input (files, images, JSON, prompts). Thrown by library
//    code, caught at the CLI/server boundary and reported as one clear line.
//  * DSVL2_CHECK — a broken internal invariant; aborts with file:line.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dsvl2 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
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
#define DSVL2_REQUIRE(cond, ...)              \
  do {                                        \
    if (!(cond)) DSVL2_FAIL(__VA_ARGS__);     \
  } while (0)
