// A plugin's payload parsed and checked against docs/abi/<schema>.schema.json, for the
// tests that call a plugin directly: a breach is a test failure naming the schema.
#pragma once

#include "json_schema.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace bai::testing {

// The payload, or an empty object (and a failure) when it is not JSON.
inline nlohmann::json parsePayload(std::string_view schema, const std::string& text) {
  nlohmann::json payload = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(payload.is_discarded()) << "not JSON: " << text;
  if (payload.is_discarded()) return nlohmann::json::object();
  auto valid = bai::json::abiSchemas().validate(schema, payload);
  EXPECT_TRUE(valid.ok()) << schema << ": " << (valid.ok() ? "" : valid.error().message) << "\n" << text;
  return payload;
}

}  // namespace bai::testing
