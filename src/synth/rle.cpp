// COCO RLE decoding (pycocotools maskApi.c: rleFrString, rleDecode) and mask
// tracing (crack following along pixel edges).
#include "synth/rle.h"

#include <algorithm>

#include "core/error.h"

namespace dsvl2::synth {

namespace {

void check_size(int64_t height, int64_t width, const RleLimits& limits) {
  if (height <= 0 || width <= 0) DSVL2_FAIL("RLE size [%lld, %lld] is not a size", (long long)height, (long long)width);
  if (height > limits.max_pixels || width > limits.max_pixels || height * width > limits.max_pixels)
    DSVL2_FAIL("RLE size [%lld, %lld] is over %lld pixels", (long long)height, (long long)width,
               (long long)limits.max_pixels);
}

void check_sum(const Rle& r, int64_t sum) {
  if (sum != r.height * r.width)
    DSVL2_FAIL("RLE counts sum to %lld, not %lld x %lld = %lld", (long long)sum, (long long)r.height,
               (long long)r.width, (long long)(r.height * r.width));
}

}  // namespace

Rle rle_from_counts(int64_t height, int64_t width, const std::vector<int64_t>& counts, const RleLimits& limits) {
  check_size(height, width, limits);
  Rle r{height, width, {}};
  r.counts.reserve(counts.size());
  int64_t sum = 0;
  for (int64_t c : counts) {
    if (c < 0) DSVL2_FAIL("RLE count %lld is negative", (long long)c);
    sum += std::min(c, height * width + 1);  // cannot overflow: each term is capped
    if (sum > height * width) break;
    r.counts.push_back(uint32_t(c));
  }
  check_sum(r, sum);
  return r;
}

Rle rle_from_string(int64_t height, int64_t width, std::string_view s, const RleLimits& limits) {
  check_size(height, width, limits);
  const int64_t total = height * width;
  Rle r{height, width, {}};
  int64_t sum = 0;
  size_t p = 0;
  while (p < s.size()) {
    // One value: 5-bit groups, least significant first (rleFrString).
    uint64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= s.size()) DSVL2_FAIL("RLE string ends inside a count");
      int c = int(static_cast<unsigned char>(s[p])) - 48;
      if (c < 0 || c > 63) DSVL2_FAIL("RLE string has a byte 0x%02x at %zu outside '0'..'o'", unsigned(uint8_t(s[p])), p);
      if (k >= 12) DSVL2_FAIL("RLE string has a count of more than 12 groups at %zu", p);
      x |= uint64_t(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= ~uint64_t(0) << (5 * k);  // sign-extend
    }
    auto v = int64_t(x);
    size_t m = r.counts.size();
    if (m > 2) v += int64_t(r.counts[m - 2]);  // stored as the difference to the count two before
    if (v < 0 || v > total) DSVL2_FAIL("RLE count %zu decodes to %lld, outside 0..%lld", m, (long long)v, (long long)total);
    sum += v;
    if (sum > total) break;
    r.counts.push_back(uint32_t(v));
  }
  check_sum(r, sum);
  return r;
}

int64_t rle_area(const Rle& r) {
  int64_t a = 0;
  for (size_t i = 1; i < r.counts.size(); i += 2) a += r.counts[i];
  return a;
}

BinaryMask rle_decode(const Rle& r) {
  BinaryMask m;
  m.width = r.width;
  m.height = r.height;
  m.bits.assign(size_t(r.width * r.height), 0);
  int64_t i = 0;  // column-major position
  for (size_t k = 0; k < r.counts.size(); ++k) {
    int64_t n = r.counts[k];
    if (k % 2 == 1) {
      for (int64_t j = i; j < i + n; ++j) m.bits[size_t((j % r.height) * r.width + j / r.height)] = 1;
    }
    i += n;
  }
  return m;
}

namespace {

// Directions in image coordinates (y down), clockwise: E, S, W, N.
constexpr int kDx[4] = {1, 0, -1, 0};
constexpr int kDy[4] = {0, 1, 0, -1};

// The pixel in the quadrant (qx, qy) (each +-1) around vertex (vx, vy).
bool quadrant(const std::vector<uint8_t>& v, int64_t w, int64_t h, int64_t vx, int64_t vy, int qx, int qy) {
  int64_t x = vx + (qx > 0 ? 0 : -1), y = vy + (qy > 0 ? 0 : -1);
  return x >= 0 && y >= 0 && x < w && y < h && v[size_t(y * w + x)] != 0;
}

// Walks the outer boundary of the component whose first pixel in raster
// order is (x0, y0), keeping the inside on the right. At each vertex the two
// pixels ahead decide: both inside -> turn left; only the right one -> go
// straight; otherwise turn right. Turning right when only the left one is
// inside (a diagonal touch) keeps the walk on this 4-connected component.
ground::Polygon trace_from(const std::vector<uint8_t>& v, int64_t w, int64_t h, int64_t x0, int64_t y0) {
  ground::Polygon poly;
  poly.push_back({double(x0), double(y0)});
  int64_t x = x0, y = y0;
  int d = 0;  // east along the top edge of (x0, y0): the pixel above is outside
  for (;;) {
    x += kDx[d];
    y += kDy[d];
    if (x == x0 && y == y0) break;
    int left = (d + 3) % 4, right = (d + 1) % 4;
    bool ahead_left = quadrant(v, w, h, x, y, kDx[d] + kDx[left], kDy[d] + kDy[left]);
    bool ahead_right = quadrant(v, w, h, x, y, kDx[d] + kDx[right], kDy[d] + kDy[right]);
    int nd = ahead_left && ahead_right ? left : ahead_right ? d : right;
    if (nd != d) poly.push_back({double(x), double(y)});
    d = nd;
  }
  return poly;
}

}  // namespace

std::vector<ground::Polygon> trace_mask(const BinaryMask& m, const TraceLimits& limits) {
  const int64_t w = m.width, h = m.height;
  std::vector<uint8_t> v = m.bits;  // 0 outside, 1 inside and not yet seen, 2 seen
  struct Component {
    int64_t start = 0, area = 0;
  };
  std::vector<Component> comps;
  std::vector<int64_t> stack;
  for (int64_t i = 0; i < w * h; ++i) {
    if (v[size_t(i)] != 1) continue;
    // Flood-fill the component (4-connected) to mark it seen and count it.
    Component c{i, 0};
    v[size_t(i)] = 2;
    stack.push_back(i);
    while (!stack.empty()) {
      int64_t p = stack.back();
      stack.pop_back();
      ++c.area;
      int64_t px = p % w, py = p / w;
      const int64_t nb[4][2] = {{px - 1, py}, {px + 1, py}, {px, py - 1}, {px, py + 1}};
      for (const auto& n : nb) {
        if (n[0] < 0 || n[1] < 0 || n[0] >= w || n[1] >= h) continue;
        auto q = size_t(n[1] * w + n[0]);
        if (v[q] == 1) {
          v[q] = 2;
          stack.push_back(int64_t(q));
        }
      }
    }
    comps.push_back(c);
  }
  // Largest first under the limits, then back to raster order.
  std::vector<size_t> order(comps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return comps[a].area > comps[b].area; });
  std::vector<std::pair<int64_t, ground::Polygon>> kept;
  size_t points = 0;
  for (size_t i : order) {
    if (kept.size() >= limits.max_parts) break;
    ground::Polygon p = trace_from(v, w, h, comps[i].start % w, comps[i].start / w);
    if (points + p.size() > limits.max_points) break;
    points += p.size();
    kept.emplace_back(comps[i].start, std::move(p));
  }
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<ground::Polygon> out;
  out.reserve(kept.size());
  for (auto& k : kept) out.push_back(std::move(k.second));
  return out;
}

}  // namespace dsvl2::synth
