// Cairo glue for drawing on dsvl2::Image (RGB8): an RGB24 surface holding a
// copy of the image, PNG output, and the label font.
//
//   Canvas c(img);            // copies pixels in
//   cairo_t* cr = c.cr();     // draw with Cairo
//   Image out = c.to_image(); // copies pixels out
#pragma once
#include <string>

#include "image/image.h"

typedef struct _cairo cairo_t;
typedef struct _cairo_surface cairo_surface_t;
typedef struct _cairo_font_face cairo_font_face_t;

namespace dsvl2::ground {

// Cairo's image surfaces are limited to 32767 pixels per side.
inline constexpr int kMaxCanvasSide = 32767;

class Canvas {
 public:
  explicit Canvas(const Image& img);
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  cairo_t* cr() { return cr_; }
  cairo_surface_t* surface() { return surface_; }
  Image to_image();

 private:
  int width_, height_;
  cairo_surface_t* surface_ = nullptr;
  cairo_t* cr_ = nullptr;
};

// Writes an RGB image as an 8-bit RGB PNG (Cairo's writer). Throws Error on failure.
void save_png(const Image& img, const std::string& path);

// Path of DejaVu Sans (fonts-dejavu-core): asks fontconfig first, then tries
// the standard install paths. Empty when not found.
std::string find_label_font();
// The label font face, loaded once per process; falls back to Cairo's
// "sans-serif" toy face when DejaVu Sans is missing. Never null.
cairo_font_face_t* label_font_face();

}  // namespace dsvl2::ground
