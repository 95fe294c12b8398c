// Image-token layout and splicing (official DeepseekVLV2ForCausalLM.prepare_inputs_embeds,
// tile_tag "2D"). Per image, from its projector tokens (global tile first, then the
// th x tw local tiles row-major; each tile a side x side grid):
//   global:  side rows of (side tokens + image_newline)
//   view_seperator
//   local:   th*side rows of (tw*side tokens + image_newline), tiles stitched
//            "(th tw) (h w) d -> (th h) (tw w) d"
// global_view_pos "head" gives global, separator, local; "tail" gives local, separator,
// global. Images follow one another; the result replaces the image-token positions of
// the prompt in order (masked_scatter).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/image_tokens.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/model_config.h"

namespace dsvl2 {

// image_token_count(tiles_w, tiles_h, side) is in core/image_tokens.h.
// The projector's tokens a side for this model: ceil((image_size / patch) / downsample_ratio).
int64_t image_token_side(const VLConfig& cfg);

// Tiles that images_spatial_crop I64 [n_images, 2] ([tiles_w, tiles_h] each) stands
// for: sum of 1 + tiles_w * tiles_h. Throws Error on a bad shape, dtype or count.
int64_t tiles_for_crops(const Tensor& images_spatial_crop);

// projector_output F32 [n_tiles, side*side, D]; images_spatial_crop I64 [n_images, 2]
// holding [num_width_tiles, num_height_tiles]; newline / separator F32 [D].
// Returns F32 [total image tokens, D]. Throws Error when the tile count disagrees
// with images_spatial_crop or any shape is wrong.
Tensor layout_image_tokens(const Tensor& projector_output, const Tensor& images_spatial_crop, const Tensor& newline,
                           const Tensor& separator, const std::string& global_view_pos);

// Where each image token of layout_image_tokens comes from, in order: a
// projector row (tile * side * side + y * side + x), kLayoutNewline or
// kLayoutSeparator. The crops must already be valid (tiles_for_crops).
// Training scatters gradients back along the same map.
inline constexpr int64_t kLayoutNewline = -1, kLayoutSeparator = -2;
std::vector<int64_t> image_token_sources(const Tensor& images_spatial_crop, int64_t side,
                                         const std::string& global_view_pos);

// The two learned vectors plus the layout options of a checkpoint.
struct ImageTokenLayout {
  Tensor newline;    // image_newline, F32 [n_embed]
  Tensor separator;  // view_seperator (sic), F32 [n_embed]
  std::string global_view_pos = "head";
  // Throws Error for tile_tag other than "2D" (the official "1D" path is abandoned upstream).
  static ImageTokenLayout load(const Checkpoint& ckpt, const VLConfig& cfg);
  Tensor arrange(const Tensor& projector_output, const Tensor& images_spatial_crop) const {
    return layout_image_tokens(projector_output, images_spatial_crop, newline, separator, global_view_pos);
  }
};

// Writes image_tokens [N, D] row by row into text_embeds [T, D] at the positions
// where ids[t] == image_token_id, in order. Throws Error unless there are exactly
// N such positions and the shapes agree.
void splice_image_embeddings(Tensor& text_embeds, const std::vector<int64_t>& ids, int64_t image_token_id,
                             const Tensor& image_tokens);

}  // namespace dsvl2
