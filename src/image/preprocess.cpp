// DeepseekVLV2Processor.tokenize_with_images (deepseek_vl2/models/
// processing_deepseek_vl_v2.py), image half: best grid, global view, local
// tiles, ToTensor + Normalize. Pillow 9.4 semantics for ImageOps.pad/contain.
#include "image/preprocess.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/image_tokens.h"
#include "image/resample.h"

namespace dsvl2 {

std::pair<int, int> select_best_resolution(int width, int height,
                                           const std::vector<std::pair<int, int>>& candidates) {
  if (candidates.empty()) DSVL2_FAIL("no candidate resolutions");
  if (width <= 0 || height <= 0) DSVL2_FAIL("image size %dx%d is empty", width, height);
  std::pair<int, int> best = candidates[0];
  int64_t max_effective = 0;
  int64_t min_wasted = INT64_MAX;
  const int64_t original_area = int64_t(width) * height;
  bool found = false;
  for (const auto& [cw, ch] : candidates) {
    // Python: scale = min(w / ow, h / oh) in double; int() truncates.
    const double scale = std::min(double(cw) / width, double(ch) / height);
    const int64_t dw = int64_t(width * scale), dh = int64_t(height * scale);
    const int64_t effective = std::min(dw * dh, original_area);
    const int64_t wasted = int64_t(cw) * ch - effective;
    if (effective > max_effective || (effective == max_effective && wasted < min_wasted)) {
      max_effective = effective;
      min_wasted = wasted;
      best = {cw, ch};
      found = true;
    }
  }
  // Official code returns None (and then fails) if no candidate has a nonzero
  // effective area; only possible for degenerate candidate lists.
  if (!found) DSVL2_FAIL("no candidate resolution fits a %dx%d image", width, height);
  return best;
}

Image pil_pad(const Image& img, int W, int H, const std::array<uint8_t, 3>& color) {
  // ImageOps.contain: keep the aspect ratio; Python's round() is half-to-even,
  // which std::nearbyint gives under the default rounding mode.
  int rw = W, rh = H;
  const double im_ratio = double(img.width) / img.height;
  const double dest_ratio = double(W) / H;
  if (im_ratio != dest_ratio) {
    if (im_ratio > dest_ratio) {
      rh = int(std::nearbyint(double(img.height) / img.width * W));
    } else {
      rw = int(std::nearbyint(double(img.width) / img.height * H));
    }
  }
  if (rw < 1 || rh < 1)
    DSVL2_FAIL("a %dx%d image is too elongated to fit %dx%d (it would resize to %dx%d)", img.width, img.height, W, H,
               rw, rh);
  Image resized = resize_bicubic(img, rw, rh);
  if (rw == W && rh == H) return resized;

  Image out;
  out.width = W;
  out.height = H;
  out.rgb.resize(size_t(W) * H * 3);
  for (size_t i = 0; i < size_t(W) * H; ++i) std::memcpy(&out.rgb[3 * i], color.data(), 3);
  // ImageOps.pad (9.4): offset = round((size - resized) * 0.5), half-to-even,
  // along the one axis that differs.
  int x0 = 0, y0 = 0;
  if (rw != W) {
    x0 = int(std::nearbyint((W - rw) * 0.5));
  } else {
    y0 = int(std::nearbyint((H - rh) * 0.5));
  }
  for (int y = 0; y < rh; ++y)
    std::memcpy(&out.rgb[(size_t(y + y0) * W + x0) * 3], &resized.rgb[size_t(y) * rw * 3], size_t(rw) * 3);
  return out;
}

std::array<uint8_t, 3> pad_color(const ProcessorConfig& cfg) {
  std::array<uint8_t, 3> c{};
  for (int i = 0; i < 3; ++i) {
    const double v = double(cfg.image_mean[i]) * 255;  // int() truncates toward zero
    c[i] = uint8_t(v <= 0 ? 0 : v >= 255 ? 255 : int(v));
  }
  return c;
}

bool cropping_enabled(CropMode crop, size_t n_images) {
  switch (crop) {
    case CropMode::kOn:
      return true;
    case CropMode::kOff:
      return false;
    case CropMode::kAuto:
      break;
  }
  return n_images <= 2;  // official: cropping=len(images) <= 2
}


namespace {

// ToTensor (k / 255 in float32) then Normalize ((x - mean) / std in float32),
// as a table per channel: the same float operations, done once per value.
struct NormTable {
  float v[3][256];
};

NormTable make_norm_table(const ProcessorConfig& cfg) {
  NormTable t;
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 256; ++k) {
      float x = float(k) / 255.0f;
      if (cfg.normalize) x = (x - cfg.image_mean[c]) / cfg.image_std[c];
      t.v[c][k] = x;
    }
  return t;
}

// Writes the S x S tile at (x0, y0) of img as CHW floats.
void write_tile(const Image& img, int x0, int y0, int S, const NormTable& t, float* dst) {
  const size_t plane = size_t(S) * S;
  for (int y = 0; y < S; ++y) {
    const uint8_t* row = &img.rgb[(size_t(y0 + y) * img.width + x0) * 3];
    float* r = dst + size_t(y) * S;
    float* g = r + plane;
    float* b = g + plane;
    for (int x = 0; x < S; ++x) {
      r[x] = t.v[0][row[3 * x + 0]];
      g[x] = t.v[1][row[3 * x + 1]];
      b[x] = t.v[2][row[3 * x + 2]];
    }
  }
}

}  // namespace

std::pair<int, int> padded_size(const Image& im, const ProcessorConfig& cfg, bool crop) {
  const int S = cfg.image_size;
  DSVL2_REQUIRE(S >= 1, "processor image_size %d is invalid", S);
  DSVL2_REQUIRE(im.width > 0 && im.height > 0, "an image is empty (%dx%d)", im.width, im.height);
  const auto best = crop ? select_best_resolution(im.width, im.height, cfg.candidate_resolutions) : std::pair{S, S};
  if (best.first % S != 0 || best.second % S != 0)
    DSVL2_FAIL("candidate resolution %dx%d is not a multiple of the tile size %d", best.first, best.second, S);
  return best;
}

int64_t image_token_count(const Image& im, const ProcessorConfig& cfg, bool crop) {
  const auto [bw, bh] = padded_size(im, cfg, crop);
  return image_token_count(bw / cfg.image_size, bh / cfg.image_size,
                           image_token_side(cfg.image_size, cfg.patch_size, cfg.downsample_ratio));
}

PreprocessResult preprocess_images(const std::vector<Image>& images, const ProcessorConfig& cfg, CropMode crop) {
  const int S = cfg.image_size;
  if (S < 1) DSVL2_FAIL("processor image_size %d is invalid", S);
  const bool cropping = cropping_enabled(crop, images.size());
  const auto color = pad_color(cfg);
  const NormTable table = make_norm_table(cfg);

  // Grids first, so the output tensor is allocated once.
  std::vector<std::pair<int, int>> best(images.size());
  PreprocessResult res;
  int64_t n_tiles = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    best[i] = padded_size(images[i], cfg, cropping);
    const int tiles = 1 + (best[i].first / S) * (best[i].second / S);
    res.tiles_per_image.push_back(tiles);
    n_tiles += tiles;
  }
  res.pixel_values = Tensor::f32({n_tiles, 3, S, S});
  res.images_spatial_crop = Tensor(DType::kI64, {int64_t(images.size()), 2});
  res.num_image_tokens = Tensor(DType::kI64, {int64_t(images.size())});
  auto* crop_out = res.images_spatial_crop.as<int64_t>();
  auto* tokens_out = res.num_image_tokens.as<int64_t>();

  float* dst = res.pixel_values.f32();
  const size_t tile_floats = size_t(3) * S * S;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto [bw, bh] = best[i];
    const Image global = pil_pad(images[i], S, S, color);
    write_tile(global, 0, 0, S, table, dst);
    dst += tile_floats;
    // The global view equals the local one when the grid is 1x1 (no crop).
    const Image local = (bw == S && bh == S) ? global : pil_pad(images[i], bw, bh, color);
    for (int y = 0; y < bh; y += S)
      for (int x = 0; x < bw; x += S) {
        write_tile(local, x, y, S, table, dst);
        dst += tile_floats;
      }
    crop_out[2 * i + 0] = bw / S;
    crop_out[2 * i + 1] = bh / S;
    tokens_out[i] = image_token_count(bw / S, bh / S, image_token_side(cfg.image_size, cfg.patch_size, cfg.downsample_ratio));
  }
  return res;
}

}  // namespace dsvl2
