// WebP through libwebp's animation decoder, as PIL 9.4 does when built with
// WebP animation support (WebPImagePlugin + _webp.c WebPAnimDecoder): the
// first frame is decoded as non-premultiplied RGBA straight into a zeroed
// canvas (no blending for a key frame), and alpha is then dropped. Canvas
// areas outside a smaller first frame stay (0, 0, 0).
#include <webp/decode.h>
#include <webp/demux.h>

#include <memory>

#include "core/error.h"
#include "image/decode_internal.h"

namespace dsvl2::detail {

Image decode_webp(const uint8_t* data, size_t size, const std::string& what, const DecodeLimits& limits) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
    DSVL2_FAIL("%s: invalid WebP header", what.c_str());
  // For the extended format these are the canvas dimensions (VP8X chunk).
  check_dimensions(features.width, features.height, limits, what, "WebP");

  WebPAnimDecoderOptions opts;
  if (!WebPAnimDecoderOptionsInit(&opts)) DSVL2_FAIL("%s: cannot initialise the WebP decoder", what.c_str());
  opts.color_mode = MODE_RGBA;
  opts.use_threads = 0;
  WebPData webp{data, size};
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> dec(WebPAnimDecoderNew(&webp, &opts),
                                                                    WebPAnimDecoderDelete);
  if (!dec) DSVL2_FAIL("%s: invalid WebP file", what.c_str());
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(dec.get(), &info)) DSVL2_FAIL("%s: invalid WebP file", what.c_str());
  check_dimensions(info.canvas_width, info.canvas_height, limits, what, "WebP");
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(dec.get(), &rgba, &timestamp) || rgba == nullptr)
    DSVL2_FAIL("%s: invalid or truncated WebP image data", what.c_str());

  Image img;
  allocate_rgb(img, int(info.canvas_width), int(info.canvas_height));
  const size_t n = size_t(img.width) * img.height;
  for (size_t i = 0; i < n; ++i) {
    img.rgb[3 * i + 0] = rgba[4 * i + 0];
    img.rgb[3 * i + 1] = rgba[4 * i + 1];
    img.rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return img;
}

}  // namespace dsvl2::detail
