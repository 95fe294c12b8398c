#include "serve/api_error.h"

#include <nlohmann/json.hpp>

namespace dsvl2::serve {

std::string error_body(const ApiError& e) {
  nlohmann::ordered_json err;
  err["message"] = e.what();
  err["type"] = e.type;
  err["param"] = e.param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(e.param);
  err["code"] = e.code.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(e.code);
  nlohmann::ordered_json body;
  body["error"] = std::move(err);
  // Messages may quote client bytes: replace invalid UTF-8 rather than throw.
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace dsvl2::serve
