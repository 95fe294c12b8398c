// DeepSeek-VL2 image preprocessing, identical to the official processor
// (DeepseekVLV2Processor.tokenize_with_images): best grid, PIL-bicubic
// ImageOps.pad, global view + local tiles, normalisation.
#pragma once
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

// Image tokens one image expands to for a (width tiles, height tiles) grid,
// from the config: the one place this is computed.
int64_t image_token_count(int num_width_tiles, int num_height_tiles, const ProcessorConfig& cfg);

PreprocessResult preprocess_images(const std::vector<Image>& images, const ProcessorConfig& cfg, CropMode crop);

}  // namespace dsvl2
