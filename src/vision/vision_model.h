// The whole image side of DeepSeek-VL2 in one object: SigLIP tower, projector
// and token layout (official prepare_inputs_embeds up to the masked_scatter).
//
//   VisionModel vm = VisionModel::load(ckpt, cfg);
//   VisionTrace trace;                                   // optional intermediates
//   Tensor img = vm.embed_images(pixel_values, images_spatial_crop, ops, &trace);
//   splice_image_embeddings(text_embeds, ids, image_token_id, img);
#pragma once
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "ops/ops.h"
#include "ops/prepack.h"
#include "vision/layout.h"
#include "vision/projector.h"
#include "vision/siglip.h"

namespace dsvl2 {

struct VisionTrace {
  Tensor vision_output;     // [n_tiles, 729, width]
  Tensor projector_output;  // [n_tiles, 196, n_embed]
};

struct VisionModel {
  VisionTower tower;
  Projector projector;
  ImageTokenLayout layout;

  static VisionModel load(const Checkpoint& ckpt, const VLConfig& cfg);
  // pixel_values F32 [n_tiles, 3, S, S] (all images' tiles, processor order);
  // images_spatial_crop I64 [n_images, 2] = [tiles_w, tiles_h]. Returns the image
  // tokens F32 [N, n_embed] in prompt order. `trace` (optional) keeps the intermediates.
  Tensor embed_images(const Tensor& pixel_values, const Tensor& images_spatial_crop, const Ops& ops,
                      VisionTrace* trace = nullptr, VisionScratch* scratch = nullptr,
                      const std::function<void(int, int)>& progress = {}) const;

  // Once, before sharing: repacks the tower's and projector's matrices for ops
  // (see LanguageModel::prepare). Returns the packed bytes.
  size_t prepare(const Ops& ops, const ReleaseSource& release = {});

  VisionModel(VisionTower t, Projector p, ImageTokenLayout l)
      : tower(std::move(t)), projector(std::move(p)), layout(std::move(l)) {}

 private:
  std::unique_ptr<Arena> packed_;  // holds what prepare() packed
  bool prepared_ = false;
};

}  // namespace dsvl2
