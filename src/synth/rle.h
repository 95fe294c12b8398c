// COCO run-length masks (internal to synth/): decode both forms pycocotools
// writes, and trace a binary mask to polygons, because AnnotatedObject holds
// masks as polygons (what the mark drawers take).
//
// An RLE lists run lengths of 0s and 1s, alternating and starting with 0s,
// over the pixels in column-major order (down each column, then the next
// column): pycocotools/maskApi.c. "counts" is either that list (uncompressed,
// what iscrowd annotations use) or a string in the LEB128-like form of
// maskApi.c rleToString/rleFrString: each count, after the first two, is
// stored as the difference to the count two before; each value is written in
// 5-bit groups, least significant first, as chars 48 + group, with 0x20 set
// on every group but the last and 0x10 of the last one the sign.
//
//   Rle r = rle_from_string(h, w, "X[d0...");   // Error when malformed
//   BinaryMask m = rle_decode(r);
//   std::vector<ground::Polygon> parts = trace_mask(m);
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "ground/polygons.h"

namespace dsvl2::synth {

struct RleLimits {
  // 4096 x 4096: COCO, LVIS, RefCOCO and SA-1B images are far smaller, and
  // the decoded mask costs one byte per pixel.
  int64_t max_pixels = int64_t(1) << 24;
};

struct Rle {
  int64_t height = 0, width = 0;
  std::vector<uint32_t> counts;  // alternating runs, 0s first; sums to height * width
};

// Both validate: a positive size within the limit, non-negative counts that
// sum to height * width. Throw Error naming the problem.
Rle rle_from_counts(int64_t height, int64_t width, const std::vector<int64_t>& counts, const RleLimits& limits = {});
Rle rle_from_string(int64_t height, int64_t width, std::string_view s, const RleLimits& limits = {});

// Pixels set (the sum of the odd runs).
int64_t rle_area(const Rle& r);

struct BinaryMask {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> bits;  // row-major, 1 = inside
  bool at(int64_t x, int64_t y) const {
    return x >= 0 && y >= 0 && x < width && y < height && bits[size_t(y * width + x)] != 0;
  }
};
BinaryMask rle_decode(const Rle& r);

struct TraceLimits {
  size_t max_parts = 10000;
  size_t max_points = 50000;  // all parts together: ground::PolygonLimits allows 100000 values
};

// The outer boundary of each 4-connected component, as the polygon along its
// pixel edges (vertices on pixel corners, only where the boundary turns).
// Pixel (x, y) covers [x, x+1] x [y, y+1], so a component without holes has
// a polygon whose area equals its pixel count. Holes are not traced: a part
// covers its holes (COCO polygons have none either). Over the limits, the
// largest components are kept. Parts are in raster order of their top-left
// pixel.
std::vector<ground::Polygon> trace_mask(const BinaryMask& m, const TraceLimits& limits = {});

}  // namespace dsvl2::synth
