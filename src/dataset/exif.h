// Camera metadata for recaptioning prompts: what the EXIF block of an image
// says (libexif reads it), and a short English phrase built from it.
//
//   nlohmann::json meta = exif_meta(jpeg_bytes);
//   // {"camera_make":"Canon","camera_model":"Canon EOS 5D","exposure_time":"1/125","exposure_s":0.008,
//   //  "f_number":2.8,"iso":400,"focal_length_mm":50.0,"datetime":"2024-05-01T12:34:56",
//   //  "gps":{"lat":48.8584,"lon":2.2945,"alt_m":35.0}}
//   describe_meta(meta);
//   // "Taken with a Canon EOS 5D (1/125 s, f/2.8, ISO 400, 50 mm) on 2024-05-01 at 48.8584° N, 2.2945° E."
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace dsvl2::dataset {

// The fields above that the image's EXIF holds (and that make sense: zero
// denominators, impossible dates and out-of-range coordinates are left out);
// {} when there are none or the bytes carry no EXIF libexif can find (JPEG
// APP1, or a raw "Exif\0\0" block). Latitude is negative south, longitude
// negative west, altitude negative below sea level. The datetime is
// DateTimeOriginal, else DateTimeDigitized, else DateTime, without a zone (EXIF
// has none). Strings are trimmed, valid UTF-8 (bytes that are not are read as
// Latin-1), with control characters and runs of spaces made one space, at
// most 128 bytes. Never throws.
nlohmann::json exif_meta(std::string_view image_bytes);

// A short phrase for a prompt, "" for {} (or for anything that is not an
// object, or has none of the fields). Fields of the wrong type are ignored.
std::string describe_meta(const nlohmann::json& meta);

}  // namespace dsvl2::dataset
