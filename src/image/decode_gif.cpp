// GIF, first frame, through giflib's low-level reader, converted as PIL 9.4
// does (GifImagePlugin: frame 0, then convert("RGB")):
//  * The canvas is the logical screen, enlarged when the first frame reaches
//    past it. Pixels outside the frame hold the frame's transparent index when
//    its Graphic Control Extension has one, else index 0.
//  * Indices map through the frame's local palette, else the global one, and
//    indices past the palette's entries (or with no palette at all) map to
//    gray (i, i, i): PIL's palette starts as a gray ramp, and a palette-less GIF
//    opens as "L". Transparency is dropped.
#include <gif_lib.h>

#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "image/decode_internal.h"

namespace dsvl2::detail {
namespace {

struct GifSource {
  const uint8_t* data;
  size_t size, pos;
};

int gif_read(GifFileType* gif, GifByteType* out, int n) {
  auto* src = static_cast<GifSource*>(gif->UserData);
  if (n < 0) return 0;
  const size_t avail = src->size - src->pos;
  const size_t take = size_t(n) < avail ? size_t(n) : avail;
  std::memcpy(out, src->data + src->pos, take);
  src->pos += take;
  return int(take);
}

struct GifCloser {
  void operator()(GifFileType* g) const {
    int err = 0;
    DGifCloseFile(g, &err);
  }
};

[[noreturn]] void gif_fail(const std::string& what, int code) {
  const char* msg = GifErrorString(code);
  DSVL2_FAIL("%s: invalid GIF: %s", what.c_str(), msg ? msg : "unknown error");
}

}  // namespace

Image decode_gif(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits) {
  GifSource src{data, size, 0};
  int err = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&src, gif_read, &err));
  if (!gif) gif_fail(what, err);

  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) gif_fail(what, gif->Error);
    if (type == TERMINATE_RECORD_TYPE) DSVL2_FAIL("%s: GIF file has no image", what.c_str());
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) gif_fail(what, gif->Error);
      // ext[0] is the block length; a GCE's flags are ext[1], its index ext[4].
      if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr && ext[0] >= 4 && (ext[1] & 1)) transparent = ext[4];
      while (ext != nullptr)
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) gif_fail(what, gif->Error);
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) gif_fail(what, gif->Error);
    break;
  }

  const GifImageDesc& desc = gif->Image;
  const int64_t x0 = desc.Left, y0 = desc.Top, fw = desc.Width, fh = desc.Height;
  const int64_t W = std::max<int64_t>(gif->SWidth, x0 + fw), H = std::max<int64_t>(gif->SHeight, y0 + fh);
  check_dimensions(W, H, limits, what, "GIF");

  const ColorMapObject* cmap = desc.ColorMap ? desc.ColorMap : gif->SColorMap;
  uint8_t pal[256][3];
  for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = uint8_t(i);
  if (cmap)
    for (int i = 0; i < cmap->ColorCount && i < 256; ++i) {
      pal[i][0] = cmap->Colors[i].Red;
      pal[i][1] = cmap->Colors[i].Green;
      pal[i][2] = cmap->Colors[i].Blue;
    }

  Image img;
  allocate_rgb(img, int(W), int(H));
  const uint8_t* fill = pal[transparent >= 0 ? transparent : 0];
  for (size_t i = 0; i < size_t(W) * H; ++i) std::memcpy(&img.rgb[3 * i], fill, 3);

  // Rows arrive in stream order; interlaced frames use the four GIF passes.
  std::vector<int> order;
  order.reserve(size_t(fh));
  if (desc.Interlace) {
    const int starts[4] = {0, 4, 2, 1}, steps[4] = {8, 8, 4, 2};
    for (int p = 0; p < 4; ++p)
      for (int64_t y = starts[p]; y < fh; y += steps[p]) order.push_back(int(y));
  } else {
    for (int64_t y = 0; y < fh; ++y) order.push_back(int(y));
  }
  std::vector<GifPixelType> line(size_t(std::max<int64_t>(fw, 1)));
  for (int y : order) {
    if (fw == 0) break;
    if (DGifGetLine(gif.get(), line.data(), int(fw)) == GIF_ERROR) gif_fail(what, gif->Error);
    uint8_t* out = &img.rgb[(size_t(y0 + y) * W + x0) * 3];
    for (int64_t x = 0; x < fw; ++x) std::memcpy(out + 3 * x, pal[line[x]], 3);
  }
  return img;
}

}  // namespace dsvl2::detail
