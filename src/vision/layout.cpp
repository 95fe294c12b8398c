#include "vision/layout.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/image_tokens.h"

namespace dsvl2 {


int64_t image_token_side(const VLConfig& cfg) {
  const int64_t r = cfg.projector.downsample_ratio;
  DSVL2_REQUIRE(r > 0, "projector_config: downsample_ratio %lld must be positive", (long long)r);
  return dsvl2::image_token_side(cfg.vision.image_size, cfg.vision.patch_size, r);
}

int64_t tiles_for_crops(const Tensor& crop) {
  DSVL2_REQUIRE(crop.dtype() == DType::kI64 && crop.shape().size() == 2 && crop.dim(1) == 2,
                "images_spatial_crop must be I64 [n_images, 2], got %s %s", dtype_name(crop.dtype()),
                shape_str(crop.shape()).c_str());
  const int64_t* wh = crop.as<int64_t>();
  int64_t tiles = 0;
  for (int64_t i = 0; i < crop.dim(0); i++) {
    const int64_t tw = wh[2 * i], th = wh[2 * i + 1];
    DSVL2_REQUIRE(tw >= 1 && th >= 1 && tw <= 4096 && th <= 4096,
                  "images_spatial_crop: image %lld has %lld x %lld tiles (each must be 1..4096)", (long long)i,
                  (long long)tw, (long long)th);
    tiles += 1 + tw * th;
  }
  return tiles;
}

Tensor layout_image_tokens(const Tensor& proj, const Tensor& crop, const Tensor& newline, const Tensor& separator,
                           const std::string& global_view_pos) {
  const Shape& ps = proj.shape();
  DSVL2_REQUIRE(proj.dtype() == DType::kF32 && ps.size() == 3, "image layout: projector output must be F32 [n, hw, D], got %s",
                shape_str(ps).c_str());
  const int64_t n_tiles = ps[0], hw = ps[1], D = ps[2];
  const int64_t side = int64_t(std::lround(std::sqrt(double(hw))));
  DSVL2_REQUIRE(side * side == hw, "image layout: %lld tokens per tile is not a square grid", (long long)hw);
  DSVL2_REQUIRE(newline.dtype() == DType::kF32 && newline.numel() == D && separator.dtype() == DType::kF32 &&
                    separator.numel() == D,
                "image layout: image_newline / view_seperator must be F32 [%lld]", (long long)D);
  DSVL2_REQUIRE(global_view_pos == "head" || global_view_pos == "tail",
                "image layout: global_view_pos \"%s\" must be \"head\" or \"tail\"", global_view_pos.c_str());
  const int64_t need_tiles = tiles_for_crops(crop);
  DSVL2_REQUIRE(need_tiles == n_tiles, "image layout: images_spatial_crop needs %lld tiles but %lld were encoded",
                (long long)need_tiles, (long long)n_tiles);
  const std::vector<int64_t> src_rows = image_token_sources(crop, side, global_view_pos);
  const int64_t total = int64_t(src_rows.size());
  Tensor out = Tensor::f32({total, D});
  const size_t row_bytes = size_t(D) * sizeof(float);
  for (int64_t i = 0; i < total; i++) {
    const int64_t r = src_rows[size_t(i)];
    const float* row = r >= 0 ? proj.f32() + r * D : r == kLayoutNewline ? newline.f32() : separator.f32();
    std::memcpy(out.f32() + i * D, row, row_bytes);
  }
  return out;
}

std::vector<int64_t> image_token_sources(const Tensor& crop, int64_t side, const std::string& global_view_pos) {
  const int64_t n_images = crop.dim(0);
  const int64_t* wh = crop.as<int64_t>();
  int64_t total = 0;
  for (int64_t i = 0; i < n_images; i++) total += image_token_count(wh[2 * i], wh[2 * i + 1], side);
  std::vector<int64_t> out;
  out.reserve(size_t(total));
  auto tile_token = [&](int64_t tile, int64_t y, int64_t x) { return (tile * side + y) * side + x; };
  int64_t tile = 0;
  for (int64_t i = 0; i < n_images; i++) {
    const int64_t tw = wh[2 * i], th = wh[2 * i + 1], global = tile, first_local = tile + 1;
    auto write_global = [&] {
      for (int64_t y = 0; y < side; y++) {
        for (int64_t x = 0; x < side; x++) out.push_back(tile_token(global, y, x));
        out.push_back(kLayoutNewline);
      }
    };
    auto write_local = [&] {
      for (int64_t ty = 0; ty < th; ty++)
        for (int64_t y = 0; y < side; y++) {
          for (int64_t tx = 0; tx < tw; tx++)
            for (int64_t x = 0; x < side; x++) out.push_back(tile_token(first_local + ty * tw + tx, y, x));
          out.push_back(kLayoutNewline);
        }
    };
    if (global_view_pos == "head") {
      write_global();
      out.push_back(kLayoutSeparator);
      write_local();
    } else {
      write_local();
      out.push_back(kLayoutSeparator);
      write_global();
    }
    tile += 1 + tw * th;
  }
  DSVL2_CHECK(int64_t(out.size()) == total, "image layout: %zu of %lld rows", out.size(), (long long)total);
  return out;
}

ImageTokenLayout ImageTokenLayout::load(const Checkpoint& ck, const VLConfig& cfg) {
  DSVL2_REQUIRE(cfg.tile_tag == "2D", "config: tile_tag \"%s\" is not supported (only \"2D\")", cfg.tile_tag.c_str());
  DSVL2_REQUIRE(cfg.global_view_pos == "head" || cfg.global_view_pos == "tail",
                "config: global_view_pos \"%s\" must be \"head\" or \"tail\"", cfg.global_view_pos.c_str());
  const int64_t D = cfg.projector.n_embed;
  ImageTokenLayout l;
  l.newline = to_f32(ck.require("image_newline", {D}));
  l.separator = to_f32(ck.require("view_seperator", {D}));
  l.global_view_pos = cfg.global_view_pos;
  return l;
}

void splice_image_embeddings(Tensor& text_embeds, const std::vector<int64_t>& ids, int64_t image_token_id,
                             const Tensor& image_tokens) {
  DSVL2_REQUIRE(text_embeds.dtype() == DType::kF32 && text_embeds.shape().size() == 2 &&
                    text_embeds.dim(0) == int64_t(ids.size()),
                "image splice: text embeddings %s do not match %zu token ids", shape_str(text_embeds.shape()).c_str(),
                ids.size());
  const int64_t D = text_embeds.dim(1);
  DSVL2_REQUIRE(image_tokens.dtype() == DType::kF32 && image_tokens.shape().size() == 2 && image_tokens.dim(1) == D,
                "image splice: image tokens %s must be F32 [N, %lld]", shape_str(image_tokens.shape()).c_str(),
                (long long)D);
  int64_t slots = 0;
  for (int64_t id : ids) slots += id == image_token_id;
  DSVL2_REQUIRE(slots == image_tokens.dim(0),
                "image splice: the prompt has %lld image-token positions (id %lld) but the images give %lld tokens",
                (long long)slots, (long long)image_token_id, (long long)image_tokens.dim(0));
  const float* src = image_tokens.f32();
  float* dst = text_embeds.f32();
  for (size_t t = 0; t < ids.size(); t++)
    if (ids[t] == image_token_id) {
      std::memcpy(dst + int64_t(t) * D, src, size_t(D) * sizeof(float));
      src += D;
    }
}

}  // namespace dsvl2
