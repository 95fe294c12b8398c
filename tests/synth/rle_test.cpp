// RLE masks: both COCO forms decoded against an encoder written after
// pycocotools, malformed RLE refused, and masks traced to polygons.
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
#include "readers_fixture.h"

namespace dsvl2::synth {
namespace {

using namespace fixture;

TEST(Rle, KnownCompressedStrings) {
  // Worked by hand from rleToString: counts after the first two are deltas.
  Rle r = rle_from_string(1, 11, "0233N");
  EXPECT_EQ(r.counts, (std::vector<uint32_t>{0, 2, 3, 5, 1}));
  EXPECT_EQ(rle_area(r), 7);
  EXPECT_EQ(rle_area(rle_from_string(10, 10, "T3")), 0);    // one run of 100 zeros
  EXPECT_EQ(rle_area(rle_from_string(10, 10, "0T3")), 100);  // then 100 ones
  EXPECT_EQ(encode_string({0, 2, 3, 5, 1}), "0233N");
}

TEST(Rle, RandomMasksRoundTripBothForms) {
  std::mt19937 rng(7);
  for (int t = 0; t < 60; ++t) {
    int64_t h = 1 + rng() % 37, w = 1 + rng() % 41;
    double density = (rng() % 100) / 100.0;
    std::vector<uint8_t> m(size_t(h * w));
    for (auto& v : m) v = (rng() % 1000) < density * 1000 ? 1 : 0;
    std::vector<uint32_t> cnts = encode_counts(m, h, w);
    int64_t area = std::count(m.begin(), m.end(), 1);
    Rle a = rle_from_string(h, w, encode_string(cnts));
    EXPECT_EQ(a.counts, cnts);
    EXPECT_EQ(rle_decode(a).bits, m) << "h=" << h << " w=" << w;
    EXPECT_EQ(rle_area(a), area);
    std::vector<int64_t> c64(cnts.begin(), cnts.end());
    EXPECT_EQ(rle_decode(rle_from_counts(h, w, c64)).bits, m);
  }
}

TEST(Rle, RejectsMalformed) {
  EXPECT_THROW(rle_from_string(10, 10, "T4"), Error);       // sums to 132, not 100
  EXPECT_THROW(rle_from_string(10, 10, "0T"), Error);       // ends inside a count
  EXPECT_THROW(rle_from_string(10, 10, "0T3~"), Error);     // '~' is outside '0'..'o'
  EXPECT_THROW(rle_from_string(0, 10, ""), Error);          // no size
  EXPECT_THROW(rle_from_string(1 << 20, 1 << 20, "0"), Error);  // over the pixel limit
  EXPECT_THROW(rle_from_counts(2, 2, {1, -1, 4}), Error);
  EXPECT_THROW(rle_from_counts(2, 2, {1, 1}), Error);
  EXPECT_THROW(rle_from_string(1, 4, "bbbbbbbbbbbbbbbb"), Error);  // a count of too many groups
}

// ---- tracing

double total_area(const std::vector<ground::Polygon>& parts) {
  double a = 0;
  for (const auto& p : parts) a += ground::area(p);
  return a;
}

TEST(Trace, RectangleLShapeDiagonalAndHole) {
  BinaryMask m{10, 8, rect_mask(8, 10, 2, 1, 6, 4)};
  auto parts = trace_mask(m);
  ASSERT_EQ(parts.size(), 1u);
  ASSERT_EQ(parts[0].size(), 4u);
  EXPECT_EQ(parts[0][0].x, 2);
  EXPECT_EQ(parts[0][0].y, 1);
  EXPECT_EQ(parts[0][2].x, 6);
  EXPECT_EQ(parts[0][2].y, 4);
  EXPECT_DOUBLE_EQ(ground::area(parts[0]), 12);

  // L: a 3x1 bar and a 1x2 leg.
  BinaryMask l{5, 5, std::vector<uint8_t>(25, 0)};
  for (int x = 0; x < 3; ++x) l.bits[size_t(1 * 5 + x)] = 1;
  l.bits[2 * 5 + 0] = l.bits[3 * 5 + 0] = 1;
  parts = trace_mask(l);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].size(), 6u);
  EXPECT_DOUBLE_EQ(ground::area(parts[0]), 5);

  // Pixels touching at a corner are two 4-connected components.
  BinaryMask d{4, 4, std::vector<uint8_t>(16, 0)};
  d.bits[1 * 4 + 1] = d.bits[2 * 4 + 2] = 1;
  parts = trace_mask(d);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].size(), 4u);
  EXPECT_EQ(parts[1].size(), 4u);

  // A ring: only the outer boundary, which covers the hole.
  BinaryMask ring{5, 5, rect_mask(5, 5, 0, 0, 5, 5)};
  ring.bits[2 * 5 + 2] = 0;
  parts = trace_mask(ring);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].size(), 4u);
  EXPECT_DOUBLE_EQ(ground::area(parts[0]), 25);
}

TEST(Trace, RandomMasksEveryPixelCovered) {
  std::mt19937 rng(11);
  for (int t = 0; t < 40; ++t) {
    int64_t h = 1 + rng() % 30, w = 1 + rng() % 30;
    BinaryMask m{w, h, std::vector<uint8_t>(size_t(h * w))};
    for (auto& v : m.bits) v = rng() % 3 == 0;
    auto parts = trace_mask(m);
    int64_t set = std::count(m.bits.begin(), m.bits.end(), 1);
    EXPECT_GE(total_area(parts), double(set));
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (m.at(x, y)) {
          ASSERT_TRUE(ground::contains_any(parts, {x + 0.5, y + 0.5})) << x << "," << y;
        }
  }
}

TEST(Trace, LimitsKeepTheLargest) {
  BinaryMask m{20, 20, std::vector<uint8_t>(400, 0)};
  for (int y = 0; y < 18; y += 2)
    for (int x = 0; x < 20; x += 2) m.bits[size_t(y * 20 + x)] = 1;  // 90 single pixels
  for (int x = 0; x < 20; ++x) m.bits[size_t(19 * 20 + x)] = 1;        // and one bar
  TraceLimits lim;
  lim.max_parts = 5;
  auto parts = trace_mask(m, lim);
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_DOUBLE_EQ(ground::area(parts.back()), 20);  // the bar (last in raster order) was kept
}

// ---- COCO

}  // namespace
}  // namespace dsvl2::synth
