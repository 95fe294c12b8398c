#include "vision/vision_encoding.h"

#include <algorithm>

#include "core/error.h"

namespace dsvl2 {

VisionEncoding::VisionEncoding(const VisionModel& model, Tensor pixel_values, Tensor images_spatial_crop,
                               VisionScratch* scratch)
    : model_(model),
      pixels_(std::move(pixel_values)),
      crops_(std::move(images_spatial_crop)),
      scratch_(scratch ? *scratch : own_scratch_) {
  // The tile count is checked before any expensive work.
  const int64_t need = tiles_for_crops(crops_);
  DSVL2_REQUIRE(pixels_.shape().size() == 4 && pixels_.dim(0) == need,
                "vision: images_spatial_crop needs %lld tiles but pixel_values is %s", (long long)need,
                shape_str(pixels_.shape()).c_str());
}

bool VisionEncoding::advance(const Ops& ops, int max_blocks, int64_t max_tiles) {
  if (finished_) return true;
  // A block that threw may have changed the activations: no retry from there.
  if (failed_) DSVL2_FAIL_KIND(kInternal, "vision encoding: an earlier step failed; start a new encoding");
  failed_ = true;  // until this step completes
  if (!started_) {
    n_tiles_ = model_.tower.embed_patches(pixels_, ops, scratch_);
    started_ = true;
  }
  int budget = std::max(1, max_blocks);
  if (tile_ > 0 || max_tiles < n_tiles_) {  // part of one block's tiles, or the rest of a split block
    const int64_t end = tile_ + std::min(n_tiles_ - tile_, std::max<int64_t>(1, max_tiles));  // no overflow
    model_.tower.run_block_tiles(done_, tile_, end, scratch_, ops);
    tile_ = end;
    if (tile_ == n_tiles_) {
      tile_ = 0;
      done_++;
    }
    budget = max_tiles < n_tiles_ ? 0 : budget - 1;
  }
  if (budget > 0 && done_ < blocks()) {
    const int last = std::min(blocks(), done_ + budget);
    model_.tower.run_blocks(n_tiles_, done_, last, scratch_, ops);
    done_ = last;
  }
  if (done_ == blocks()) {
    Tensor feats = model_.tower.final_norm(n_tiles_, scratch_, ops);
    own_scratch_ = VisionScratch{};  // the activations are no longer needed
    tokens_ = model_.layout.arrange(model_.projector.forward(feats, ops), crops_);
    pixels_ = Tensor{};
    finished_ = true;
  }
  failed_ = false;
  return finished_;
}

Tensor VisionEncoding::take_tokens() {
  DSVL2_CHECK(finished_, "vision encoding: %d of %d blocks done", done_, blocks());
  return std::move(tokens_);
}

size_t VisionEncoding::scratch_bytes() const {
  return size_t(scratch_.x.nbytes() + scratch_.h.nbytes() + scratch_.qkv.nbytes() + scratch_.attn.nbytes() +
                scratch_.mlp.nbytes());
}

}  // namespace dsvl2
