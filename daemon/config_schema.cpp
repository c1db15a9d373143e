#include "config_schema.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace bai::config {
namespace {

// "plugins.*" matches "plugins.cuda" (one level).
bool pathMatches(const std::string& pattern, const std::string& path) {
  if (pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, ".*") == 0) {
    const std::string prefix = pattern.substr(0, pattern.size() - 1);
    return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
           path.find('.', prefix.size()) == std::string::npos;
  }
  return pattern == path;
}

std::size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string doubleText(double d) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
  return ec == std::errc() ? std::string(buffer, end) : std::string("nan");
}

nlohmann::json toJson(const toml::node& node) {
  if (const auto* table = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : *table) out[std::string(key.str())] = toJson(value);
    return out;
  }
  if (const auto* array = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& value : *array) out.push_back(toJson(value));
    return out;
  }
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) return f->get();
  if (const auto* b = node.as_boolean()) return b->get();
  // Dates and times, as TOML writes them.
  std::ostringstream text;
  node.visit([&](const auto& value) {
    if constexpr (toml::is_date<decltype(value)> || toml::is_time<decltype(value)> || toml::is_date_time<decltype(value)>) {
      text << value;
    }
  });
  return text.str();
}

// Converts a TOML/JSON value to the key's stored form, or says what was expected.
Result<nlohmann::json> convert(const Key& key, const nlohmann::json& value) {
  auto expected = [&](const std::string& what) {
    return fail(ErrorCode::InvalidArgument, "'" + key.path + "' must be " + what + ", got " + value.dump());
  };
  switch (key.type) {
    case KeyType::String:
      if (!value.is_string()) return expected("a string");
      return value;
    case KeyType::Integer:
      if (!value.is_number_integer()) return expected("an integer");
      return value;
    case KeyType::Boolean:
      if (!value.is_boolean()) return expected("true or false");
      return value;
    case KeyType::Decimal:
    case KeyType::Seconds: {
      std::string text;
      if (value.is_string()) text = value.get<std::string>();
      else if (value.is_number_integer()) text = std::to_string(value.get<std::int64_t>());
      else if (value.is_number_float()) text = doubleText(value.get<double>());
      else return expected(key.type == KeyType::Seconds ? "a number of seconds" : "a decimal number");
      auto parsed = Quantity::parse(text);
      if (!parsed || parsed->isInfinite()) return expected(key.type == KeyType::Seconds ? "a number of seconds" : "a decimal number");
      if (key.type == KeyType::Seconds && parsed->isNegative()) return expected("a non-negative number of seconds");
      // The daemons keep durations in milliseconds of 64 bits; a bound in round figures
      // far below that keeps every conversion defined.
      if (key.type == KeyType::Seconds && *parsed > Quantity(kMaxSeconds)) {
        return expected("at most " + std::to_string(kMaxSeconds) + " seconds");
      }
      return nlohmann::json(parsed->toString());
    }
    case KeyType::Size: {
      if (value.is_number_integer() && value.get<std::int64_t>() >= 0) return nlohmann::json(value.get<std::uint64_t>());
      if (!value.is_string()) return expected("a size like \"4g\" or a byte count");
      auto parsed = BinarySize::parse(value.get<std::string>());
      if (!parsed) return fail(ErrorCode::InvalidArgument, "'" + key.path + "': " + parsed.error().message);
      return nlohmann::json(parsed->bytes());
    }
    case KeyType::StringList:
      if (!value.is_array() || !std::all_of(value.begin(), value.end(), [](const auto& v) { return v.is_string(); })) {
        return expected("a list of strings");
      }
      return value;
    case KeyType::Table:
      if (!value.is_object()) return expected("a table");
      return value;
  }
  return expected("a value");
}

}  // namespace

const char* keyTypeName(KeyType type) {
  switch (type) {
    case KeyType::String: return "string";
    case KeyType::Integer: return "integer";
    case KeyType::Boolean: return "boolean";
    case KeyType::Decimal: return "decimal";
    case KeyType::Size: return "size";
    case KeyType::Seconds: return "seconds";
    case KeyType::StringList: return "list of strings";
    case KeyType::Table: return "table";
  }
  return "?";
}

Schema::Schema(std::string component, std::vector<Key> keys) : component_(std::move(component)), keys_(std::move(keys)) {
  for (const Key& key : keys_) {
    if (key.defaultValue.empty()) continue;
    try {
      toml::table parsed = toml::parse("value = " + key.defaultValue);
      if (auto converted = convert(key, toJson(*parsed.get("value"))); !converted) {
        throw std::logic_error(component_ + ": bad default for " + key.path + ": " + converted.error().message);
      }
    } catch (const toml::parse_error& e) {
      throw std::logic_error(component_ + ": bad default for " + key.path + ": " + std::string(e.description()));
    }
  }
}

const Key* Schema::find(std::string_view path) const {
  for (const Key& key : keys_) {
    if (pathMatches(key.path, std::string(path))) return &key;
  }
  return nullptr;
}

Config Schema::defaults() const {
  Config config;
  config.schema_ = this;
  for (const Key& key : keys_) {
    if (key.defaultValue.empty()) continue;
    toml::table parsed = toml::parse("value = " + key.defaultValue);
    config.defaults_[key.path] = convert(key, toJson(*parsed.get("value"))).value();
  }
  return config;
}

Result<Config> Schema::parse(std::string_view text, const std::string& source) const {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return fail(ErrorCode::InvalidArgument,
                source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  Config config = defaults();
  std::string error;
  // Walks the document; a declared table key takes its whole subtree.
  std::function<void(const toml::table&, const std::string&)> walk = [&](const toml::table& table, const std::string& prefix) {
    for (const auto& [name, node] : table) {
      if (!error.empty()) return;
      const std::string path = prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
      const std::string where = source + ":" + std::to_string(node.source().begin.line) + ": ";
      const Key* key = find(path);
      if (key == nullptr && node.is_table()) {
        walk(*node.as_table(), path);
        continue;
      }
      if (key == nullptr) {
        std::string hint;
        for (const Key& k : keys_) {
          if (editDistance(k.path, path) <= 2) hint = " (did you mean '" + k.path + "'?)";
        }
        error = where + "unknown key '" + path + "'" + hint + "; see --print-config-reference";
        return;
      }
      auto converted = convert(*key, toJson(node));
      if (!converted) {
        error = where + converted.error().message;
        return;
      }
      config.values_[path] = std::move(*converted);
    }
  };
  walk(root, "");
  if (!error.empty()) return fail(ErrorCode::InvalidArgument, error);
  return config;
}

Result<Config> Schema::load(const std::string& path) const {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::NotFound, "cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

Result<Config> Schema::load(const std::string& path, const std::map<std::string, std::string>& overrides) const {
  auto config = path.empty() ? Result<Config>(defaults()) : load(path);
  if (!config) return config;
  for (const auto& [key, value] : overrides) {
    if (value.empty()) continue;
    if (auto set = config->override(key, value); !set) return Failure{set.error()};
  }
  return config;
}

std::string Schema::reference() const {
  std::string out = "| key | type | default | description |\n|---|---|---|---|\n";
  for (const Key& key : keys_) {
    out += "| `" + key.path + "` | " + keyTypeName(key.type) + " | " +
           (key.defaultValue.empty() ? std::string("(none)") : "`" + key.defaultValue + "`") + " | " + key.description +
           " |\n";
  }
  return out;
}

const nlohmann::json& Config::value(std::string_view path) const {
  static const nlohmann::json kNull;
  if (schema_ == nullptr || schema_->find(path) == nullptr) {
    throw std::logic_error("config key '" + std::string(path) + "' is not declared");
  }
  if (auto it = values_.find(std::string(path)); it != values_.end()) return it->second;
  if (auto it = defaults_.find(std::string(path)); it != defaults_.end()) return it->second;
  return kNull;
}

std::string Config::string(std::string_view path) const {
  const auto& v = value(path);
  return v.is_string() ? v.get<std::string>() : std::string();
}
std::int64_t Config::integer(std::string_view path) const {
  const auto& v = value(path);
  return v.is_number_integer() ? v.get<std::int64_t>() : 0;
}
bool Config::boolean(std::string_view path) const {
  const auto& v = value(path);
  return v.is_boolean() && v.get<bool>();
}
Quantity Config::decimal(std::string_view path) const {
  const auto& v = value(path);
  return v.is_string() ? Quantity::parse(v.get<std::string>()).value() : Quantity();
}
std::uint64_t Config::size(std::string_view path) const {
  const auto& v = value(path);
  return v.is_number() ? v.get<std::uint64_t>() : 0;
}
double Config::seconds(std::string_view path) const {
  const auto& v = value(path);
  return v.is_string() ? std::stod(v.get<std::string>()) : 0.0;
}
std::vector<std::string> Config::stringList(std::string_view path) const {
  const auto& v = value(path);
  return v.is_array() ? v.get<std::vector<std::string>>() : std::vector<std::string>{};
}

std::map<std::string, nlohmann::json> Config::tables(std::string_view prefix) const {
  std::map<std::string, nlohmann::json> out;
  const std::string start = std::string(prefix) + ".";
  for (const auto& [path, v] : values_) {
    if (path.compare(0, start.size(), start) == 0 && v.is_object()) out[path.substr(start.size())] = v;
  }
  return out;
}

std::vector<std::string> Config::changedKeys(const Config& before) const {
  std::set<std::string> paths;
  for (const auto* side : {this, &before}) {
    for (const auto& [path, v] : side->values_) paths.insert(path);
    for (const auto& [path, v] : side->defaults_) paths.insert(path);
  }
  auto effective = [](const Config& c, const std::string& path) -> const nlohmann::json* {
    if (auto it = c.values_.find(path); it != c.values_.end()) return &it->second;
    if (auto it = c.defaults_.find(path); it != c.defaults_.end()) return &it->second;
    return nullptr;
  };
  std::vector<std::string> out;
  for (const auto& path : paths) {
    const nlohmann::json* now = effective(*this, path);
    const nlohmann::json* then = effective(before, path);
    if ((now == nullptr) != (then == nullptr) || (now != nullptr && *now != *then)) out.push_back(path);
  }
  return out;
}

void Config::keepValuesOf(const Config& other, const std::vector<std::string>& paths) {
  for (const auto& path : paths) {
    if (auto it = other.values_.find(path); it != other.values_.end()) values_[path] = it->second;
    else values_.erase(path);
  }
}

Result<void> Config::override(std::string_view path, const std::string& text) {
  const Key* key = schema_ != nullptr ? schema_->find(path) : nullptr;
  if (key == nullptr) return fail(ErrorCode::InvalidArgument, "unknown key '" + std::string(path) + "'");
  nlohmann::json raw;
  switch (key->type) {
    case KeyType::Integer:
      try {
        std::size_t used = 0;
        raw = std::stoll(text, &used);
        if (used != text.size()) throw std::invalid_argument(text);
      } catch (const std::exception&) {
        return fail(ErrorCode::InvalidArgument, "'" + key->path + "' must be an integer, got '" + text + "'");
      }
      break;
    case KeyType::Boolean:
      if (text != "true" && text != "false") {
        return fail(ErrorCode::InvalidArgument, "'" + key->path + "' must be true or false, got '" + text + "'");
      }
      raw = text == "true";
      break;
    case KeyType::StringList: {
      raw = nlohmann::json::array();
      std::stringstream items(text);
      for (std::string item; std::getline(items, item, ',');) {
        if (!item.empty()) raw.push_back(item);
      }
      break;
    }
    default:
      raw = text;
  }
  auto converted = convert(*key, raw);
  if (!converted) return Failure{converted.error()};
  values_[std::string(path)] = std::move(*converted);
  return {};
}

Result<ReloadReport> reload(const Schema& schema, Config& running, const std::string& file,
                            const std::map<std::string, std::string>& overrides, const LogSink& log,
                            const std::string& source,
                            const std::function<Result<ReloadReport>(const Config&, const Config&)>& apply) {
  auto next = schema.load(file, overrides);
  auto applied = next ? apply(running, *next) : Result<ReloadReport>(Failure{next.error()});
  if (!applied) {
    if (log) log(LogLevel::Error, source, "reload refused, running settings kept: " + applied.error().message);
    return Failure{applied.error()};
  }
  next->keepValuesOf(running, applied->needsRestart);
  running = std::move(*next);
  return applied;
}

}  // namespace bai::config
