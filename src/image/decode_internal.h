// Per-format decoders behind decode_image(); each returns 8-bit RGB exactly as
// PIL 9.4's Image.open(...).convert("RGB") would, or throws Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "image/image.h"

namespace dsvl2::detail {

// Refuses zero-size and over-limit images from their header, before any pixel
// buffer is allocated (PIL: Image._decompression_bomb_check, pixels > limit).
void check_dimensions(int64_t width, int64_t height, const DecodeLimits& limits, const std::string& what,
                      const char* format);

// Allocates img.rgb for width x height (after check_dimensions).
void allocate_rgb(Image& img, int width, int height);

Image decode_png(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits);
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits);
Image decode_webp(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits);
Image decode_gif(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits);
Image decode_bmp(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits);

}  // namespace dsvl2::detail
