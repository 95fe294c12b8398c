// BMP, parsed here (no library), converted as PIL 9.4's BmpImagePlugin and
// convert("RGB") do. Supported as PIL supports them:
//  * headers: OS/2 core (12 bytes, 3-byte palette entries) and Windows 40/64/
//    108/124 (4-byte entries); negative height = top-down rows.
//  * 1/4/8-bit palette (uncompressed, RLE8, RLE4); indices past the palette
//    map to gray (i, i, i) as PIL's palette starts as a ramp.
//  * 16-bit 5-5-5 (default) or 5-6-5 bitfields, scaled as v * 255 / 31 (or 63)
//    with integer division; 24-bit BGR; 32-bit BGRX by default, or one byte per
//    channel bitfields; alpha dropped.
// Rows are padded to 4 bytes; data starts at the file header's offset (PIL
// skips the palette when that offset points at it).
#include <cstring>
#include <vector>

#include "core/error.h"
#include "image/decode_internal.h"

namespace dsvl2::detail {
namespace {

uint32_t u32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

int mask_shift(uint32_t mask) {
  int s = 0;
  while (s < 32 && !((mask >> s) & 1)) ++s;
  return s;
}

// BmpRleDecoder of PIL 9.4: indices into `out` (width*height bytes, file row
// order). Returns the number of indices produced.
size_t decode_rle(const uint8_t* file, size_t size, size_t pos, bool rle4, int64_t width, size_t need,
                  std::vector<uint8_t>& out) {
  out.clear();
  out.reserve(need);
  int64_t x = 0;
  auto read = [&](size_t n) -> const uint8_t* {
    if (size - pos < n) return nullptr;
    const uint8_t* p = file + pos;
    pos += n;
    return p;
  };
  while (out.size() < need) {
    const uint8_t* pair = read(2);
    if (!pair) break;
    int64_t count = pair[0];
    const uint8_t value = pair[1];
    if (count) {  // encoded run, clipped at the row end
      if (x + count > width) count = std::max<int64_t>(0, width - x);
      for (int64_t i = 0; i < count; ++i) out.push_back(rle4 ? ((i % 2 == 0) ? value >> 4 : value & 15) : value);
      x += count;
    } else if (value == 0) {  // end of line
      while (out.size() % size_t(width) != 0) out.push_back(0);
      x = 0;
    } else if (value == 1) {  // end of bitmap
      break;
    } else if (value == 2) {
      // Delta. PIL 9.4 reads (and drops) two bytes, then reads the offsets from
      // the next two; reproduced for identical pixels.
      if (!read(2)) break;
      const uint8_t* d = read(2);
      if (!d) break;
      out.resize(out.size() + d[0] + size_t(d[1]) * width, 0);
      x = int64_t(out.size() % size_t(width));
    } else {  // absolute run of `value` pixels, padded to an even file offset
      const size_t bytes = rle4 ? value / 2 : value;
      const size_t got = std::min(bytes, size - pos);
      const uint8_t* p = file + pos;
      pos += got;
      for (size_t i = 0; i < got; ++i) {
        if (rle4) {
          out.push_back(p[i] >> 4);
          out.push_back(p[i] & 15);
        } else {
          out.push_back(p[i]);
        }
      }
      if (got < bytes) break;
      x += value;
      if (pos % 2 != 0 && pos < size) ++pos;
    }
  }
  return out.size();
}

}  // namespace

Image decode_bmp(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits) {
  if (size < 14 + 4) DSVL2_FAIL("%s: invalid BMP: file is truncated", what.c_str());
  size_t offset = u32(data + 10);
  const uint32_t header_size = u32(data + 14);
  if (header_size != 12 && header_size != 40 && header_size != 64 && header_size != 108 && header_size != 124)
    DSVL2_FAIL("%s: unsupported BMP header type (%u)", what.c_str(), header_size);
  if (size < 14 + size_t(header_size)) DSVL2_FAIL("%s: invalid BMP: header is truncated", what.c_str());
  const uint8_t* h = data + 18;  // header fields after the size
  size_t pos = 14 + header_size;

  int64_t width, height;
  int bits, palette_entry;
  uint32_t compression = 0, colors = 0;
  bool top_down = false;
  uint32_t masks[4] = {0, 0, 0, 0};
  if (header_size == 12) {
    width = u16(h);
    height = u16(h + 2);
    bits = u16(h + 6);
    palette_entry = 3;
  } else {
    width = u32(h);
    const uint32_t hv = u32(h + 4);
    top_down = h[7] == 0xFF;  // PIL's test for a negative height
    height = top_down ? int64_t(1ull << 32) - hv : int64_t(hv);
    bits = u16(h + 10);
    compression = u32(h + 12);
    colors = u32(h + 28);
    palette_entry = 4;
    if (compression == 3) {
      if (header_size >= 56) {
        for (int i = 0; i < 4; ++i) masks[i] = u32(h + 36 + 4 * i);
      } else {  // 40-byte header: three masks follow it
        if (size < pos + 12) DSVL2_FAIL("%s: invalid BMP: bitfield masks are truncated", what.c_str());
        for (int i = 0; i < 3; ++i) masks[i] = u32(data + pos + 4 * i);
        pos += 12;
      }
    }
  }
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
    DSVL2_FAIL("%s: unsupported BMP pixel depth (%d)", what.c_str(), bits);
  check_dimensions(width, height, limits, what, "BMP");
  if (colors == 0 && bits <= 16) colors = 1u << bits;
  if (offset == 14 + header_size && bits <= 8) offset += 4 * size_t(colors);

  // Channel layout for direct-colour pixels: bit masks of R, G, B.
  uint32_t rm = 0, gm = 0, bm = 0;
  if (bits == 16) {
    rm = 0x7C00, gm = 0x3E0, bm = 0x1F;  // "BGR;15"
  } else if (bits >= 24) {
    rm = 0xFF0000, gm = 0xFF00, bm = 0xFF;  // "BGR" / "BGRX"
  }
  if (compression == 3) {
    const bool ok32 = bits == 32 && ((masks[0] == 0xFF0000 && masks[1] == 0xFF00 && masks[2] == 0xFF &&
                                      (masks[3] == 0 || masks[3] == 0xFF000000)) ||
                                     (masks[0] == 0xFF000000 && masks[1] == 0xFF0000 && masks[2] == 0xFF00 &&
                                      (masks[3] == 0 || masks[3] == 0xFF)) ||
                                     (masks[0] == 0xFF && masks[1] == 0xFF00 && masks[2] == 0xFF0000 &&
                                      masks[3] == 0xFF000000) ||
                                     (masks[0] == 0 && masks[1] == 0 && masks[2] == 0 && masks[3] == 0));
    const bool ok24 = bits == 24 && masks[0] == 0xFF0000 && masks[1] == 0xFF00 && masks[2] == 0xFF;
    const bool ok16 = bits == 16 && masks[2] == 0x1F &&
                      ((masks[0] == 0xF800 && masks[1] == 0x7E0) || (masks[0] == 0x7C00 && masks[1] == 0x3E0));
    if (!ok32 && !ok24 && !ok16) DSVL2_FAIL("%s: unsupported BMP bitfields layout", what.c_str());
    if (!(bits == 32 && masks[0] == 0 && masks[1] == 0 && masks[2] == 0)) {  // all-zero masks mean BGRA
      rm = masks[0], gm = masks[1], bm = masks[2];
    }
  } else if (compression == 1 || compression == 2) {
    if (bits != (compression == 1 ? 8 : 4)) DSVL2_FAIL("%s: invalid BMP: RLE with %d-bit pixels", what.c_str(), bits);
  } else if (compression != 0) {
    DSVL2_FAIL("%s: unsupported BMP compression (%u)", what.c_str(), compression);
  }

  uint8_t pal[256][3];
  for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = uint8_t(i);
  if (bits <= 8) {
    if (colors == 0 || colors > 256) DSVL2_FAIL("%s: unsupported BMP palette size (%u)", what.c_str(), colors);
    if (size < pos + size_t(colors) * palette_entry) DSVL2_FAIL("%s: invalid BMP: palette is truncated", what.c_str());
    for (uint32_t i = 0; i < colors; ++i) {
      const uint8_t* e = data + pos + size_t(i) * palette_entry;  // B, G, R(, X)
      pal[i][0] = e[2], pal[i][1] = e[1], pal[i][2] = e[0];
    }
  }
  if (offset > size) DSVL2_FAIL("%s: invalid BMP: pixel data offset past the end of the file", what.c_str());

  // Uncompressed data must all be present before anything is allocated.
  const size_t W = size_t(width), H = size_t(height);
  const size_t stride = ((W * bits + 31) >> 3) & ~size_t(3);
  if (compression != 1 && compression != 2 && (size - offset) / stride < H)
    DSVL2_FAIL("%s: invalid BMP: image data is truncated", what.c_str());
  Image img;
  allocate_rgb(img, int(width), int(height));
  auto out_row = [&](size_t file_row) { return &img.rgb[(top_down ? file_row : H - 1 - file_row) * W * 3]; };

  if (compression == 1 || compression == 2) {
    std::vector<uint8_t> idx;
    if (decode_rle(data, size, offset, compression == 2, width, W * H, idx) < W * H)
      DSVL2_FAIL("%s: invalid BMP: not enough RLE image data", what.c_str());
    for (size_t r = 0; r < H; ++r) {
      uint8_t* out = out_row(r);
      for (size_t x = 0; x < W; ++x) std::memcpy(out + 3 * x, pal[idx[r * W + x]], 3);
    }
    return img;
  }

  const int rs = mask_shift(rm), gs = mask_shift(gm), bs = mask_shift(bm);
  const int g_bits = gm == 0x7E0 ? 6 : 5;
  for (size_t r = 0; r < H; ++r) {
    const uint8_t* in = data + offset + r * stride;
    uint8_t* out = out_row(r);
    for (size_t x = 0; x < W; ++x, out += 3) {
      if (bits <= 8) {
        const int per_byte = 8 / bits;
        const int shift = 8 - bits * (int(x % per_byte) + 1);  // most significant bits first
        const int index = (in[x / per_byte] >> shift) & ((1 << bits) - 1);
        std::memcpy(out, pal[index], 3);
      } else if (bits == 16) {
        const uint32_t p = u16(in + 2 * x);
        out[0] = uint8_t(((p & rm) >> rs) * 255 / 31);
        out[1] = uint8_t(((p & gm) >> gs) * 255 / ((1u << g_bits) - 1));
        out[2] = uint8_t(((p & bm) >> bs) * 255 / 31);
      } else {
        const uint8_t* q = in + x * (bits / 8);
        const uint32_t p = bits == 24 ? uint32_t(q[0] | q[1] << 8 | q[2] << 16) : u32(q);
        out[0] = uint8_t((p & rm) >> rs);
        out[1] = uint8_t((p & gm) >> gs);
        out[2] = uint8_t((p & bm) >> bs);
      }
    }
  }
  return img;
}

}  // namespace dsvl2::detail
