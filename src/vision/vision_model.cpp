#include "vision/vision_model.h"

#include "core/error.h"

namespace dsvl2 {

VisionModel VisionModel::load(const Checkpoint& ckpt, const VLConfig& cfg) {
  DSVL2_REQUIRE(cfg.projector.input_dim == cfg.vision.width,
                "config: projector input_dim %d differs from the vision width %d", cfg.projector.input_dim,
                cfg.vision.width);
  return VisionModel{VisionTower::load(ckpt, cfg.vision), Projector::load(ckpt, cfg.projector),
                     ImageTokenLayout::load(ckpt, cfg)};
}

size_t VisionModel::prepare(const Ops& ops, const ReleaseSource& release) {
  DSVL2_REQUIRE(!prepared_, "vision model: prepare() was already called");
  prepared_ = true;
  std::vector<Weight*> ws = tower.linears();
  for (Weight* w : projector.linears()) ws.push_back(w);
  size_t bytes = 0;
  packed_ = prepack_weights(ws, ops, release, &bytes);
  return bytes;
}

Tensor VisionModel::embed_images(const Tensor& pixel_values, const Tensor& images_spatial_crop, const Ops& ops,
                                 VisionTrace* trace, VisionScratch* scratch,
                                 const std::function<void(int, int)>& progress) const {
  // Check the tile count before the expensive encoder pass.
  const int64_t need = tiles_for_crops(images_spatial_crop);
  DSVL2_REQUIRE(pixel_values.shape().size() == 4 && pixel_values.dim(0) == need,
                "vision: images_spatial_crop needs %lld tiles but pixel_values is %s", (long long)need,
                shape_str(pixel_values.shape()).c_str());
  Tensor feats = tower.encode(pixel_values, ops, scratch, progress);
  Tensor proj = projector.forward(feats, ops);
  Tensor tokens = layout.arrange(proj, images_spatial_crop);
  if (trace) {
    trace->vision_output = std::move(feats);
    trace->projector_output = std::move(proj);
  }
  return tokens;
}

}  // namespace dsvl2
