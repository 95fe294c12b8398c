// Decoded images, always 8-bit RGB as PIL's Image.convert("RGB") gives them:
// alpha dropped (not composited), gray replicated, palette expanded.
//
//   Image img = load_image("photo.jpg");            // throws Error on bad input
//   uint8_t r = img.rgb[(y * img.width + x) * 3 + 0];
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsvl2 {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3, row-major, interleaved
};

struct DecodeLimits {
  // Pillow's MAX_IMAGE_PIXELS * 2: above this it raises DecompressionBombError.
  int64_t max_pixels = 178'956'970;
};

// Decodes JPEG, PNG (8/16-bit, gray, palette, alpha), WebP, BMP and GIF (first
// frame), sniffing the format from the bytes. `what` names the source in errors.
// Pixels are those of PIL 9.4's Image.open(f).convert("RGB") (JPEG through the
// same libjpeg-turbo at default settings); per-format details are documented in
// decode_<format>.cpp (e.g. 16-bit PNG keeps the high byte, but 16-bit gray is
// clipped to 255 as PIL's mode "I" conversion does). EXIF orientation is not
// applied, as the official processor does not apply it. Throws Error for
// unknown formats, truncated or corrupt data, zero sizes, and images over
// limits.max_pixels (checked from the header, before pixels are allocated).
Image decode_image(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits = {});
Image load_image(const std::string& path, const DecodeLimits& limits = {});

}  // namespace dsvl2
