// The errors the server answers with: an HTTP status and OpenAI's error
// object, {"error": {"message", "type", "param", "code"}}, so that clients
// written for OpenAI (its SDK raises BadRequestError, RateLimitError, ...)
// understand them.
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace kvsieve::serve {

struct ApiError : std::runtime_error {
  int status;
  std::string type;   // invalid_request_error, authentication_error, server_error, ...
  std::string param;  // the request field at fault ("" when none)
  std::string code;   // a short machine-readable reason ("" when none)
  ApiError(int status, std::string message, std::string type, std::string param = "",
           std::string code = "")
      : std::runtime_error(std::move(message)),
        status(status),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}
};

// 400 invalid_request_error naming the field at fault.
inline ApiError bad_request(std::string message, std::string param = "", std::string code = "") {
  return ApiError(400, std::move(message), "invalid_request_error", std::move(param), std::move(code));
}

inline nlohmann::json error_json(const ApiError& e) {
  nlohmann::json err = {{"message", e.what()}, {"type", e.type}};
  err["param"] = e.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param);
  err["code"] = e.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.code);
  return {{"error", err}};
}

}  // namespace kvsieve::serve
