// PNG through libpng, converted to RGB the way PIL 9.4 does it
// (PngImagePlugin._MODES rawmodes, then Image.convert("RGB")):
//  * 8-bit gray (L) is replicated; 1/2/4-bit gray is scaled to 0..255 (unpackers
//    "1", "L;2" (x85), "L;4" (x17)).
//  * 16-bit gray opens as mode "I" with values 0..65535, and convert("RGB")
//    CLIPS them to 0..255 (Convert.c i2rgb), it does not take the high byte.
//  * 16-bit RGB / RGBA / gray+alpha keep the HIGH byte ("RGB;16B", "RGBA;16B",
//    "LA;16B"): truncation, not rounding.
//  * Alpha (RGBA, LA, tRNS) is dropped, never composited.
//  * Palette images index a 256-entry palette whose entries past the PLTE chunk
//    keep PIL's initial gray ramp (i, i, i) (Palette.c ImagingPaletteNew).
// Gamma, colour-profile and text chunks are ignored, as PIL ignores them.
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "image/decode_internal.h"

namespace dsvl2::detail {
namespace {

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char message[200];
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof src->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "file is truncated");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

struct PngHandles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngHandles() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  int channels = 0;  // samples per pixel as stored
  png_colorp palette = nullptr;
  int num_palette = 0;
};

// The setjmp frames hold no objects with destructors: a libpng error longjmps
// here and the caller turns the saved message into an Error.
bool png_read_header(PngHandles& h, PngHeader& hdr) {
  if (setjmp(png_jmpbuf(h.png))) return false;
  png_set_read_fn(h.png, png_get_error_ptr(h.png), png_read_from_memory);
  png_read_info(h.png, h.info);
  png_get_IHDR(h.png, h.info, &hdr.width, &hdr.height, &hdr.bit_depth, &hdr.color_type, nullptr, nullptr, nullptr);
  hdr.channels = png_get_channels(h.png, h.info);
  if (hdr.color_type == PNG_COLOR_TYPE_PALETTE) {
    if (png_get_PLTE(h.png, h.info, &hdr.palette, &hdr.num_palette) != PNG_INFO_PLTE)
      png_error(h.png, "palette image without a PLTE chunk");
  }
  return true;
}

bool png_read_pixels(PngHandles& h, const PngHeader& hdr, std::vector<uint8_t>& buf, std::vector<png_bytep>& rows) {
  if (setjmp(png_jmpbuf(h.png))) return false;
  if (hdr.bit_depth < 8) png_set_packing(h.png);  // one sample per byte, values 0..2^depth-1
  png_set_interlace_handling(h.png);
  png_read_update_info(h.png, h.info);
  const size_t rowbytes = png_get_rowbytes(h.png, h.info);
  buf.resize(rowbytes * hdr.height);
  rows.resize(hdr.height);
  for (png_uint_32 y = 0; y < hdr.height; ++y) rows[y] = buf.data() + y * rowbytes;
  png_read_image(h.png, rows.data());
  png_read_end(h.png, nullptr);
  return true;
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits) {
  PngSource src{data, size, 0, {0}};
  PngHandles h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
  if (!h.png) DSVL2_FAIL("%s: cannot initialise the PNG decoder", what.c_str());
  h.info = png_create_info_struct(h.png);
  if (!h.info) DSVL2_FAIL("%s: cannot initialise the PNG decoder", what.c_str());
  // PIL does not validate palette indices; we expand out-of-range ones ourselves.
  png_set_check_for_invalid_index(h.png, 0);
  png_set_user_limits(h.png, 0x7fffffff, 0x7fffffff);  // our own pixel limit applies below

  PngHeader hdr;
  if (!png_read_header(h, hdr)) DSVL2_FAIL("%s: invalid PNG: %s", what.c_str(), src.message);
  check_dimensions(hdr.width, hdr.height, limits, what, "PNG");

  std::vector<uint8_t> buf;
  std::vector<png_bytep> rows;
  if (!png_read_pixels(h, hdr, buf, rows)) DSVL2_FAIL("%s: invalid PNG: %s", what.c_str(), src.message);

  Image img;
  allocate_rgb(img, int(hdr.width), int(hdr.height));
  const int W = int(hdr.width);
  const int bps = hdr.bit_depth == 16 ? 2 : 1;  // bytes per sample (big-endian when 16)
  const int stride = hdr.channels * bps;

  // Palette with PIL's gray-ramp fill past the PLTE entries.
  uint8_t pal[256][3];
  for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = uint8_t(i);
  for (int i = 0; i < hdr.num_palette && i < 256; ++i) {
    pal[i][0] = hdr.palette[i].red;
    pal[i][1] = hdr.palette[i].green;
    pal[i][2] = hdr.palette[i].blue;
  }
  const int gray_scale = hdr.bit_depth == 1 ? 255 : hdr.bit_depth == 2 ? 85 : hdr.bit_depth == 4 ? 17 : 1;

  for (png_uint_32 y = 0; y < hdr.height; ++y) {
    const uint8_t* in = rows[y];
    uint8_t* out = img.rgb.data() + size_t(y) * W * 3;
    for (int x = 0; x < W; ++x, in += stride, out += 3) {
      switch (hdr.color_type) {
        case PNG_COLOR_TYPE_GRAY: {
          uint8_t v;
          if (bps == 2) {
            const int v16 = (in[0] << 8) | in[1];
            v = uint8_t(v16 > 255 ? 255 : v16);  // mode "I" -> RGB clips
          } else {
            v = uint8_t(in[0] * gray_scale);
          }
          out[0] = out[1] = out[2] = v;
          break;
        }
        case PNG_COLOR_TYPE_GRAY_ALPHA:
          out[0] = out[1] = out[2] = in[0];  // high byte when 16-bit
          break;
        case PNG_COLOR_TYPE_PALETTE:
          std::memcpy(out, pal[in[0]], 3);
          break;
        default:  // RGB, RGBA: high byte of each sample when 16-bit
          out[0] = in[0];
          out[1] = in[bps];
          out[2] = in[2 * bps];
          break;
      }
    }
  }
  return img;
}

}  // namespace dsvl2::detail
