// Encoding the images of one prompt in pieces, so that a scheduler can
// interleave a long vision pass (about a second per tile on two cores) with
// decode steps of other sequences instead of stalling them:
//
//   VisionEncoding enc(model.vision(), pre.pixel_values, pre.images_spatial_crop);
//   while (!enc.advance(ops, 2)) { step_sequences(lm, live, ops); }   // 2 blocks at a time
//   Tensor tokens = enc.take_tokens();   // == embed_images(...), bit for bit
//
// The first advance() also runs the patch embedding; the one that runs the
// last block also runs the final norm, the projector and the layout.
#pragma once
#include <cstdint>

#include "vision/vision_model.h"

namespace dsvl2 {

class VisionEncoding {
 public:
  // Checks the shapes now (Error); the model must outlive the encoding.
  // `scratch`: activations to reuse (a server keeps one, so each image does
  // not fault in a few hundred MB of fresh pages); null: its own, freed when
  // done. A shared scratch serves one unfinished encoding at a time.
  VisionEncoding(const VisionModel& model, Tensor pixel_values, Tensor images_spatial_crop,
                 VisionScratch* scratch = nullptr);

  int blocks() const { return model_.tower.blocks(); }
  int blocks_done() const { return done_; }
  bool done() const { return finished_; }
  // Runs up to `max_blocks` more blocks (at least one); with max_tiles below
  // the tile count, one block on at most max_tiles tiles (a block on all five
  // tiles of a 640x480 image takes several decode steps' time). Returns
  // done(). After a step threw, the encoding is spent: further calls are errors.
  bool advance(const Ops& ops, int max_blocks, int64_t max_tiles = INT64_MAX);
  int64_t tiles() const { return n_tiles_; }  // known after the first advance()
  // The image tokens [N, n_embed] in prompt order, once done().
  Tensor take_tokens();
  // Bytes of activations this encoding holds while it runs.
  size_t scratch_bytes() const;

 private:
  const VisionModel& model_;
  Tensor pixels_, crops_;
  VisionScratch own_scratch_;
  VisionScratch& scratch_;
  int64_t n_tiles_ = 0;
  int done_ = 0;
  int64_t tile_ = 0;  // tiles of block done_ already run
  bool started_ = false, finished_ = false, failed_ = false;
  Tensor tokens_;
};

}  // namespace dsvl2
