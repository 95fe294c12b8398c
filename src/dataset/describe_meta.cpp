// describe_meta: EXIF fields (exif_meta) as one sentence for a prompt.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "dataset/exif.h"

namespace dsvl2::dataset {

namespace {

std::string text_field(const nlohmann::json& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool number_field(const nlohmann::json& m, const char* key, double& out) {
  auto it = m.find(key);
  if (it == m.end() || !it->is_number()) return false;
  out = it->get<double>();
  return std::isfinite(out);
}

// At most `decimals` decimals, trailing zeros dropped: 2.8, 8, 4.25.
std::string number(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

// "Canon EOS 5D" for make "Canon" and model "Canon EOS 5D"; "NIKON D750" for
// "NIKON CORPORATION" and "NIKON D750": a model that already names the maker
// is said alone.
std::string camera_name(const std::string& make, const std::string& model) {
  if (model.empty()) return make;
  if (make.empty()) return model;
  auto lower = [](std::string s) {
    for (char& c : s) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    return s;
  };
  const std::string first_word = lower(make.substr(0, make.find(' ')));
  if (lower(model).compare(0, first_word.size(), first_word) == 0) return model;
  return make + " " + model;
}

}  // namespace

std::string describe_meta(const nlohmann::json& meta) {
  if (!meta.is_object()) return "";
  const std::string camera = camera_name(text_field(meta, "camera_make"), text_field(meta, "camera_model"));

  std::vector<std::string> settings;
  double v = 0;
  if (std::string t = text_field(meta, "exposure_time"); !t.empty()) {
    settings.push_back(t + " s");
  } else if (number_field(meta, "exposure_s", v) && v > 0) {
    settings.push_back(number(v, 4) + " s");
  }
  if (number_field(meta, "f_number", v) && v > 0) settings.push_back("f/" + number(v, 1));
  if (number_field(meta, "iso", v) && v > 0) settings.push_back("ISO " + number(v, 0));
  if (number_field(meta, "focal_length_mm", v) && v > 0) settings.push_back(number(v, 1) + " mm");
  std::string settings_text;
  for (const std::string& s : settings) settings_text += (settings_text.empty() ? "" : ", ") + s;

  std::string sentence;
  if (!camera.empty()) {
    const char c = camera[0];
    const bool vowel = c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U' || c == 'a' || c == 'e' ||
                       c == 'i' || c == 'o' || c == 'u';
    sentence += std::string(vowel ? " with an " : " with a ") + camera;
    if (!settings_text.empty()) sentence += " (" + settings_text + ")";
  } else if (!settings_text.empty()) {
    sentence += " with camera settings " + settings_text;
  }
  if (std::string when = text_field(meta, "datetime"); when.size() >= 10) sentence += " on " + when.substr(0, 10);
  if (auto gps = meta.find("gps"); gps != meta.end() && gps->is_object()) {
    double lat = 0, lon = 0;
    if (number_field(*gps, "lat", lat) && number_field(*gps, "lon", lon) && std::fabs(lat) <= 90 &&
        std::fabs(lon) <= 180) {
      sentence += " at " + number(std::fabs(lat), 4) + "\u00B0 " + (lat < 0 ? "S" : "N") + ", " +
                  number(std::fabs(lon), 4) + "\u00B0 " + (lon < 0 ? "W" : "E");
    }
  }
  return sentence.empty() ? "" : "Taken" + sentence + ".";
}

}  // namespace dsvl2::dataset
