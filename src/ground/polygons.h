// COCO-style polygon masks for visual prompts: each part is a flat list
// [x1, y1, x2, y2, ...] in pixels. Parsing validates everything (numbers,
// counts, sizes) and throws dsvl2::Error naming what is wrong.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace dsvl2::ground {

struct Point {
  double x = 0, y = 0;
};
using Polygon = std::vector<Point>;

struct Bounds {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double width() const { return x1 - x0; }
  double height() const { return y1 - y0; }
};

struct PolygonLimits {
  size_t max_parts = 10000;
  size_t max_values = 100'000;  // all parts together (COCO masks have hundreds); bounds sampling cost
  double max_abs = 1e7;           // |coordinate|
};

// Accepts [[x1,y1,...], ...], a single flat [x1,y1,...], or an object with a
// "segmentation" member holding either. Parts with fewer than 3 points are
// dropped (shapely cannot build them; ViP-LLaVA drops short VCR parts too).
// `what` names the source in errors.
std::vector<Polygon> parse_coco_polygons(const nlohmann::json& j, const std::string& what,
                                         const PolygonLimits& limits = {});
std::vector<Polygon> load_coco_polygons(const std::string& path, const PolygonLimits& limits = {});

Bounds bounds_of(const Polygon& p);
Bounds bounds_of(const std::vector<Polygon>& parts);  // bounds of the union
// Even-odd point-in-polygon test.
bool contains(const Polygon& p, Point q);
bool contains_any(const std::vector<Polygon>& parts, Point q);
// Shoelace area (absolute).
double area(const Polygon& p);

}  // namespace dsvl2::ground
