// Token-id lists from JSON files (`trace --input-ids`, `train --grad-check
// --input-ids / --labels`): a JSON array of integers, or an object holding
// exactly one such array.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file.h"

namespace dsvl2::cli {

// Every element must lie in [min_value, INT32_MAX] (labels allow -100).
inline std::vector<int32_t> read_id_list(const std::string& path, int64_t min_value = 0) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    DSVL2_FAIL("%s: not JSON (%s)", path.c_str(), e.what());
  }
  if (j.is_object() && j.size() == 1) j = j.begin().value();
  DSVL2_REQUIRE(j.is_array(), "%s: expected a JSON array of token ids", path.c_str());
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    DSVL2_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= min_value && v.get<int64_t>() <= INT32_MAX,
                  "%s: element %zu (%s) is not an integer in [%lld, %d]", path.c_str(), ids.size(),
                  v.dump().c_str(), (long long)min_value, INT32_MAX);
    ids.push_back(int32_t(v.get<int64_t>()));
  }
  return ids;
}

}  // namespace dsvl2::cli
