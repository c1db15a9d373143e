// The JSON reading both wire protocols share (bai/protocol.hpp, bai/storage_protocol.hpp):
// a Reader that walks one object's members remembering the first problem with its path,
// and the parse of a whole document (bounded depth, optionally versioned). Internal.
#pragma once

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include "parse_json.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace bai::protocol::detail {

using json = nlohmann::json;

// Reads members of one object, remembering the first problem with its path.
class Reader {
 public:
  Reader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_[key].is_null(); }

  std::string string(const char* key, bool required = true) {
    if (!has(key)) return missing(key, required), std::string();
    if (!object_[key].is_string()) return wrong(key, "a string"), std::string();
    return object_[key].get<std::string>();
  }
  std::int64_t integer(const char* key, bool required = true) {
    if (!has(key)) return missing(key, required), 0;
    if (!object_[key].is_number_integer()) return wrong(key, "an integer"), 0;
    return object_[key].get<std::int64_t>();
  }
  // A process exit code or signal-derived status: an int, never a wrapped 64-bit number.
  int exitCode(const char* key) {
    const std::int64_t code = integer(key);
    if (code < INT32_MIN || code > INT32_MAX) return wrong(key, "an exit code (a 32-bit integer)"), 0;
    return static_cast<int>(code);
  }
  std::uint64_t unsignedInteger(const char* key) {
    if (!has(key)) return missing(key, true), 0;
    if (!object_[key].is_number_unsigned()) return wrong(key, "a non-negative integer"), 0;
    return object_[key].get<std::uint64_t>();
  }
  bool boolean(const char* key) {
    if (!has(key)) return false;
    if (!object_[key].is_boolean()) return wrong(key, "true or false"), false;
    return object_[key].get<bool>();
  }
  ResourceSlot slots(const char* key, bool required = true) {
    if (!has(key)) return missing(key, required), ResourceSlot();
    auto parsed = ResourceSlot::fromJson(object_[key].dump());
    if (!parsed) return note(where_ + "." + key + ": " + parsed.error().message), ResourceSlot();
    return *parsed;
  }
  std::map<std::string, std::string> stringMap(const char* key) {
    std::map<std::string, std::string> out;
    if (!has(key)) return out;
    if (!object_[key].is_object()) return wrong(key, "an object of strings"), out;
    for (const auto& [k, v] : object_[key].items()) {
      if (!v.is_string()) return wrong(key, "an object of strings"), out;
      out[k] = v.get<std::string>();
    }
    return out;
  }
  const json* array(const char* key, bool required = true) {
    if (!has(key)) return missing(key, required), nullptr;
    if (!object_[key].is_array()) return wrong(key, "an array"), nullptr;
    return &object_[key];
  }
  const json* object(const char* key, bool required = true) {
    if (!has(key)) return missing(key, required), nullptr;
    if (!object_[key].is_object()) return wrong(key, "an object"), nullptr;
    return &object_[key];
  }

  void note(const std::string& problem) {
    if (error_.empty()) error_ = problem;
  }
  bool ok() const { return error_.empty(); }
  Failure<Error> failure() const { return fail(ErrorCode::InvalidArgument, error_); }
  const std::string& where() const { return where_; }

 private:
  void missing(const char* key, bool required) {
    if (required) note(where_ + ": missing '" + key + "'");
  }
  void wrong(const char* key, const char* expected) { note(where_ + "." + key + ": expected " + expected); }

  const json& object_;
  std::string where_;
  std::string error_;
};

inline Result<json> parseDocument(std::string_view text, const std::string& what, bool versioned) {
  auto parsed = parseJson(text);
  if (!parsed) return fail(ErrorCode::InvalidArgument, what + ": " + parsed.error().message);
  json& document = *parsed;
  if (!document.is_object()) return fail(ErrorCode::InvalidArgument, what + ": expected a JSON object");
  if (versioned) {
    if (!document.contains("protocol") || !document["protocol"].is_number_integer()) {
      return fail(ErrorCode::InvalidArgument, what + ": missing 'protocol' version");
    }
    // Read as 64 bits: 4294967297 must not wrap to version 1.
    const std::int64_t version = document["protocol"].get<std::int64_t>();
    if (version != kVersion) {
      return fail(ErrorCode::InvalidArgument, what + ": protocol version " + std::to_string(version) +
                                                  " is not supported (this side speaks " + std::to_string(kVersion) + ")");
    }
  }
  return parsed;
}

}  // namespace bai::protocol::detail
