#include "ground/canvas.h"

#include <cairo-ft.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "core/error.h"

namespace dsvl2::ground {

Canvas::Canvas(const Image& img) : width_(img.width), height_(img.height) {
  DSVL2_REQUIRE(img.width > 0 && img.height > 0, "cannot draw on an empty %dx%d image", img.width, img.height);
  DSVL2_REQUIRE(img.width <= kMaxCanvasSide && img.height <= kMaxCanvasSide,
                "image %dx%d too large to draw on (limit %d per side)", img.width, img.height, kMaxCanvasSide);
  DSVL2_REQUIRE(img.rgb.size() == size_t(img.width) * img.height * 3, "image buffer size does not match %dx%d",
                img.width, img.height);
  surface_ = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width_, height_);
  if (cairo_surface_status(surface_) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(surface_);
    DSVL2_FAIL("cannot allocate a %dx%d drawing surface", width_, height_);
  }
  cairo_surface_flush(surface_);
  uint8_t* data = cairo_image_surface_get_data(surface_);
  int stride = cairo_image_surface_get_stride(surface_);
  for (int y = 0; y < height_; ++y) {
    auto* row = reinterpret_cast<uint32_t*>(data + size_t(y) * stride);
    const uint8_t* src = img.rgb.data() + size_t(y) * width_ * 3;
    for (int x = 0; x < width_; ++x)
      row[x] = (uint32_t(src[3 * x]) << 16) | (uint32_t(src[3 * x + 1]) << 8) | src[3 * x + 2];
  }
  cairo_surface_mark_dirty(surface_);
  cr_ = cairo_create(surface_);
}

Canvas::~Canvas() {
  cairo_destroy(cr_);
  cairo_surface_destroy(surface_);
}

Image Canvas::to_image() {
  cairo_surface_flush(surface_);
  Image out;
  out.width = width_;
  out.height = height_;
  out.rgb.resize(size_t(width_) * height_ * 3);
  const uint8_t* data = cairo_image_surface_get_data(surface_);
  int stride = cairo_image_surface_get_stride(surface_);
  for (int y = 0; y < height_; ++y) {
    auto* row = reinterpret_cast<const uint32_t*>(data + size_t(y) * stride);
    uint8_t* dst = out.rgb.data() + size_t(y) * width_ * 3;
    for (int x = 0; x < width_; ++x) {
      dst[3 * x] = uint8_t(row[x] >> 16);
      dst[3 * x + 1] = uint8_t(row[x] >> 8);
      dst[3 * x + 2] = uint8_t(row[x]);
    }
  }
  return out;
}

void save_png(const Image& img, const std::string& path) {
  Canvas c(img);
  cairo_status_t st = cairo_surface_write_to_png(c.surface(), path.c_str());
  DSVL2_REQUIRE(st == CAIRO_STATUS_SUCCESS, "%s: cannot write PNG (%s)", path.c_str(), cairo_status_to_string(st));
}

std::string find_label_font() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (FcConfig* cfg = FcInitLoadConfigAndFonts()) {
    std::string found;
    FcPattern* pat = FcNameParse(reinterpret_cast<const FcChar8*>("DejaVu Sans:style=Book"));
    if (pat) {
      FcConfigSubstitute(cfg, pat, FcMatchPattern);
      FcDefaultSubstitute(pat);
      FcResult res;
      if (FcPattern* match = FcFontMatch(cfg, pat, &res)) {
        FcChar8* file = nullptr;
        // fontconfig substitutes any font for a missing family; accept only DejaVu Sans itself.
        if (FcPatternGetString(match, FC_FILE, 0, &file) == FcResultMatch &&
            fs::path(reinterpret_cast<const char*>(file)).filename() == "DejaVuSans.ttf")
          found = reinterpret_cast<const char*>(file);
        FcPatternDestroy(match);
      }
      FcPatternDestroy(pat);
    }
    FcConfigDestroy(cfg);
    if (!found.empty() && fs::exists(found, ec)) return found;
  }
  static constexpr std::array<const char*, 5> kPaths = {
      "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  // Debian, Ubuntu
      "/usr/share/fonts/dejavu/DejaVuSans.ttf",           // Fedora
      "/usr/share/fonts/TTF/DejaVuSans.ttf",              // Arch
      "/usr/local/share/fonts/DejaVuSans.ttf",
      "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
  };
  for (const char* p : kPaths)
    if (fs::exists(p, ec)) return p;
  return {};
}

cairo_font_face_t* label_font_face() {
  static cairo_font_face_t* face = [] {
    std::string path = find_label_font();
    if (!path.empty()) {
      FcPattern* pat = FcPatternCreate();
      FcPatternAddString(pat, FC_FILE, reinterpret_cast<const FcChar8*>(path.c_str()));
      FcPatternAddInteger(pat, FC_INDEX, 0);
      cairo_font_face_t* f = cairo_ft_font_face_create_for_pattern(pat);
      FcPatternDestroy(pat);  // Cairo keeps its own reference
      if (cairo_font_face_status(f) == CAIRO_STATUS_SUCCESS) return f;
      cairo_font_face_destroy(f);
    }
    return cairo_toy_font_face_create("sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }();
  return face;
}

}  // namespace dsvl2::ground
