// How many token positions one image takes in a DeepSeek-VL2 prompt
// (DeepseekVLV2Processor.tokenize_with_images, tile_tag "2D"): the one place
// this is computed; preprocessing, the chat template and the vision layout all
// call it.
//   side  = ceil((image_size / patch_size) / downsample_ratio)   (14 for 384/14/2)
//   count = side * (side + 1)                 global view rows, each + newline
//         + 1                                 view separator
//         + (tiles_h * side) * (tiles_w * side + 1)   local grid rows + newline
#pragma once
#include <cstdint>

namespace dsvl2 {

inline int64_t image_token_side(int64_t image_size, int64_t patch_size, int64_t downsample_ratio) {
  const int64_t grid = image_size / patch_size;
  return (grid + downsample_ratio - 1) / downsample_ratio;
}

// The one image_token_count: tiles_w x tiles_h local tiles, `side` from image_token_side.
inline int64_t image_token_count(int64_t tiles_w, int64_t tiles_h, int64_t side) {
  return side * (side + 1) + 1 + tiles_h * side * (tiles_w * side + 1);
}

}  // namespace dsvl2
