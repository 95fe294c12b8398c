// Shared helpers of the reader tests: a pycocotools-style RLE encoder (to
// build inputs) and small file and error helpers.
#pragma once
#include <gtest/gtest.h>
#include <algorithm>
#include <random>
#include <string>
#include <vector>
#include "core/error.h"
#include "core/file.h"
#include "synth/annotations.h"
#include "synth/readers_json.h"
#include "synth/rle.h"
#include "test_util.h"

namespace dsvl2::synth::fixture {

// ---- pycocotools encoder (maskApi.c rleEncode + rleToString), for the tests

// Column-major runs, 0s first. `mask` is row-major [h][w].
inline std::vector<uint32_t> encode_counts(const std::vector<uint8_t>& mask, int64_t h, int64_t w) {
  std::vector<uint32_t> cnts;
  uint8_t p = 0;
  uint32_t c = 0;
  for (int64_t x = 0; x < w; ++x)
    for (int64_t y = 0; y < h; ++y) {
      uint8_t v = mask[size_t(y * w + x)] ? 1 : 0;
      if (v != p) {
        cnts.push_back(c);
        c = 0;
        p = v;
      }
      ++c;
    }
  cnts.push_back(c);
  return cnts;
}

inline std::string encode_string(const std::vector<uint32_t>& cnts) {
  std::string s;
  for (size_t i = 0; i < cnts.size(); ++i) {
    long x = long(cnts[i]);
    if (i > 2) x -= long(cnts[i - 2]);
    bool more = true;
    while (more) {
      char c = char(x & 0x1f);
      x >>= 5;
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      c += 48;
      s.push_back(c);
    }
  }
  return s;
}

inline std::string counts_json(const std::vector<uint32_t>& cnts) {
  std::string s = "[";
  for (size_t i = 0; i < cnts.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(cnts[i]);
  }
  s += ']';
  return s;
}

inline std::vector<uint8_t> rect_mask(int64_t h, int64_t w, int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
  std::vector<uint8_t> m(size_t(h * w), 0);
  for (int64_t y = y0; y < y1; ++y)
    for (int64_t x = x0; x < x1; ++x) m[size_t(y * w + x)] = 1;
  return m;
}

inline std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  std::string p = dir + "/" + name;
  write_file(p, text);
  return p;
}

inline bool has_error(const AnnotationSet& s, const std::string& needle, int64_t ann_id = -2) {
  for (const auto& e : s.errors)
    if (e.what.find(needle) != std::string::npos && (ann_id == -2 || e.annotation_id == ann_id)) return true;
  return false;
}

inline std::string all_errors(const AnnotationSet& s) {
  std::string out;
  for (const auto& e : s.errors) out += e.what + "\n";
  return out;
}

// ---- RLE

}  // namespace dsvl2::synth::fixture
