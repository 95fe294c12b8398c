// exif_meta: libexif parses the block; every value is then read from the raw
// entry (format, component count and size checked) rather than through
// exif_entry_get_value, whose text is localized and formatted for display.
#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "core/utf8.h"
#include "dataset/exif.h"
#include "dataset/text_util.h"

namespace dsvl2::dataset {

namespace {

struct ExifFree {
  void operator()(ExifData* d) const { exif_data_unref(d); }
};

class Reader {
 public:
  explicit Reader(ExifData* d) : d_(d), order_(exif_data_get_byte_order(d)) {}

  // Camera tags live in IFD 0 or the EXIF IFD; GPS tags only in the GPS IFD,
  // whose tag numbers overlap others.
  const ExifEntry* find(ExifTag tag, bool gps = false) const {
    if (gps) return valid(exif_content_get_entry(d_->ifd[EXIF_IFD_GPS], tag));
    for (ExifIfd ifd : {EXIF_IFD_0, EXIF_IFD_EXIF})
      if (const ExifEntry* e = valid(exif_content_get_entry(d_->ifd[ifd], tag))) return e;
    return nullptr;
  }

  // Component i of a RATIONAL or SRATIONAL entry; nullopt for a zero denominator.
  std::optional<double> rational(const ExifEntry* e, unsigned i = 0) const {
    if (!e || i >= e->components) return std::nullopt;
    if (e->format == EXIF_FORMAT_RATIONAL) {
      const ExifRational r = exif_get_rational(e->data + 8 * i, order_);
      if (r.denominator == 0) return std::nullopt;
      return double(r.numerator) / double(r.denominator);
    }
    if (e->format == EXIF_FORMAT_SRATIONAL) {
      const ExifSRational r = exif_get_srational(e->data + 8 * i, order_);
      if (r.denominator == 0) return std::nullopt;
      return double(r.numerator) / double(r.denominator);
    }
    return std::nullopt;
  }

  // The first component of an integer entry.
  std::optional<int64_t> integer(const ExifEntry* e) const {
    if (!e || e->components == 0) return std::nullopt;
    switch (e->format) {
      case EXIF_FORMAT_BYTE: return int64_t(e->data[0]);
      case EXIF_FORMAT_SHORT: return int64_t(exif_get_short(e->data, order_));
      case EXIF_FORMAT_LONG: return int64_t(exif_get_long(e->data, order_));
      case EXIF_FORMAT_SLONG: return int64_t(exif_get_slong(e->data, order_));
      default: return std::nullopt;
    }
  }

  // An ASCII entry up to its first NUL, untrimmed and unchecked.
  std::optional<std::string> ascii(const ExifEntry* e) const {
    if (!e || (e->format != EXIF_FORMAT_ASCII && e->format != EXIF_FORMAT_UNDEFINED)) return std::nullopt;
    const auto* p = reinterpret_cast<const char*>(e->data);
    return std::string(p, strnlen(p, e->size));
  }

 private:
  // An entry whose data holds all its components, or nullptr.
  static const ExifEntry* valid(const ExifEntry* e) {
    if (!e || !e->data) return nullptr;
    const unsigned fsize = exif_format_get_size(e->format);
    if (fsize == 0 || e->components > e->size / fsize) return nullptr;
    return e;
  }

  ExifData* d_;
  ExifByteOrder order_;
};

// Trimmed, valid UTF-8, control characters and runs of spaces as one space,
// at most 128 bytes. A string
// that is not UTF-8 is read as Latin-1, the usual other choice of cameras.
std::string clean_text(const std::string& raw) {
  const bool utf8 = utf8::is_valid(raw);
  std::string out;
  for (size_t i = 0; i < raw.size();) {
    char ch[4];
    size_t n = 1;
    const auto c = uint8_t(raw[i]);
    if (utf8) {
      n = utf8::sequence_length(raw, i);
      raw.copy(ch, n, i);
    } else if (c < 0x80) {
      ch[0] = char(c);
    } else {
      ch[0] = char(0xC0 | (c >> 6)), ch[1] = char(0x80 | (c & 0x3F)), n = 2;
    }
    i += utf8 ? n : 1;
    // C0 and C1 controls (U+0080..U+009F) become spaces.
    if (c < 0x20 || c == 0x7F || (n == 2 && uint8_t(ch[0]) == 0xC2 && uint8_t(ch[1]) < 0xA0)) ch[0] = ' ', n = 1;
    if (ch[0] == ' ' && n == 1 && !out.empty() && out.back() == ' ') continue;  // one space between words
    if (out.size() + n > 128) break;
    out.append(ch, n);
  }
  const size_t b = out.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  return out.substr(b, out.find_last_not_of(' ') - b + 1);
}

double round_to(double v, double scale) { return std::round(v * scale) / scale; }

// "1/125" below a second when that is what the value is, else "0.3", "2", "2.5".
std::string exposure_text(double s) {
  char buf[32];
  if (s < 1) {
    const double n = 1 / s;
    if (s < 0.3 || std::fabs(n - std::round(n)) <= 0.01 * n) {
      std::snprintf(buf, sizeof buf, "1/%.0f", std::round(n));
      return buf;
    }
  }
  std::snprintf(buf, sizeof buf, "%.1f", s);
  std::string t = buf;
  if (t.size() > 2 && t.compare(t.size() - 2, 2, ".0") == 0) t.resize(t.size() - 2);
  return t;
}

// "YYYY:MM:DD HH:MM:SS" (EXIF) -> "YYYY-MM-DDTHH:MM:SS"; nullopt when it is
// not a date ("0000:00:00 00:00:00" is what cameras write when unset).
std::optional<std::string> iso_datetime(const std::string& raw) {
  if (raw.size() < 19) return std::nullopt;
  int v[6];
  const int at[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
  for (int k = 0; k < 6; k++) {
    v[k] = 0;
    for (int i = 0; i < len[k]; i++) {
      const char c = raw[size_t(at[k] + i)];
      if (c < '0' || c > '9') return std::nullopt;
      v[k] = v[k] * 10 + (c - '0');
    }
  }
  const bool seps = (raw[4] == ':' || raw[4] == '-') && raw[7] == raw[4] && (raw[10] == ' ' || raw[10] == 'T') &&
                    raw[13] == ':' && raw[16] == ':';
  if (!seps || v[0] < 1800 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
    return std::nullopt;
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", v[0], v[1], v[2], v[3], v[4], v[5]);
  return std::string(buf);
}

// Degrees from GPS's (degrees, minutes, seconds); fewer components are allowed.
std::optional<double> gps_degrees(const Reader& r, const ExifEntry* e) {
  if (!e) return std::nullopt;
  double deg = 0;
  for (unsigned i = 0; i < e->components && i < 3; i++) {
    const std::optional<double> part = r.rational(e, i);
    if (!part || *part < 0) return std::nullopt;
    deg += *part / (i == 0 ? 1 : i == 1 ? 60 : 3600);
  }
  return e->components ? std::optional<double>(deg) : std::nullopt;
}

nlohmann::json read_meta(ExifData* d) {
  const Reader r(d);
  nlohmann::json meta = nlohmann::json::object();
  for (auto [tag, field] : {std::pair{EXIF_TAG_MAKE, "camera_make"}, std::pair{EXIF_TAG_MODEL, "camera_model"}}) {
    if (auto s = r.ascii(r.find(tag))) {
      if (std::string t = clean_text(*s); !t.empty()) meta[field] = t;
    }
  }
  if (auto s = r.rational(r.find(EXIF_TAG_EXPOSURE_TIME)); s && *s > 0 && *s < 1e5) {
    meta["exposure_time"] = exposure_text(*s);
    meta["exposure_s"] = *s;
  }
  // Checked after rounding: f/0.003 would otherwise come out as "f_number": 0.
  if (auto f = r.rational(r.find(EXIF_TAG_FNUMBER)); f && round_to(*f, 100) > 0 && *f < 1e3)
    meta["f_number"] = round_to(*f, 100);
  if (auto iso = r.integer(r.find(EXIF_TAG_ISO_SPEED_RATINGS)); iso && *iso > 0) meta["iso"] = *iso;
  if (auto mm = r.rational(r.find(EXIF_TAG_FOCAL_LENGTH)); mm && round_to(*mm, 100) > 0 && *mm < 1e5)
    meta["focal_length_mm"] = round_to(*mm, 100);
  for (ExifTag tag : {EXIF_TAG_DATE_TIME_ORIGINAL, EXIF_TAG_DATE_TIME_DIGITIZED, EXIF_TAG_DATE_TIME}) {
    std::optional<std::string> s = r.ascii(r.find(tag));
    if (auto iso = s ? iso_datetime(*s) : std::nullopt) {
      meta["datetime"] = *iso;
      break;
    }
  }

  nlohmann::json gps = nlohmann::json::object();
  auto ref_is = [&](ExifTag tag, char negative) {
    std::optional<std::string> s = r.ascii(r.find(tag, true));
    return s && !s->empty() && ((*s)[0] == negative || (*s)[0] == negative + ('a' - 'A'));
  };
  if (auto lat = gps_degrees(r, r.find(ExifTag(EXIF_TAG_GPS_LATITUDE), true)); lat && *lat <= 90)
    gps["lat"] = round_to(ref_is(ExifTag(EXIF_TAG_GPS_LATITUDE_REF), 'S') ? -*lat : *lat, 1e7);
  if (auto lon = gps_degrees(r, r.find(ExifTag(EXIF_TAG_GPS_LONGITUDE), true)); lon && *lon <= 180)
    gps["lon"] = round_to(ref_is(ExifTag(EXIF_TAG_GPS_LONGITUDE_REF), 'W') ? -*lon : *lon, 1e7);
  if (auto alt = r.rational(r.find(ExifTag(EXIF_TAG_GPS_ALTITUDE), true)); alt && std::fabs(*alt) < 1e6) {
    const std::optional<int64_t> below = r.integer(r.find(ExifTag(EXIF_TAG_GPS_ALTITUDE_REF), true));
    gps["alt_m"] = round_to(below && *below == 1 ? -*alt : *alt, 100);
  }
  if (!gps.empty()) meta["gps"] = std::move(gps);
  return meta;
}

}  // namespace

nlohmann::json exif_meta(std::string_view image_bytes) {
  try {
    std::unique_ptr<ExifData, ExifFree> d(exif_data_new());
    if (!d) return nlohmann::json::object();
    // Without this option libexif "fixes" the data on load, adding the tags
    // the standard requires with made-up values (DateTime = now, among them).
    exif_data_unset_option(d.get(), EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    // libexif stops at the first JPEG segment that is not an APPn or COM, so
    // it never reads past the headers; the size only has to fit its type.
    const auto n = unsigned(std::min<size_t>(image_bytes.size(), UINT_MAX));
    exif_data_load_data(d.get(), reinterpret_cast<const unsigned char*>(image_bytes.data()), n);
    return read_meta(d.get());
  } catch (...) {  // only allocation can throw here; metadata is never worth failing a record
    return nlohmann::json::object();
  }
}

}  // namespace dsvl2::dataset
