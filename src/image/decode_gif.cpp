#include "core/error.h"
#include "image/decode_internal.h"

namespace dsvl2::detail {

Image decode_gif(const uint8_t*, size_t, const std::string& what, const DecodeLimits&) {
  DSVL2_FAIL("%s: GIF decoding is not implemented yet", what.c_str());
}

}  // namespace dsvl2::detail
