// Erasing an object for "erased object" negatives: the object's mask (its
// polygons, else its box) is rasterised, dilated so that the soft edge and
// the annotation's slack go too, and filled by OpenCV's Telea inpainting
// (cv::inpaint, INPAINT_TELEA). Pixels outside the dilated mask are not
// touched. This is the only place that includes OpenCV.
//
//   ErasedImage e = erase_object(img, obj.polygons, obj.box);
//   // e.image: the picture without the object; e.mask[y * w + x] = 1 where filled
#pragma once
#include <cstdint>
#include <vector>

#include "ground/polygons.h"
#include "ground/visual_prompt.h"
#include "image/image.h"

namespace dsvl2::synth {

struct InpaintOptions {
  // Dilation radius in pixels; < 0: max(3, round(max(W, H) / 100)), about
  // the slack of a hand-drawn COCO polygon on a 640-px image.
  int dilate_px = -1;
  double radius = 5;  // cv::inpaint's inpaintRadius (the neighbourhood each filled pixel looks at)
};

struct ErasedImage {
  Image image;
  std::vector<uint8_t> mask;  // width * height, 1 where pixels were filled
  int64_t mask_pixels = 0;
};

// Throws Error on an empty mask (nothing inside the image) or a bad image.
ErasedImage erase_object(const Image& img, const std::vector<ground::Polygon>& polygons, const ground::Box& box,
                         const InpaintOptions& opt = {});

}  // namespace dsvl2::synth
