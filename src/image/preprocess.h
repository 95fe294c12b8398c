// DeepSeek-VL2 image preprocessing, identical to the official processor
// (DeepseekVLV2Processor.tokenize_with_images): best grid, PIL-bicubic
// ImageOps.pad, global view + local tiles, normalisation.
#pragma once
#include "core/image_tokens.h"
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "image/image.h"
#include "io/model_config.h"

namespace dsvl2 {

enum class CropMode { kAuto, kOn, kOff };  // auto: crop when the conversation has <= 2 images

struct PreprocessResult {
  Tensor pixel_values;         // F32 [n_tiles, 3, S, S], per image: global view, then local tiles row-major
  Tensor images_spatial_crop;  // I64 [n_images, 2] = [num_width_tiles, num_height_tiles]
  Tensor num_image_tokens;     // I64 [n_images]
  std::vector<int> tiles_per_image;
};


PreprocessResult preprocess_images(const std::vector<Image>& images, const ProcessorConfig& cfg, CropMode crop);

// The padded size (width, height) of an image's local grid: the best
// candidate resolution when cropping, else one tile. Throws Error.
std::pair<int, int> padded_size(const Image& img, const ProcessorConfig& cfg, bool crop);
// Image token positions the image will take, without preprocessing it
// (a server checks a prompt's length before it runs anything).
int64_t image_token_count(const Image& img, const ProcessorConfig& cfg, bool crop);

// The steps, exposed for tests and tools.

// select_best_resolution: the candidate (width, height) maximising
// min(downscaled area, original area), ties to the least wasted area; the first
// candidate wins exact ties. Candidates are (width, height) as the official
// code unpacks them. Throws Error on an empty list.
std::pair<int, int> select_best_resolution(int width, int height,
                                           const std::vector<std::pair<int, int>>& candidates);

// ImageOps.pad(img, (W, H), method=BICUBIC, color) of Pillow 9.4: aspect-preserving
// bicubic resize (ImageOps.contain) pasted centred on a W x H canvas of `color`.
Image pil_pad(const Image& img, int W, int H, const std::array<uint8_t, 3>& color);

// The background of the padded views: tuple(int(x * 255) for x in image_mean).
std::array<uint8_t, 3> pad_color(const ProcessorConfig& cfg);

// Crop policy: kAuto crops when the conversation has at most two images.
bool cropping_enabled(CropMode crop, size_t n_images);

}  // namespace dsvl2
