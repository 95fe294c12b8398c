// JPEG through libjpeg(-turbo) at its default settings (islow integer IDCT,
// fancy upsampling, no scaling), which is how PIL 9.4 decodes (JpegDecode.c
// sets neither unless draft() is called), so the pixels match PIL's bit for bit
// when both use the same libjpeg-turbo build. Conversion as PIL:
//  * 1 component -> "L", replicated; 3 components -> libjpeg's RGB output.
//  * 4 components -> PIL always reads "CMYK;I" (inverted, Adobe convention),
//    then convert("RGB") computes nk - nk*c/255 (Convert.c cmyk2rgb).
//  * Only 8-bit samples (PIL: "cannot handle N-bit layers").
// A truncated file is an error: libjpeg would warn and pad the rest gray, PIL
// raises "image file is truncated". Other corrupt-data warnings are tolerated,
// as PIL tolerates them.
// jpeglib.h needs size_t and FILE declared first.
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <vector>

#include <jpeglib.h>
#include <jerror.h>

#include "core/error.h"
#include "image/decode_internal.h"

namespace dsvl2::detail {
namespace {

// Progressive files with thousands of scans cost CPU without bound; real ones
// have a handful (libjpeg-turbo's TurboJPEG API caps scans the same way).
constexpr int kMaxScans = 500;

struct JpegError {
  jpeg_error_mgr mgr;  // first member: libjpeg casts cinfo->err to this
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 32];
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  // level -1 is a warning. Premature end of data means a truncated file.
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "file is truncated");
    std::longjmp(err->jump, 1);
  }
}

void jpeg_on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->progressive_mode && d->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(err->jump, 1);
  }
}

struct JpegHandle {
  jpeg_decompress_struct cinfo{};
  bool created = false;
  ~JpegHandle() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// No objects with destructors live in the setjmp frames below.
bool jpeg_header(JpegHandle& h, JpegError& err, const uint8_t* data, size_t size) {
  if (setjmp(err.jump)) return false;
  jpeg_read_header(&h.cinfo, TRUE);
  if (h.cinfo.data_precision != 8)
    std::snprintf(err.message, sizeof err.message, "cannot handle %d-bit samples", h.cinfo.data_precision);
  return h.cinfo.data_precision == 8;
}

bool jpeg_pixels(JpegHandle& h, JpegError& err, std::vector<uint8_t>& out) {
  if (setjmp(err.jump)) return false;
  j_decompress_ptr c = &h.cinfo;
  const int comps = c->num_components;
  if (comps == 1) {
    c->out_color_space = JCS_GRAYSCALE;
  } else if (comps == 3) {
    c->out_color_space = JCS_RGB;
  } else if (comps == 4) {
    c->out_color_space = JCS_CMYK;
  } else {
    std::snprintf(err.message, sizeof err.message, "cannot handle %d-component images", comps);
    return false;
  }
  jpeg_start_decompress(c);
  const size_t row = size_t(c->output_width) * c->output_components;
  out.resize(row * c->output_height);
  while (c->output_scanline < c->output_height) {
    JSAMPROW rows[1] = {out.data() + row * c->output_scanline};
    jpeg_read_scanlines(c, rows, 1);
  }
  jpeg_finish_decompress(c);
  return true;
}

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits) {
  JpegError err{};
  JpegHandle h;
  h.cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  jpeg_create_decompress(&h.cinfo);
  h.created = true;
  jpeg_progress_mgr progress{};
  progress.progress_monitor = jpeg_on_progress;
  h.cinfo.progress = &progress;
  jpeg_mem_src(&h.cinfo, data, static_cast<unsigned long>(size));

  if (!jpeg_header(h, err, data, size)) DSVL2_FAIL("%s: invalid JPEG: %s", what.c_str(), err.message);
  check_dimensions(h.cinfo.image_width, h.cinfo.image_height, limits, what, "JPEG");

  std::vector<uint8_t> pixels;
  if (!jpeg_pixels(h, err, pixels)) DSVL2_FAIL("%s: invalid JPEG: %s", what.c_str(), err.message);

  Image img;
  const int W = int(h.cinfo.output_width), H = int(h.cinfo.output_height);
  const int comps = h.cinfo.output_components;
  if (comps == 3) {
    img.width = W;
    img.height = H;
    img.rgb = std::move(pixels);
    return img;
  }
  allocate_rgb(img, W, H);
  const size_t n = size_t(W) * H;
  uint8_t* out = img.rgb.data();
  const uint8_t* in = pixels.data();
  if (comps == 1) {
    for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = in[i];
  } else {
    for (size_t i = 0; i < n; ++i, in += 4, out += 3) {
      // "CMYK;I" unpack inverts every channel; then cmyk2rgb with PIL's MULDIV255.
      const int nk = 255 - (255 - in[3]);
      for (int ch = 0; ch < 3; ++ch) {
        int t = (255 - in[ch]) * nk + 128;
        const int v = nk - (((t >> 8) + t) >> 8);
        out[ch] = uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
  return img;
}

}  // namespace dsvl2::detail
