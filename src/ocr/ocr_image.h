// Grey images for the OCR engine's passes (internal to src/ocr): luma,
// resampling, rotation, and mapping boxes back to the input image.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "image/image.h"

namespace dsvl2::ocr {

struct GreyImage {
  int width = 0, height = 0;
  std::vector<uint8_t> px;  // row-major
};

// ITU-R 601 luma, as PIL's convert("L").
GreyImage to_grey(const Image& rgb);
// Bilinear when enlarging, box average when shrinking (thin strokes do not alias away).
GreyImage resize_grey(const GreyImage& g, int nw, int nh);

// Where a pass's pixels come from: the input scaled, then rotated
// by `deg` (counter-clockwise) about its centre onto a canvas that holds all
// of it. to_input maps a pass's box back to the input image's pixels (the
// axis-aligned bounds of its rotated corners, clamped to w x h).
struct PassGeometry {
  double scale_x = 1, scale_y = 1, deg = 0;               // per axis: rounding differs on thin images
  double src_cx = 0, src_cy = 0, dst_cx = 0, dst_cy = 0;  // rotation centres, scaled pixels
  int w = 0, h = 0;                                       // the input image
  std::array<int, 4> to_input(int x1, int y1, int x2, int y2) const;
};

// `g` rotated by deg about its centre; uncovered corners take the median grey
// so that the rotation adds no edges Tesseract could read as text.
GreyImage rotate_grey(const GreyImage& g, double deg, PassGeometry* geo);

}  // namespace dsvl2::ocr
