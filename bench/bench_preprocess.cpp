// Image stage speed on one thread: decode a 1920x1080 JPEG (synthesised in
// memory with libjpeg), then the official tiling (select_best_resolution ->
// 1536x768 grid, global + 8 local tiles, PIL-exact bicubic, normalisation).
// Target: decode + preprocess <= 60 ms.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include <jpeglib.h>

#include "image/image.h"
#include "image/preprocess.h"
#include "image/resample.h"

namespace {

std::string make_jpeg(int w, int h) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  uint32_t seed = 1;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      seed = seed * 1664525u + 1013904223u;
      const int noise = int(seed >> 28);  // photo-like: gradients plus grain
      uint8_t* p = &px[(size_t(y) * w + x) * 3];
      p[0] = uint8_t((x * 255 / w + noise) & 255);
      p[1] = uint8_t((y * 255 / h + 2 * noise) & 255);
      p[2] = uint8_t(((x + y) * 255 / (w + h) + noise) & 255);
    }
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = &px[size_t(c.next_scanline) * w * 3];
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<const char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

dsvl2::ProcessorConfig official_config() {
  dsvl2::ProcessorConfig cfg;
  cfg.candidate_resolutions = {{384, 384},  {384, 768},  {768, 384},  {384, 1152}, {1152, 384}, {384, 1536},
                               {1536, 384}, {768, 768},  {384, 1920}, {1920, 384}, {384, 2304}, {2304, 384},
                               {768, 1152}, {1152, 768}, {384, 2688}, {2688, 384}, {384, 3072}, {3072, 384},
                               {768, 1536}, {1536, 768}, {384, 3456}, {3456, 384}, {1152, 1152}};
  return cfg;
}

const std::string& jpeg_1080p() {
  static const std::string j = make_jpeg(1920, 1080);
  return j;
}

void BM_DecodeJpeg1080p(benchmark::State& state) {
  const std::string& j = jpeg_1080p();
  for (auto _ : state) {
    auto img = dsvl2::decode_image(reinterpret_cast<const uint8_t*>(j.data()), j.size(), "bench");
    benchmark::DoNotOptimize(img.rgb.data());
  }
}

void BM_Preprocess1080p(benchmark::State& state) {
  const std::string& j = jpeg_1080p();
  const auto img = dsvl2::decode_image(reinterpret_cast<const uint8_t*>(j.data()), j.size(), "bench");
  const auto cfg = official_config();
  for (auto _ : state) {
    auto r = dsvl2::preprocess_images({img}, cfg, dsvl2::CropMode::kOn);
    benchmark::DoNotOptimize(r.pixel_values.data());
  }
}

void BM_DecodeAndPreprocess1080p(benchmark::State& state) {
  const std::string& j = jpeg_1080p();
  const auto cfg = official_config();
  for (auto _ : state) {
    auto img = dsvl2::decode_image(reinterpret_cast<const uint8_t*>(j.data()), j.size(), "bench");
    auto r = dsvl2::preprocess_images({img}, cfg, dsvl2::CropMode::kOn);
    benchmark::DoNotOptimize(r.pixel_values.data());
  }
  state.counters["tiles"] = 9;
}

void BM_ResizeBicubic1080pTo1536x864(benchmark::State& state) {
  const std::string& j = jpeg_1080p();
  const auto img = dsvl2::decode_image(reinterpret_cast<const uint8_t*>(j.data()), j.size(), "bench");
  for (auto _ : state) {
    auto r = dsvl2::resize_bicubic(img, 1536, 864);
    benchmark::DoNotOptimize(r.rgb.data());
  }
}

BENCHMARK(BM_DecodeJpeg1080p)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Preprocess1080p)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeAndPreprocess1080p)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ResizeBicubic1080pTo1536x864)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
