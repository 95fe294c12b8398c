// Port of Pillow 9.4's separable resampler (libImaging/Resample.c:
// precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal/
// Vertical_8bpc, ImagingResampleInner) for the bicubic filter, written anew.
//
// Numerics, all of which matter for bit-exactness:
//  * For each output column the source interval is centred at
//    center = (xx + 0.5) * scale, scale = in / out. On downscale the kernel
//    support (2 for bicubic) is widened by scale (filterscale = max(scale, 1))
//    and its argument is divided by it, i.e. the filter is stretched.
//  * Taps run over source pixels [xmin, xmin + n): xmin = int(center - support
//    + 0.5) and xmax = int(center + support + 0.5), clamped to the image (C
//    truncation toward zero). Weights w = f((x + xmin - center + 0.5) / filterscale),
//    all in double, then divided by their sum (so edges renormalise).
//  * Weights become fixed point with PRECISION_BITS = 32 - 8 - 2 = 22 fractional
//    bits, rounded half away from zero: int(+-0.5 + w * 2^22).
//  * A pass accumulates sum(pixel * weight) in a 32-bit int starting at
//    2^21 (the rounding half), then output = clamp(acc >> 22, 0, 255).
//  * Two passes: horizontal first (only over the source rows the vertical pass
//    will read), into an 8-bit intermediate, then vertical. A pass is skipped
//    when its dimension is unchanged.
// The double-precision steps must not be contracted into FMAs, which would
// change rounding relative to Pillow's baseline x86-64 build.
#ifdef __clang__
#pragma clang fp contract(off)
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include "image/resample.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace dsvl2 {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;

// Keys' cubic convolution with a = -0.5 (Resample.c bicubic_filter).
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Coeffs {
  int ksize = 0;             // taps reserved per output sample
  std::vector<int> first;    // first source index per output sample
  std::vector<int> count;    // taps used per output sample
  std::vector<int32_t> k;    // out_size * ksize fixed-point weights
};

Coeffs precompute(int in_size, int out_size) {
  Coeffs c;
  const double scale = double(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kBicubicSupport * filterscale;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[size_t(xx) * c.ksize + x] =
          v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Rows [row0, row0 + rows) of src (width in_w) resampled horizontally into dst.
void horizontal_pass(const uint8_t* src, int in_w, int row0, int rows, const Coeffs& c, int out_w, uint8_t* dst) {
  constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src + size_t(row0 + y) * in_w * 3;
    uint8_t* out = dst + size_t(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.k[size_t(xx) * c.ksize];
      const uint8_t* p = in + size_t(c.first[xx]) * 3;
      int32_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
      for (int x = 0, n = c.count[xx]; x < n; ++x, p += 3) {
        s0 += p[0] * k[x];
        s1 += p[1] * k[x];
        s2 += p[2] * k[x];
      }
      out[3 * xx + 0] = clip8(s0);
      out[3 * xx + 1] = clip8(s1);
      out[3 * xx + 2] = clip8(s2);
    }
  }
}

// Vertical pass; c.first is relative to the first row held in src.
void vertical_pass(const uint8_t* src, int w, const Coeffs& c, int row_offset, int out_h, uint8_t* dst) {
  constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);
  const size_t stride = size_t(w) * 3;
  std::vector<int32_t> acc(stride);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * c.ksize];
    const uint8_t* base = src + size_t(c.first[yy] - row_offset) * stride;
    std::fill(acc.begin(), acc.end(), kHalf);
    // Row-outer order walks memory contiguously; integer sums are exact, so
    // the order does not change the result.
    for (int y = 0, n = c.count[yy]; y < n; ++y) {
      const uint8_t* row = base + size_t(y) * stride;
      const int32_t ky = k[y];
      for (size_t i = 0; i < stride; ++i) acc[i] += row[i] * ky;
    }
    uint8_t* out = dst + size_t(yy) * stride;
    for (size_t i = 0; i < stride; ++i) out[i] = clip8(acc[i]);
  }
}

}  // namespace

Image resize_bicubic(const Image& src, int out_w, int out_h) {
  if (out_w < 1 || out_h < 1) DSVL2_FAIL("resize to %dx%d: height and width must be > 0", out_w, out_h);
  DSVL2_CHECK(src.width > 0 && src.height > 0 && src.rgb.size() == size_t(src.width) * src.height * 3,
              "resize of an invalid image");
  if (out_w == src.width && out_h == src.height) return src;
  const bool need_h = out_w != src.width;
  const bool need_v = out_h != src.height;
  const Coeffs ch = need_h ? precompute(src.width, out_w) : Coeffs{};
  const Coeffs cv = need_v ? precompute(src.height, out_h) : Coeffs{};

  Image out;
  out.width = out_w;
  out.height = out_h;
  out.rgb.resize(size_t(out_w) * out_h * 3);
  if (!need_v) {
    horizontal_pass(src.rgb.data(), src.width, 0, src.height, ch, out_w, out.rgb.data());
    return out;
  }
  if (!need_h) {
    vertical_pass(src.rgb.data(), src.width, cv, 0, out_h, out.rgb.data());
    return out;
  }
  // Only the source rows the vertical pass reads go through the horizontal pass.
  const int ybox_first = cv.first[0];
  const int ybox_last = cv.first[out_h - 1] + cv.count[out_h - 1];
  std::vector<uint8_t> tmp(size_t(out_w) * (ybox_last - ybox_first) * 3);
  horizontal_pass(src.rgb.data(), src.width, ybox_first, ybox_last - ybox_first, ch, out_w, tmp.data());
  vertical_pass(tmp.data(), out_w, cv, ybox_first, out_h, out.rgb.data());
  return out;
}

}  // namespace dsvl2
