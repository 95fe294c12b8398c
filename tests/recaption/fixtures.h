// Shared fixtures of the recaption tests: a toy checkpoint with the real
// tokenizer (built once per test program), images that say known text
// (Cairo/Pango, tests/ocr/render_text.h), and WebDataset tars made with the
// project's own tar writer.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataset/tar_scan.h"
#include "dataset/tar_writer.h"
#include "image/test_encoders.h"
#include "ocr/render_text.h"
#include "test_util.h"

namespace dsvl2::test {

// A toy checkpoint folder (tiny-test preset, seed 5, the real tokenizer), or
// "" when the shared tokenizer is missing.
inline const std::string& toy_model_dir() {
  static const std::string dir = [] {
    if (tokenizer_dir().empty()) return std::string();
    const std::string d = temp_dir("recaption_model");
    CommandResult r = run_command(dsvl2_binary() + " make-random-checkpoint --preset tiny-test --out " + d +
                                  " --seed 5 --tokenizer " + tokenizer_dir() + "/deepseek_v3/tokenizer.json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return d;
  }();
  return dir;
}

inline std::string png_bytes(const Image& img) {
  PngSpec s;
  s.width = img.width;
  s.height = img.height;
  s.pixels = img.rgb;
  return encode_png(s);
}

// A w x h image that says `text` in dark letters on a light background.
inline std::string text_png(const std::string& text, int w = 320, int h = 160, double size_px = 36) {
  TextCanvas c(w, h);
  c.fill({245, 240, 225});
  TextStyle st;
  st.size_px = size_px;
  st.color = {20, 20, 60};
  c.text(text, 16, h / 3, st);
  return png_bytes(c.image());
}

// A PNG header that claims 60000 x 60000 pixels (a decompression bomb).
inline std::string bomb_png() {
  PngSpec s;
  s.width = s.height = 60000;
  s.header_only = true;
  return encode_png(s);
}

// A WebDataset tar of (member name, bytes) pairs, in order.
inline std::string make_tar(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out;
  for (const auto& [name, bytes] : members) out += dataset::tar_member(name, bytes);
  return out + dataset::tar_end();
}

// Every KEY.json record of a tar (path) in order.
inline std::vector<nlohmann::json> read_records(const std::string& tar_path) {
  std::vector<nlohmann::json> out;
  dataset::for_each_tar_member(
      tar_path, [&](const std::string&, std::string_view data) { out.push_back(nlohmann::json::parse(data)); },
      {".json"});
  return out;
}

// A record without its timings (the one part that differs run to run).
inline nlohmann::json without_timings(nlohmann::json j) {
  j.erase("timings");
  return j;
}

}  // namespace dsvl2::test
