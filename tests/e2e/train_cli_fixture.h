// Shared by the `dsvl2 train` / `dsvl2 merge-lora` e2e tests: one toy
// checkpoint (Tiny's schema, the real DeepSeek-V3 tokenizer) per test
// executable, two small PNGs, a JSONL of image samples in ms-swift's form
// (grounding objects included), and helpers to read the training log and
// compare safetensors files.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/file.h"
#include "ground/canvas.h"
#include "image/image.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace dsvl2::train_cli {

using json = nlohmann::json;

class TrainCliBase : public ::testing::Test {
 protected:
  // Made once per process, shared by every suite deriving from this one.
  static void SetUpTestSuite() {
    if (test::tokenizer_dir().empty() || toy_) return;
    toy_ = new std::string(test::temp_dir("train_cli_toy"));
    const test::CommandResult r =
        test::run_command(test::dsvl2_binary() + " make-random-checkpoint --preset tiny-test --out " + *toy_ +
                          " --seed 5 --tokenizer " + test::tokenizer_dir() + "/deepseek_v3/tokenizer.json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    data_ = new std::string(test::temp_dir("train_cli_data"));
    ground::save_png(picture(64, 48, 1), *data_ + "/a.png");
    ground::save_png(picture(40, 80, 2), *data_ + "/b.png");
    // ms-swift's form: top-level images, <ref-object>/<bbox> filled from "objects"
    // (pixel boxes), an untagged image, and a text-only line.
    write_lines(*data_ + "/img.jsonl",
                {R"({"messages":[{"role":"user","content":"<image>Find <ref-object>."},{"role":"assistant","content":"<bbox>"}],)"
                 R"("images":["a.png"],"objects":{"ref":["sheep"],"bbox":[[10,8,40,30]]}})",
                 R"({"messages":[{"role":"user","content":"<image>Where is <ref-object>?"},)"
                 R"({"role":"assistant","content":"<ref-object><bbox>"}],)"
                 R"("images":["b.png"],"objects":{"ref":["cat","cat"],"bbox":[[30,70,5,5]]}})",
                 R"({"messages":[{"role":"user","content":"Describe it."},{"role":"assistant","content":"A striped pattern."}],)"
                 R"("images":["a.png"]})",
                 R"({"messages":[{"role":"user","content":"What comes after two?"},{"role":"assistant","content":"three"}]})"});
  }
  void SetUp() override {
    if (test::tokenizer_dir().empty()) {
      if (test::in_ci()) GTEST_FAIL() << "shared/tokenizer not found, and CI=true requires it";
      GTEST_SKIP() << "shared/tokenizer not found";
    }
    ASSERT_NE(toy_, nullptr);
  }

  static test::CommandResult dsvl2(const std::string& args) {
    return test::run_command(test::dsvl2_binary() + " " + args);
  }
  static const std::string& toy() { return *toy_; }
  static std::string data(const std::string& name) { return *data_ + "/" + name; }

  static json msg(const char* role, const std::string& content) { return {{"role", role}, {"content", content}}; }
  static void write_lines(const std::string& path, const std::vector<std::string>& lines) {
    std::ofstream f(path, std::ios::binary);
    for (const std::string& l : lines) f << l << "\n";
  }
  static Image picture(int w, int h, int seed) {
    Image im{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
    for (size_t i = 0; i < im.rgb.size(); i++) im.rgb[i] = uint8_t((i * 7 + size_t(seed) * 31) % 251);
    return im;
  }

  // A test's folder goes when the test passed (kept for a look when it failed).
  static void remove_if_passed(const std::string& dir) {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
  }

  static inline std::string* toy_ = nullptr;
  static inline std::string* data_ = nullptr;
  // Removes the shared toy checkpoint and data at exit.
  struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      for (std::string* d : {toy_, data_})
        if (d) std::filesystem::remove_all(*d, ec);
    }
  };
  static inline Cleanup cleanup_;
};

// OUT/train_log.jsonl, one object per line; every line must parse.
inline std::vector<json> read_log(const std::string& out_dir) {
  std::vector<json> lines;
  std::istringstream in(read_file(out_dir + "/train_log.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    if (!j.is_discarded()) lines.push_back(std::move(j));
  }
  return lines;
}

inline std::vector<int64_t> log_steps(const std::vector<json>& log) {
  std::vector<int64_t> s;
  for (const json& j : log) s.push_back(j.at("step").get<int64_t>());
  return s;
}

inline std::vector<int64_t> one_to(int64_t n) {
  std::vector<int64_t> s;
  for (int64_t i = 1; i <= n; i++) s.push_back(i);
  return s;
}

// name -> dtype, shape and bytes of every tensor of a safetensors file.
struct StoredTensor {
  DType dtype;
  Shape shape;
  std::string bytes;
  bool operator==(const StoredTensor& o) const { return dtype == o.dtype && shape == o.shape && bytes == o.bytes; }
};
inline std::map<std::string, StoredTensor> read_tensors(const std::string& path) {
  const SafetensorsFile f(path);
  std::map<std::string, StoredTensor> m;
  for (const SafetensorsTensor& t : f.tensors())
    m[t.name] = {t.view.dtype, t.view.shape,
                 std::string(static_cast<const char*>(t.view.data), t.view.nbytes)};
  return m;
}

inline std::vector<std::string> names_of(const std::map<std::string, StoredTensor>& m) {
  std::vector<std::string> n;
  for (const auto& [k, v] : m) n.push_back(k);
  return n;
}

inline bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
inline bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// A CLI error: non-zero exit and exactly one line on stderr.
inline void expect_one_line_error(const test::CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(starts_with(r.err, "dsvl2: error: ")) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "no \"" << needle << "\" in: " << r.err;
}

}  // namespace dsvl2::train_cli
