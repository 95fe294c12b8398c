// Helpers for hostile-input tests: build safetensors bytes by hand and
// assert that a call fails with dsvl2::Error whose message names the problem.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"

namespace dsvl2::test {

// 8-byte little-endian length + header + data.
inline std::string st_bytes(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; i++) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

inline SafetensorsHeader st_parse(const std::string& bytes) {
  return parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "hostile.safetensors");
}

// Runs f; passes when it throws Error whose message contains every needle.
inline ::testing::AssertionResult fails_with(const std::function<void()>& f, std::initializer_list<std::string> needles) {
  try {
    f();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const std::string& n : needles)
      if (msg.find(n) == std::string::npos)
        return ::testing::AssertionFailure() << "error \"" << msg << "\" does not mention \"" << n << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-dsvl2 exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "accepted hostile input";
}

}  // namespace dsvl2::test
