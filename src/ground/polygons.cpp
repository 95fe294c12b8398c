#include "ground/polygons.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace dsvl2::ground {
namespace {

Polygon parse_part(const nlohmann::json& part, const std::string& what, size_t index, const PolygonLimits& lim,
                   size_t& total) {
  DSVL2_REQUIRE(part.is_array(), "%s: mask part %zu is not a list of numbers", what.c_str(), index);
  DSVL2_REQUIRE(part.size() % 2 == 0, "%s: mask part %zu has an odd number of values (%zu)", what.c_str(), index,
                part.size());
  total += part.size();
  DSVL2_REQUIRE(total <= lim.max_values, "%s: mask has more than %zu values", what.c_str(), lim.max_values);
  Polygon p;
  p.reserve(part.size() / 2);
  for (size_t i = 0; i < part.size(); i += 2) {
    double v[2];
    for (int k = 0; k < 2; ++k) {
      const auto& e = part[i + k];
      DSVL2_REQUIRE(e.is_number(), "%s: mask part %zu value %zu is not a number", what.c_str(), index, i + k);
      v[k] = e.get<double>();
      DSVL2_REQUIRE(std::isfinite(v[k]) && std::fabs(v[k]) <= lim.max_abs,
                    "%s: mask part %zu value %zu out of range (|v| <= %g)", what.c_str(), index, i + k, lim.max_abs);
    }
    p.push_back({v[0], v[1]});
  }
  return p;
}

}  // namespace

std::vector<Polygon> parse_coco_polygons(const nlohmann::json& j, const std::string& what, const PolygonLimits& lim) {
  const nlohmann::json* root = &j;
  if (j.is_object()) {
    DSVL2_REQUIRE(j.contains("segmentation"), "%s: expected a list of polygons or an object with \"segmentation\"",
                  what.c_str());
    root = &j["segmentation"];
  }
  DSVL2_REQUIRE(root->is_array() && !root->empty(), "%s: mask must be a non-empty list of polygons [[x1, y1, ...]]",
                what.c_str());
  std::vector<Polygon> parts;
  size_t total = 0;
  if ((*root)[0].is_number()) {  // one flat polygon
    Polygon p = parse_part(*root, what, 0, lim, total);
    if (p.size() >= 3) parts.push_back(std::move(p));
  } else {
    DSVL2_REQUIRE(root->size() <= lim.max_parts, "%s: mask has more than %zu parts", what.c_str(), lim.max_parts);
    for (size_t i = 0; i < root->size(); ++i) {
      Polygon p = parse_part((*root)[i], what, i, lim, total);
      if (p.size() >= 3) parts.push_back(std::move(p));
    }
  }
  DSVL2_REQUIRE(!parts.empty(), "%s: mask has no polygon with at least 3 points", what.c_str());
  return parts;
}

std::vector<Polygon> load_coco_polygons(const std::string& path, const PolygonLimits& lim) {
  std::ifstream f(path, std::ios::binary);
  DSVL2_REQUIRE(f.good(), "%s: cannot open mask file", path.c_str());
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  DSVL2_REQUIRE(text.size() <= 64u << 20, "%s: mask file larger than 64 MiB", path.c_str());
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  DSVL2_REQUIRE(!j.is_discarded(), "%s: not valid JSON", path.c_str());
  return parse_coco_polygons(j, path, lim);
}

Bounds bounds_of(const Polygon& p) {
  DSVL2_CHECK(!p.empty(), "bounds of an empty polygon");
  Bounds b{p[0].x, p[0].y, p[0].x, p[0].y};
  for (const Point& q : p) {
    b.x0 = std::min(b.x0, q.x);
    b.y0 = std::min(b.y0, q.y);
    b.x1 = std::max(b.x1, q.x);
    b.y1 = std::max(b.y1, q.y);
  }
  return b;
}

Bounds bounds_of(const std::vector<Polygon>& parts) {
  DSVL2_CHECK(!parts.empty(), "bounds of no polygons");
  Bounds b = bounds_of(parts[0]);
  for (const Polygon& p : parts) {
    Bounds c = bounds_of(p);
    b = {std::min(b.x0, c.x0), std::min(b.y0, c.y0), std::max(b.x1, c.x1), std::max(b.y1, c.y1)};
  }
  return b;
}

bool contains(const Polygon& p, Point q) {
  bool in = false;
  for (size_t i = 0, j = p.size() - 1; i < p.size(); j = i++) {
    const Point &a = p[i], &b = p[j];
    if ((a.y > q.y) != (b.y > q.y) && q.x < (b.x - a.x) * (q.y - a.y) / (b.y - a.y) + a.x) in = !in;
  }
  return in;
}

bool contains_any(const std::vector<Polygon>& parts, Point q) {
  for (const Polygon& p : parts)
    if (contains(p, q)) return true;
  return false;
}

double area(const Polygon& p) {
  double s = 0;
  for (size_t i = 0, j = p.size() - 1; i < p.size(); j = i++) s += (p[j].x + p[i].x) * (p[j].y - p[i].y);
  return std::fabs(s) / 2;
}

}  // namespace dsvl2::ground
