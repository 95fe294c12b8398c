#include "ocr/ocr_image.h"

#include <algorithm>
#include <cmath>

namespace dsvl2::ocr {

GreyImage to_grey(const Image& rgb) {
  GreyImage g{rgb.width, rgb.height, std::vector<uint8_t>(size_t(rgb.width) * rgb.height)};
  for (size_t i = 0; i < g.px.size(); ++i) {
    const uint8_t* p = &rgb.rgb[i * 3];
    g.px[i] = uint8_t((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000);
  }
  return g;
}

GreyImage resize_grey(const GreyImage& g, int nw, int nh) {
  const int w = g.width, h = g.height;
  GreyImage out{nw, nh, std::vector<uint8_t>(size_t(nw) * nh)};
  const double sx = double(w) / nw, sy = double(h) / nh;
  if (sx < 1 && sy < 1) {  // enlarging
    for (int y = 0; y < nh; ++y) {
      const double fy = std::clamp((y + 0.5) * sy - 0.5, 0.0, h - 1.0);
      const int y0 = int(fy), y1 = std::min(y0 + 1, h - 1);
      const double ty = fy - y0;
      for (int x = 0; x < nw; ++x) {
        const double fx = std::clamp((x + 0.5) * sx - 0.5, 0.0, w - 1.0);
        const int x0 = int(fx), x1 = std::min(x0 + 1, w - 1);
        const double tx = fx - x0;
        const double top = g.px[size_t(y0) * w + x0] * (1 - tx) + g.px[size_t(y0) * w + x1] * tx;
        const double bot = g.px[size_t(y1) * w + x0] * (1 - tx) + g.px[size_t(y1) * w + x1] * tx;
        out.px[size_t(y) * nw + x] = uint8_t(std::lround(top * (1 - ty) + bot * ty));
      }
    }
    return out;
  }
  for (int y = 0; y < nh; ++y) {
    const int ya = std::min(h - 1, int(y * sy)), yb = std::max(ya + 1, std::min(h, int((y + 1) * sy)));
    for (int x = 0; x < nw; ++x) {
      const int xa = std::min(w - 1, int(x * sx)), xb = std::max(xa + 1, std::min(w, int((x + 1) * sx)));
      uint64_t sum = 0;
      for (int yy = ya; yy < yb; ++yy)
        for (int xx = xa; xx < xb; ++xx) sum += g.px[size_t(yy) * w + xx];
      out.px[size_t(y) * nw + x] = uint8_t(sum / uint64_t((yb - ya) * (xb - xa)));
    }
  }
  return out;
}

std::array<int, 4> PassGeometry::to_input(int x1, int y1, int x2, int y2) const {
  const double a = deg * M_PI / 180, c = std::cos(a), s = std::sin(a);
  double bx1 = 1e18, by1 = 1e18, bx2 = -1e18, by2 = -1e18;
  for (auto [x, y] : {std::array<int, 2>{x1, y1}, {x2, y1}, {x1, y2}, {x2, y2}}) {
    // Undo the rotation (the pass image was rotated by +deg, y down).
    const double dx = x - dst_cx, dy = y - dst_cy;
    const double sxp = src_cx + dx * c - dy * s, syp = src_cy + dx * s + dy * c;
    bx1 = std::min(bx1, sxp), by1 = std::min(by1, syp), bx2 = std::max(bx2, sxp), by2 = std::max(by2, syp);
  }
  return {std::clamp(int(std::floor(bx1 / scale_x)), 0, w), std::clamp(int(std::floor(by1 / scale_y)), 0, h),
          std::clamp(int(std::ceil(bx2 / scale_x)), 0, w), std::clamp(int(std::ceil(by2 / scale_y)), 0, h)};
}

GreyImage rotate_grey(const GreyImage& g, double deg, PassGeometry* geo) {
  const double a = deg * M_PI / 180, c = std::cos(a), s = std::sin(a);
  const int nw = int(std::ceil(std::abs(g.width * c) + std::abs(g.height * s)));
  const int nh = int(std::ceil(std::abs(g.width * s) + std::abs(g.height * c)));
  geo->deg = deg;
  geo->src_cx = g.width / 2.0, geo->src_cy = g.height / 2.0;
  geo->dst_cx = nw / 2.0, geo->dst_cy = nh / 2.0;
  std::vector<uint8_t> sorted = g.px;
  std::nth_element(sorted.begin(), sorted.begin() + long(sorted.size() / 2), sorted.end());
  const uint8_t fill = sorted[sorted.size() / 2];
  GreyImage out{nw, nh, std::vector<uint8_t>(size_t(nw) * nh, fill)};
  for (int y = 0; y < nh; ++y)
    for (int x = 0; x < nw; ++x) {
      // Counter-clockwise on screen: the source point of (x, y).
      const double dx = x + 0.5 - geo->dst_cx, dy = y + 0.5 - geo->dst_cy;
      const double fx = geo->src_cx + dx * c - dy * s - 0.5, fy = geo->src_cy + dx * s + dy * c - 0.5;
      if (fx < 0 || fy < 0 || fx > g.width - 1 || fy > g.height - 1) continue;
      const int x0 = int(fx), y0 = int(fy), x1 = std::min(x0 + 1, g.width - 1), y1 = std::min(y0 + 1, g.height - 1);
      const double tx = fx - x0, ty = fy - y0;
      const double top = g.px[size_t(y0) * g.width + x0] * (1 - tx) + g.px[size_t(y0) * g.width + x1] * tx;
      const double bot = g.px[size_t(y1) * g.width + x0] * (1 - tx) + g.px[size_t(y1) * g.width + x1] * tx;
      out.px[size_t(y) * nw + x] = uint8_t(std::lround(top * (1 - ty) + bot * ty));
    }
  return out;
}

}  // namespace dsvl2::ocr
