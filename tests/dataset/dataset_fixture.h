// Shared helpers of the dataset tests: files in a per-test folder, tars built
// with the project's own writer, and reading a unit to the end.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "dataset/sample_reader.h"
#include "dataset/tar_writer.h"
#include "image/test_encoders.h"
#include "test_util.h"

namespace dsvl2::dataset::test {

using Members = std::vector<std::pair<std::string, std::string>>;

// A folder of its own for each test (named after it).
inline std::string test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return dsvl2::test::temp_dir(std::string("dataset_") + info->test_suite_name() + "_" + info->name());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

inline std::string make_tar(const Members& members) {
  std::string out;
  for (const auto& [name, bytes] : members) out += tar_member(name, bytes);
  return out + tar_end();
}

// Every sample of a unit, in order.
inline std::vector<Sample> read_all(const InputUnit& unit, const ReadLimits& limits = {}) {
  std::vector<Sample> out;
  SampleReader r(unit, limits);
  for (Sample s; r.next(s);) out.push_back(std::move(s));
  return out;
}

inline std::vector<Sample> read_tar_bytes(const std::string& dir, const std::string& bytes,
                                          const ReadLimits& limits = {}) {
  const std::string path = dir + "/shard.tar";
  write_bytes(path, bytes);
  return read_all({path, "shard", InputKind::kTar}, limits);
}

// A small real JPEG (a gradient), so that image bytes are plausible.
inline std::string tiny_jpeg(int w = 16, int h = 8) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (size_t i = 0; i < px.size(); i++) px[i] = uint8_t(i * 7);
  return dsvl2::test::encode_jpeg(px.data(), w, h, 3, 90);
}

inline std::string keys_of(const std::vector<Sample>& samples) {
  std::string out;
  for (const Sample& s : samples) out += (out.empty() ? "" : " ") + s.key + (s.error.empty() ? "" : "!");
  return out;
}

}  // namespace dsvl2::dataset::test
