// Format sniffing and the shared checks of every decoder. Only an allow-list
// of formats is recognised (JPEG, PNG, WebP, GIF, BMP), by magic bytes.
#include <cstring>

#include "core/error.h"
#include "core/file.h"
#include "image/decode_internal.h"
#include "image/image.h"

namespace dsvl2 {
namespace detail {

void check_dimensions(int64_t width, int64_t height, const DecodeLimits& limits, const std::string& what,
                      const char* format) {
  if (width <= 0 || height <= 0)
    DSVL2_FAIL("%s: %s image has zero or negative size %lldx%lld", what.c_str(), format, (long long)width,
               (long long)height);
  // Guard the product itself against overflow: both factors fit in 32 bits here.
  if (width > (int64_t(1) << 31) || height > (int64_t(1) << 31) || width * height > limits.max_pixels)
    DSVL2_FAIL("%s: %s image of %lldx%lld pixels exceeds the limit of %lld pixels (decompression bomb?)",
               what.c_str(), format, (long long)width, (long long)height, (long long)limits.max_pixels);
}

void allocate_rgb(Image& img, int width, int height) {
  img.width = width;
  img.height = height;
  img.rgb.assign(size_t(width) * size_t(height) * 3, 0);
}

}  // namespace detail

Image decode_image(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits) {
  if (size == 0 || data == nullptr) DSVL2_FAIL("%s: empty image file", what.c_str());
  auto starts = [&](const char* magic, size_t n, size_t at = 0) {
    return size >= at + n && std::memcmp(data + at, magic, n) == 0;
  };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return detail::decode_png(data, size, what, limits);
  if (starts("\xff\xd8\xff", 3)) return detail::decode_jpeg(data, size, what, limits);
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return detail::decode_webp(data, size, what, limits);
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return detail::decode_gif(data, size, what, limits);
  if (starts("BM", 2)) return detail::decode_bmp(data, size, what, limits);
  DSVL2_FAIL("%s: not a supported image (expected JPEG, PNG, WebP, GIF or BMP)", what.c_str());
}

Image load_image(const std::string& path, const DecodeLimits& limits) {
  MappedFile f(path);
  return decode_image(f.data(), f.size(), path, limits);
}

}  // namespace dsvl2
