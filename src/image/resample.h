// PIL-exact resizing of 8-bit RGB images (Pillow 9.4 libImaging/Resample.c,
// Image.resize with the default box and reducing_gap=None).
#pragma once
#include "image/image.h"

namespace dsvl2 {

// Image.resize((out_w, out_h), Image.BICUBIC): bit-identical to Pillow 9.4.
// Returns a copy when the size is unchanged. Throws Error on a zero size.
Image resize_bicubic(const Image& src, int out_w, int out_h);

}  // namespace dsvl2
