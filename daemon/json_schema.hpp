// A JSON Schema validator for the subset bai's ABI schemas use (docs/abi/): type,
// properties, required, additionalProperties, items, enum, minimum, maximum, minLength,
// maxLength, minItems, maxItems, pattern and $ref to "<id>#/$defs/<name>".
// The host and bai-plugin-check validate plugin payloads with the same schema files.
#pragma once

#include <bai/result.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>

namespace bai::json {

class SchemaSet {
 public:
  // Adds a schema document named by its "$id". Refuses a keyword outside the subset, so
  // a schema never silently checks less than it says.
  Result<void> add(std::string_view schemaJson);
  bool contains(std::string_view id) const { return schemas_.count(std::string(id)) != 0; }

  // Errors name the JSON pointer of the offending value and what was expected there.
  Result<void> validate(std::string_view id, const nlohmann::json& value) const;

 private:
  Result<void> check(const nlohmann::json& schema, const std::string& ownerId, const nlohmann::json& value,
                     const std::string& where) const;
  Result<void> compilePatterns(const nlohmann::json& schema, const std::string& where);
  const nlohmann::json* resolve(const std::string& ref, const std::string& ownerId, std::string& targetId) const;

  std::map<std::string, nlohmann::json> schemas_;
  std::map<std::string, std::regex> patterns_;
};

// The schemas of docs/abi/, compiled into libbai.
const SchemaSet& abiSchemas();

}  // namespace bai::json
