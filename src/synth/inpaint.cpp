#include "synth/inpaint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/photo.hpp>

#include "core/error.h"

namespace dsvl2::synth {
namespace {

// Sub-pixel polygon filling: OpenCV takes fixed-point vertices with `shift`
// fractional bits, so COCO's fractional coordinates are not rounded away.
constexpr int kShift = 4;
constexpr double kScale = 1 << kShift;

cv::Point fixed_point(double x, double y) { return {int(std::lround(x * kScale)), int(std::lround(y * kScale))}; }

}  // namespace

ErasedImage erase_object(const Image& img, const std::vector<ground::Polygon>& polygons, const ground::Box& box,
                         const InpaintOptions& opt) {
  DSVL2_REQUIRE(img.width > 0 && img.height > 0 && img.rgb.size() == size_t(img.width) * img.height * 3,
                "erase: bad image %dx%d", img.width, img.height);
  cv::Mat mask = cv::Mat::zeros(img.height, img.width, CV_8UC1);
  std::vector<std::vector<cv::Point>> parts;
  for (const ground::Polygon& p : polygons) {
    if (p.size() < 3) continue;
    std::vector<cv::Point> pts;
    pts.reserve(p.size());
    for (const ground::Point& q : p) {
      DSVL2_REQUIRE(std::isfinite(q.x) && std::isfinite(q.y), "erase: non-finite polygon point");
      pts.push_back(fixed_point(q.x, q.y));
    }
    parts.push_back(std::move(pts));
  }
  if (parts.empty()) {  // no mask: the box is the region
    DSVL2_REQUIRE(std::isfinite(box.x1) && std::isfinite(box.y1) && std::isfinite(box.x2) && std::isfinite(box.y2),
                  "erase: non-finite box");
    parts.push_back({fixed_point(box.x1, box.y1), fixed_point(box.x2, box.y1), fixed_point(box.x2, box.y2),
                     fixed_point(box.x1, box.y2)});
  }
  cv::fillPoly(mask, parts, cv::Scalar(255), cv::LINE_8, kShift);

  const int r = opt.dilate_px >= 0 ? opt.dilate_px
                                   : std::max(3, int(std::lround(std::max(img.width, img.height) / 100.0)));
  if (r > 0) {
    cv::Mat kernel = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * r + 1, 2 * r + 1));
    cv::dilate(mask, mask, kernel);
  }
  const int64_t n = cv::countNonZero(mask);
  DSVL2_REQUIRE(n > 0, "erase: the object's mask covers no pixel of the %dx%d image", img.width, img.height);

  // cv::Mat over our RGB buffer (OpenCV does not care about channel order for
  // inpainting: each channel is filled on its own).
  cv::Mat src(img.height, img.width, CV_8UC3, const_cast<uint8_t*>(img.rgb.data()));
  cv::Mat dst;
  cv::inpaint(src, mask, dst, opt.radius, cv::INPAINT_TELEA);

  ErasedImage out;
  out.image.width = img.width;
  out.image.height = img.height;
  out.image.rgb.resize(img.rgb.size());
  out.mask.resize(size_t(img.width) * img.height);
  out.mask_pixels = n;
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* m = mask.ptr<uint8_t>(y);
    const uint8_t* d = dst.ptr<uint8_t>(y);
    const uint8_t* s = img.rgb.data() + size_t(y) * img.width * 3;
    uint8_t* o = out.image.rgb.data() + size_t(y) * img.width * 3;
    for (int x = 0; x < img.width; ++x) {
      const bool in = m[x] != 0;
      out.mask[size_t(y) * img.width + x] = in;
      // Outside the mask keep the source bytes exactly, whatever inpaint did there.
      std::memcpy(o + 3 * x, in ? d + 3 * x : s + 3 * x, 3);
    }
  }
  return out;
}

}  // namespace dsvl2::synth
