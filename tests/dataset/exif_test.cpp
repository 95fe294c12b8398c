// exif_meta on JPEGs carrying EXIF that the test builds with libexif, on
// images without it, and on hostile bytes; describe_meta's phrases.
#include <gtest/gtest.h>
#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>

#include <cstring>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "dataset/dataset_fixture.h"
#include "dataset/exif.h"

namespace dsvl2::dataset {
namespace {

using Rationals = std::vector<std::pair<uint32_t, uint32_t>>;

// An EXIF block built entry by entry (libexif's own write example does the same).
class ExifBuilder {
 public:
  explicit ExifBuilder(ExifByteOrder order) : d_(exif_data_new()) { exif_data_set_byte_order(d_, order); }
  ~ExifBuilder() { exif_data_unref(d_); }

  ExifBuilder& ascii(ExifIfd ifd, int tag, const std::string& s) {
    ExifEntry* e = put(ifd, tag, EXIF_FORMAT_ASCII, unsigned(s.size() + 1));
    std::memcpy(e->data, s.c_str(), s.size() + 1);
    return *this;
  }
  ExifBuilder& rationals(ExifIfd ifd, int tag, const Rationals& values) {
    ExifEntry* e = put(ifd, tag, EXIF_FORMAT_RATIONAL, unsigned(values.size()));
    for (size_t i = 0; i < values.size(); i++)
      exif_set_rational(e->data + 8 * i, exif_data_get_byte_order(d_), {values[i].first, values[i].second});
    return *this;
  }
  ExifBuilder& short_value(ExifIfd ifd, int tag, uint16_t v) {
    exif_set_short(put(ifd, tag, EXIF_FORMAT_SHORT, 1)->data, exif_data_get_byte_order(d_), v);
    return *this;
  }
  ExifBuilder& byte_value(ExifIfd ifd, int tag, uint8_t v) {
    put(ifd, tag, EXIF_FORMAT_BYTE, 1)->data[0] = v;
    return *this;
  }

  // "Exif\0\0" + the TIFF structure.
  std::string block() {
    unsigned char* buf = nullptr;
    unsigned int n = 0;
    exif_data_save_data(d_, &buf, &n);
    std::string out(reinterpret_cast<const char*>(buf), n);
    free(buf);
    return out;
  }

 private:
  ExifEntry* put(ExifIfd ifd, int tag, ExifFormat format, unsigned components) {
    ExifMem* mem = exif_mem_new_default();
    ExifEntry* e = exif_entry_new_mem(mem);
    e->size = exif_format_get_size(format) * components;
    e->data = static_cast<unsigned char*>(exif_mem_alloc(mem, e->size));
    e->tag = ExifTag(tag);
    e->format = format;
    e->components = components;
    exif_content_add_entry(d_->ifd[ifd], e);
    exif_mem_unref(mem);
    exif_entry_unref(e);
    return e;
  }

  ExifData* d_;
};

// The block as an APP1 segment right after the JPEG's SOI marker.
std::string with_app1(const std::string& jpeg, const std::string& block) {
  const size_t len = block.size() + 2;
  return jpeg.substr(0, 2) + "\xFF\xE1" + char(len >> 8) + char(len & 0xFF) + block + jpeg.substr(2);
}

std::string paris_jpeg() {
  ExifBuilder b(EXIF_BYTE_ORDER_MOTOROLA);
  b.ascii(EXIF_IFD_0, EXIF_TAG_MAKE, "Canon")
      .ascii(EXIF_IFD_0, EXIF_TAG_MODEL, "Canon EOS 5D")
      .ascii(EXIF_IFD_0, EXIF_TAG_DATE_TIME, "2020:01:01 00:00:00")
      .rationals(EXIF_IFD_EXIF, EXIF_TAG_EXPOSURE_TIME, {{1, 125}})
      .rationals(EXIF_IFD_EXIF, EXIF_TAG_FNUMBER, {{28, 10}})
      .short_value(EXIF_IFD_EXIF, EXIF_TAG_ISO_SPEED_RATINGS, 400)
      .rationals(EXIF_IFD_EXIF, EXIF_TAG_FOCAL_LENGTH, {{50, 1}})
      .ascii(EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, "2024:05:01 12:34:56")
      .ascii(EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE_REF, "N")
      .rationals(EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE, {{48, 1}, {51, 1}, {3024, 100}})
      .ascii(EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE_REF, "E")
      .rationals(EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE, {{2, 1}, {17, 1}, {402, 10}})
      .byte_value(EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE_REF, 0)
      .rationals(EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE, {{35, 1}});
  return with_app1(test::tiny_jpeg(), b.block());
}

TEST(Exif, ReadsTheCameraFields) {
  const nlohmann::json m = exif_meta(paris_jpeg());
  EXPECT_EQ(m["camera_make"], "Canon");
  EXPECT_EQ(m["camera_model"], "Canon EOS 5D");
  EXPECT_EQ(m["exposure_time"], "1/125");
  EXPECT_DOUBLE_EQ(m["exposure_s"].get<double>(), 0.008);
  EXPECT_DOUBLE_EQ(m["f_number"].get<double>(), 2.8);
  EXPECT_EQ(m["iso"], 400);
  EXPECT_DOUBLE_EQ(m["focal_length_mm"].get<double>(), 50);
  EXPECT_EQ(m["datetime"], "2024-05-01T12:34:56") << "DateTimeOriginal wins over DateTime";
  EXPECT_NEAR(m["gps"]["lat"].get<double>(), 48.8584, 1e-6);
  EXPECT_NEAR(m["gps"]["lon"].get<double>(), 2.2945, 1e-6);
  EXPECT_DOUBLE_EQ(m["gps"]["alt_m"].get<double>(), 35);
  EXPECT_EQ(m.size(), 9u) << m.dump();
  EXPECT_EQ(describe_meta(m), "Taken with a Canon EOS 5D (1/125 s, f/2.8, ISO 400, 50 mm) on 2024-05-01 at "
                              "48.8584\u00B0 N, 2.2945\u00B0 E.");
}

TEST(Exif, SouthWestBelowSeaLevelAndIntelOrder) {
  ExifBuilder b(EXIF_BYTE_ORDER_INTEL);
  b.ascii(EXIF_IFD_0, EXIF_TAG_MAKE, "  Caf\xE9 \x01" "Cam\t ")  // Latin-1, a control character, padding
      .ascii(EXIF_IFD_0, EXIF_TAG_MODEL, "   ")
      .ascii(EXIF_IFD_0, EXIF_TAG_DATE_TIME, "2019:12:31 23:59:59")
      .ascii(EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, "0000:00:00 00:00:00")  // unset: skipped
      .rationals(EXIF_IFD_EXIF, EXIF_TAG_EXPOSURE_TIME, {{3, 10}})
      .rationals(EXIF_IFD_EXIF, EXIF_TAG_FNUMBER, {{28, 0}})  // zero denominator: left out
      .ascii(EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE_REF, "S")
      .rationals(EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE, {{33, 1}, {5134, 100}, {0, 1}})
      .ascii(EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE_REF, "W")
      .rationals(EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE, {{70, 1}, {6, 1}, {0, 1}})
      .byte_value(EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE_REF, 1)
      .rationals(EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE, {{125, 10}});
  const nlohmann::json m = exif_meta(with_app1(test::tiny_jpeg(), b.block()));
  EXPECT_EQ(m["camera_make"], "Caf\xC3\xA9 Cam");
  EXPECT_FALSE(m.contains("camera_model"));
  EXPECT_FALSE(m.contains("f_number"));
  EXPECT_EQ(m["exposure_time"], "0.3");
  EXPECT_EQ(m["datetime"], "2019-12-31T23:59:59");
  EXPECT_NEAR(m["gps"]["lat"].get<double>(), -(33 + 51.34 / 60), 1e-6);
  EXPECT_NEAR(m["gps"]["lon"].get<double>(), -70.1, 1e-6);
  EXPECT_DOUBLE_EQ(m["gps"]["alt_m"].get<double>(), -12.5);
  EXPECT_EQ(describe_meta(m), "Taken with a Caf\xC3\xA9 Cam (0.3 s) on 2019-12-31 at 33.8557\u00B0 S, 70.1\u00B0 W.");
  // The raw block alone (what a WebP or HEIF container would carry) reads the same.
  EXPECT_EQ(exif_meta(b.block()), m);
}

TEST(Exif, NoExifGivesAnEmptyObject) {
  EXPECT_EQ(exif_meta(test::tiny_jpeg()), nlohmann::json::object());
  dsvl2::test::PngSpec png;
  png.pixels = {1, 2, 3};
  EXPECT_EQ(exif_meta(dsvl2::test::encode_png(png)), nlohmann::json::object());
  EXPECT_EQ(exif_meta(""), nlohmann::json::object());
  EXPECT_EQ(exif_meta("Exif"), nlohmann::json::object());
  ExifBuilder empty(EXIF_BYTE_ORDER_INTEL);
  EXPECT_EQ(exif_meta(with_app1(test::tiny_jpeg(), empty.block())), nlohmann::json::object());
}

TEST(Exif, LongStringsAreCut) {
  ExifBuilder b(EXIF_BYTE_ORDER_INTEL);
  b.ascii(EXIF_IFD_0, EXIF_TAG_MODEL, std::string(300, 'M'));
  const nlohmann::json m = exif_meta(b.block());
  EXPECT_EQ(m["camera_model"], std::string(128, 'M'));
}

// Truncated and mutated blocks, and garbage: never a crash, always an object
// that serializes (valid UTF-8).
TEST(Exif, HostileBytesNeverCrash) {
  const std::string full = paris_jpeg();
  for (size_t cut = 0; cut < 600 && cut < full.size(); cut++) {
    const nlohmann::json m = exif_meta(full.substr(0, cut));
    ASSERT_TRUE(m.is_object()) << cut;
    ASSERT_NO_THROW(m.dump()) << cut;
  }
  for (uint64_t seed = 0; seed < 3000; seed++) {
    Rng rng(seed, 1);
    std::string bytes = full.substr(0, 400);
    for (int k = 0; k < 1 + int(seed % 8); k++) bytes[6 + rng.next() % 394] = char(rng.next());
    const nlohmann::json m = exif_meta(bytes);
    ASSERT_TRUE(m.is_object()) << seed;
    ASSERT_NO_THROW(m.dump()) << seed;
  }
  // An APP1 segment whose length runs past the end of the data.
  std::string lying = full.substr(0, 200);
  lying[4] = '\xFF', lying[5] = '\xFF';
  EXPECT_TRUE(exif_meta(lying).is_object());
  std::string junk(5000, '\0');
  Rng rng(7, 7);
  for (char& c : junk) c = char(rng.next());
  EXPECT_TRUE(exif_meta(junk).is_object());
  EXPECT_TRUE(exif_meta("\xFF\xD8\xFF\xE1\x00\x08" "Exif\0\0").is_object());
}

TEST(DescribeMeta, Phrases) {
  using nlohmann::json;
  EXPECT_EQ(describe_meta(json::object()), "");
  EXPECT_EQ(describe_meta(json()), "");
  EXPECT_EQ(describe_meta(json::array()), "");
  EXPECT_EQ(describe_meta({{"camera_make", "Apple"}, {"camera_model", "iPhone 12"}}), "Taken with an Apple iPhone 12.");
  EXPECT_EQ(describe_meta({{"camera_make", "NIKON CORPORATION"}, {"camera_model", "NIKON D750"}}),
            "Taken with a NIKON D750.");
  EXPECT_EQ(describe_meta({{"camera_model", "Pixel 7"}, {"focal_length_mm", 6.81}}), "Taken with a Pixel 7 (6.8 mm).");
  EXPECT_EQ(describe_meta({{"f_number", 8}, {"iso", 100}}), "Taken with camera settings f/8, ISO 100.");
  EXPECT_EQ(describe_meta({{"datetime", "2024-05-01T12:34:56"}}), "Taken on 2024-05-01.");
  EXPECT_EQ(describe_meta({{"gps", {{"lat", -33.8568}, {"lon", -70.1}}}}), "Taken at 33.8568\u00B0 S, 70.1\u00B0 W.");
  EXPECT_EQ(describe_meta({{"gps", {{"lat", 10}}}}), "") << "a place needs both coordinates";
  EXPECT_EQ(describe_meta({{"camera_make", 5}, {"iso", "400"}, {"gps", "here"}}), "") << "wrong types are ignored";
}

}  // namespace
}  // namespace dsvl2::dataset
