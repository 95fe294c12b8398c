// An error a client caused or must be told about, in OpenAI's shape:
//   {"error": {"message", "type", "param", "code"}} with an HTTP status.
// The request parser and the engine throw it; the HTTP layer answers it.
#pragma once
#include <stdexcept>
#include <string>

namespace dsvl2::serve {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = "", std::string type = "", std::string code = "")
      : std::runtime_error(message), status(status), param(std::move(param)), code(std::move(code)) {
    this->type = !type.empty()             ? std::move(type)
                 : status == 401           ? "authentication_error"
                 : status == 404           ? "not_found_error"
                 : status == 503           ? "server_overloaded"
                 : status >= 500           ? "server_error"
                                           : "invalid_request_error";
  }
  int status;
  std::string type, param, code;
};

// 400 with the offending field named, e.g. bad_request("messages[0].role", "unknown role \"bot\"").
inline ApiError bad_request(std::string param, std::string message) {
  return ApiError(400, std::move(message), std::move(param));
}

// The JSON body of an error response.
std::string error_body(const ApiError& e);

}  // namespace dsvl2::serve
