// In-memory encoders for building test images with the same libraries the
// decoders use (libpng, libjpeg, giflib, libwebp), plus a hand-built BMP writer.
#pragma once
#include <gif_lib.h>
#include <png.h>
#include <webp/encode.h>

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <jpeglib.h>

namespace dsvl2::test {

struct PngSpec {
  int width = 1, height = 1, bit_depth = 8, color_type = PNG_COLOR_TYPE_RGB;
  bool interlace = false;
  std::vector<uint8_t> pixels;         // rows as stored (16-bit samples big-endian), no filter bytes
  std::vector<png_color> palette;      // for palette images
  std::vector<uint8_t> trns;           // palette alpha entries, if any
  bool header_only = false;            // stop after IHDR/PLTE (for bomb tests)
};

inline void png_write_to_string(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
inline void png_flush_nothing(png_structp) {}

inline std::string encode_png(const PngSpec& s) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng write failed");
  }
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_set_write_fn(png, &out, png_write_to_string, png_flush_nothing);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), int(s.palette.size()));
  if (!s.trns.empty()) png_set_tRNS(png, info, s.trns.data(), int(s.trns.size()), nullptr);
  png_write_info(png, info);
  if (!s.header_only) {
    const size_t rowbytes = png_get_rowbytes(png, info);
    std::vector<png_bytep> rows(s.height);
    for (int y = 0; y < s.height; ++y) rows[y] = const_cast<png_bytep>(s.pixels.data() + y * rowbytes);
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
  }
  png_destroy_write_struct(&png, &info);
  return out;
}

// Baseline JPEG at `quality` from interleaved samples (components 1 or 3).
inline std::string encode_jpeg(const uint8_t* pixels, int width, int height, int components, int quality) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = width;
  c.image_height = height;
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels + size_t(c.next_scanline) * width * components);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<const char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

inline int gif_write_to_string(GifFileType* gif, const GifByteType* data, int n) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), n);
  return n;
}

// One-frame GIF: indices (fw x fh) at (left, top) on a sw x sh screen.
inline std::string encode_gif(int sw, int sh, int left, int top, int fw, int fh, const std::vector<uint8_t>& indices,
                              const std::vector<GifColorType>& global, int transparent = -1, bool interlace = false) {
  std::string out;
  int err = 0;
  GifFileType* gif = EGifOpen(&out, gif_write_to_string, &err);
  EGifSetGifVersion(gif, true);
  ColorMapObject* cmap =
      global.empty() ? nullptr : GifMakeMapObject(int(global.size()), const_cast<GifColorType*>(global.data()));
  EGifPutScreenDesc(gif, sw, sh, 8, 0, cmap);
  if (transparent >= 0) {
    GifByteType gce[4] = {1, 0, 0, GifByteType(transparent)};
    EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, gce);
  }
  EGifPutImageDesc(gif, left, top, fw, fh, interlace, nullptr);
  std::vector<GifPixelType> row(fw);
  // Interlaced frames are written in pass order, as a decoder reads them.
  std::vector<int> order;
  if (interlace) {
    const int starts[4] = {0, 4, 2, 1}, steps[4] = {8, 8, 4, 2};
    for (int p = 0; p < 4; ++p)
      for (int y = starts[p]; y < fh; y += steps[p]) order.push_back(y);
  } else {
    for (int y = 0; y < fh; ++y) order.push_back(y);
  }
  for (int y : order) {
    std::memcpy(row.data(), indices.data() + size_t(y) * fw, fw);
    EGifPutLine(gif, row.data(), fw);
  }
  EGifCloseFile(gif, &err);
  if (cmap) GifFreeMapObject(cmap);
  return out;
}

inline std::string encode_webp_lossless_rgba(const uint8_t* rgba, int w, int h) {
  uint8_t* buf = nullptr;
  const size_t n = WebPEncodeLosslessRGBA(rgba, w, h, w * 4, &buf);
  std::string out(reinterpret_cast<const char*>(buf), n);
  WebPFree(buf);
  return out;
}

// BMP with a 40-byte header; `rows` are the stored rows bottom-up (unpadded).
inline std::string encode_bmp(int w, int h, int bits, const std::vector<std::vector<uint8_t>>& rows,
                              const std::vector<uint8_t>& bgrx_palette = {}, uint32_t compression = 0,
                              const std::vector<uint32_t>& masks = {}) {
  auto le32 = [](std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
  };
  auto le16 = [](std::string& s, uint16_t v) {
    s.push_back(char(v & 0xff));
    s.push_back(char(v >> 8));
  };
  const size_t stride = ((size_t(w) * bits + 31) >> 3) & ~size_t(3);
  std::string data;
  for (const auto& r : rows) {
    std::string row(r.begin(), r.end());
    row.resize(stride, '\0');
    data += row;
  }
  std::string info;
  le32(info, 40);
  le32(info, uint32_t(w));
  le32(info, uint32_t(h));
  le16(info, 1);
  le16(info, uint16_t(bits));
  le32(info, compression);
  le32(info, uint32_t(data.size()));
  le32(info, 2835);
  le32(info, 2835);
  le32(info, uint32_t(bgrx_palette.size() / 4));
  le32(info, 0);
  for (uint32_t m : masks) le32(info, m);
  const uint32_t offset = uint32_t(14 + info.size() + bgrx_palette.size());
  std::string out = "BM";
  le32(out, uint32_t(offset + data.size()));
  le32(out, 0);
  le32(out, offset);
  out += info;
  out.append(bgrx_palette.begin(), bgrx_palette.end());
  return out + data;
}

}  // namespace dsvl2::test
