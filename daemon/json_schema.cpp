#include "json_schema.hpp"

#include <algorithm>
#include <array>

namespace bai::json {
namespace {

constexpr std::array kKnownKeywords = {"$id", "$defs", "$ref", "title", "description", "type", "properties",
                                       "required", "additionalProperties", "items", "enum", "minimum",
                                       "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern"};

std::string typeOf(const nlohmann::json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  return value.type_name();  // object, array, string, boolean, null
}

bool hasType(const nlohmann::json& value, const std::string& type) {
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  return typeOf(value) == type;
}

// The offending value as it goes into an error: a long one (a hostile 200 KB string) is cut,
// so that errors and the log lines that carry them stay short.
std::string shown(const nlohmann::json& value) {
  constexpr std::size_t kMost = 80;
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() <= kMost) return text;
  return text.substr(0, kMost) + "... (" + std::to_string(text.size()) + " bytes)";
}

std::string pointer(const std::string& where) { return where.empty() ? "/" : where; }

Failure<Error> invalid(const std::string& where, const std::string& what) {
  return fail(ErrorCode::InvalidArgument, "at " + pointer(where) + ": " + what);
}

std::string escapePointer(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

}  // namespace

Result<void> SchemaSet::add(std::string_view schemaJson) {
  nlohmann::json schema = nlohmann::json::parse(schemaJson, nullptr, false);
  if (schema.is_discarded() || !schema.is_object()) return fail(ErrorCode::InvalidArgument, "schema: malformed JSON");
  if (!schema.contains("$id") || !schema["$id"].is_string()) {
    return fail(ErrorCode::InvalidArgument, "schema: missing \"$id\"");
  }
  const std::string id = schema["$id"];
  if (auto compiled = compilePatterns(schema, id); !compiled) return compiled;
  schemas_[id] = std::move(schema);
  return {};
}

// Walks every subschema once: checks the keyword subset and compiles each pattern.
Result<void> SchemaSet::compilePatterns(const nlohmann::json& schema, const std::string& where) {
  if (!schema.is_object()) return fail(ErrorCode::InvalidArgument, "schema " + where + ": a subschema must be an object");
  for (const auto& [keyword, value] : schema.items()) {
    if (std::find(kKnownKeywords.begin(), kKnownKeywords.end(), keyword) == kKnownKeywords.end()) {
      return fail(ErrorCode::InvalidArgument, "schema " + where + ": unsupported keyword '" + keyword + "'");
    }
    if (keyword == "pattern") {
      try {
        patterns_.emplace(value.get<std::string>(), std::regex(value.get<std::string>(), std::regex::ECMAScript));
      } catch (const std::exception& e) {
        return fail(ErrorCode::InvalidArgument, "schema " + where + ": bad pattern: " + e.what());
      }
    } else if (keyword == "properties" || keyword == "$defs") {
      for (const auto& [name, sub] : value.items()) {
        if (auto ok = compilePatterns(sub, where + "/" + keyword + "/" + name); !ok) return ok;
      }
    } else if (keyword == "items" || (keyword == "additionalProperties" && value.is_object())) {
      if (auto ok = compilePatterns(value, where + "/" + keyword); !ok) return ok;
    }
  }
  return {};
}

const nlohmann::json* SchemaSet::resolve(const std::string& ref, const std::string& ownerId,
                                         std::string& targetId) const {
  const std::size_t hash = ref.find('#');
  targetId = hash == 0 ? ownerId : ref.substr(0, hash);
  auto doc = schemas_.find(targetId);
  if (doc == schemas_.end()) return nullptr;
  if (hash == std::string::npos || hash + 1 == ref.size()) return &doc->second;
  const nlohmann::json* node = &doc->second;
  try {
    node = &doc->second.at(nlohmann::json::json_pointer(ref.substr(hash + 1)));
  } catch (const std::exception&) {
    return nullptr;
  }
  return node;
}

Result<void> SchemaSet::validate(std::string_view id, const nlohmann::json& value) const {
  auto doc = schemas_.find(std::string(id));
  if (doc == schemas_.end()) return fail(ErrorCode::NotFound, "no schema '" + std::string(id) + "'");
  return check(doc->second, doc->first, value, "");
}

Result<void> SchemaSet::check(const nlohmann::json& schema, const std::string& ownerId, const nlohmann::json& value,
                              const std::string& where) const {
  if (schema.contains("$ref")) {
    std::string targetId;
    const nlohmann::json* target = resolve(schema["$ref"], ownerId, targetId);
    if (target == nullptr) return fail(ErrorCode::Internal, "schema: unresolved $ref " + schema["$ref"].dump());
    if (auto ok = check(*target, targetId, value, where); !ok) return ok;
  }
  if (schema.contains("type")) {
    const nlohmann::json& type = schema["type"];
    bool matches = false;
    std::string expected;
    for (const auto& t : type.is_array() ? type : nlohmann::json::array({type})) {
      matches |= hasType(value, t.get<std::string>());
      expected += (expected.empty() ? "" : " or ") + t.get<std::string>();
    }
    if (!matches) return invalid(where, "expected " + expected + ", got " + typeOf(value));
  }
  if (schema.contains("enum")) {
    const auto& options = schema["enum"];
    if (std::find(options.begin(), options.end(), value) == options.end()) {
      return invalid(where, "expected one of " + options.dump() + ", got " + shown(value));
    }
  }
  if (value.is_number()) {
    if (schema.contains("minimum") && value < schema["minimum"]) {
      return invalid(where, "expected at least " + schema["minimum"].dump() + ", got " + shown(value));
    }
    if (schema.contains("maximum") && value > schema["maximum"]) {
      return invalid(where, "expected at most " + schema["maximum"].dump() + ", got " + shown(value));
    }
  }
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (schema.contains("minLength") && text.size() < schema["minLength"].get<std::size_t>()) {
      return invalid(where, "expected at least " + schema["minLength"].dump() + " characters, got " + shown(value));
    }
    if (schema.contains("maxLength") && text.size() > schema["maxLength"].get<std::size_t>()) {
      return invalid(where, "expected at most " + schema["maxLength"].dump() + " characters, got " + shown(value));
    }
    if (schema.contains("pattern") && !std::regex_search(text, patterns_.at(schema["pattern"]))) {
      return invalid(where, "expected text matching " + schema["pattern"].dump() + ", got " + shown(value));
    }
  }
  if (value.is_array()) {
    if (schema.contains("minItems") && value.size() < schema["minItems"].get<std::size_t>()) {
      return invalid(where, "expected at least " + schema["minItems"].dump() + " items, got " + std::to_string(value.size()));
    }
    if (schema.contains("maxItems") && value.size() > schema["maxItems"].get<std::size_t>()) {
      return invalid(where, "expected at most " + schema["maxItems"].dump() + " items, got " + std::to_string(value.size()));
    }
    if (schema.contains("items")) {
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (auto ok = check(schema["items"], ownerId, value[i], where + "/" + std::to_string(i)); !ok) return ok;
      }
    }
  }
  if (value.is_object()) {
    if (schema.contains("required")) {
      for (const auto& key : schema["required"]) {
        if (!value.contains(key.get<std::string>())) return invalid(where, "missing required member " + key.dump());
      }
    }
    const nlohmann::json* properties = schema.contains("properties") ? &schema["properties"] : nullptr;
    for (const auto& [key, member] : value.items()) {
      const std::string at = where + "/" + escapePointer(key);
      if (properties != nullptr && properties->contains(key)) {
        if (auto ok = check((*properties)[key], ownerId, member, at); !ok) return ok;
      } else if (schema.contains("additionalProperties")) {
        const auto& additional = schema["additionalProperties"];
        if (additional.is_boolean()) {
          if (!additional.get<bool>()) return invalid(where, "unexpected member \"" + key + "\"");
        } else if (auto ok = check(additional, ownerId, member, at); !ok) {
          return ok;
        }
      }
    }
  }
  return {};
}

}  // namespace bai::json
