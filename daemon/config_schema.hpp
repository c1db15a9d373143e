// Declared configuration: each daemon lists its keys once (path, type, default,
// description); the same table validates the TOML file, refuses unknown keys and wrong
// types with the file and line, and prints the reference. Internal to bai.
#pragma once

#include <bai/result.hpp>
#include <bai/slots.hpp>

#include "log_sink.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::config {

enum class KeyType {
  String,
  Integer,
  Boolean,
  Decimal,     // an exact decimal: "0.5" or 0.5 or 2
  Size,        // a binary size: "4g" or a byte count
  Seconds,     // a duration in seconds, decimal: 5, "0.25"; at most kMaxSeconds
  StringList,  // ["a", "b"]
  Table,       // a free-form table handed on as JSON (e.g. [plugins.cuda]); "*" in its path matches any name
};

// The largest value of a Seconds key: about 31 years.
inline constexpr std::int64_t kMaxSeconds = 1'000'000'000;

const char* keyTypeName(KeyType type);

struct Key {
  std::string path;          // "agent.rpc-listen-addr"; "plugins.*" for a family of tables
  KeyType type = KeyType::String;
  std::string defaultValue;  // as TOML would write it, "" when the key has no default
  std::string description;
};

class Config;

class Schema {
 public:
  Schema(std::string component, std::vector<Key> keys);

  // Parses TOML text; `source` names it in errors ("agent.toml").
  Result<Config> parse(std::string_view toml, const std::string& source) const;
  Result<Config> load(const std::string& path) const;
  // What a daemon starts from: `path` (only the defaults when empty), then `overrides`
  // (dotted path -> text, from command-line flags; empty texts are skipped), each checked
  // like the file's values.
  Result<Config> load(const std::string& path, const std::map<std::string, std::string>& overrides) const;
  // Only defaults: for a daemon started without a config file.
  Config defaults() const;

  // A Markdown table of every key: path, type, default, description.
  std::string reference() const;
  const Key* find(std::string_view path) const;

 private:
  std::string component_;
  std::vector<Key> keys_;
};

// Values by dotted path, all validated by the schema. Typed getters return the value
// or the declared default; asking for an undeclared path is a programming error.
class Config {
 public:
  std::string string(std::string_view path) const;
  std::int64_t integer(std::string_view path) const;
  bool boolean(std::string_view path) const;
  Quantity decimal(std::string_view path) const;
  std::uint64_t size(std::string_view path) const;
  double seconds(std::string_view path) const;
  std::vector<std::string> stringList(std::string_view path) const;
  // Tables matching a "prefix.*" key: name -> table as JSON.
  std::map<std::string, nlohmann::json> tables(std::string_view prefix) const;
  bool isSet(std::string_view path) const { return values_.count(std::string(path)) != 0; }
  // Paths whose value differs from `before`'s (same schema), sorted; a table of a
  // "prefix.*" family by its own path ("plugins.mock"). What a reload compares.
  std::vector<std::string> changedKeys(const Config& before) const;
  // Gives `paths` the values they have in `other`: after a reload, the keys that wait for
  // a restart keep what runs, so that the next reload compares against that.
  void keepValuesOf(const Config& other, const std::vector<std::string>& paths);

  // Sets a value from a command-line flag, checked like the file's.
  Result<void> override(std::string_view path, const std::string& text);

 private:
  friend class Schema;
  const nlohmann::json& value(std::string_view path) const;

  const Schema* schema_ = nullptr;
  std::map<std::string, nlohmann::json> values_;    // explicit values by path
  std::map<std::string, nlohmann::json> defaults_;  // declared defaults by path
};

// What a reload did with each changed key.
struct ReloadReport {
  std::vector<std::string> applied;       // in effect now
  std::vector<std::string> needsRestart;  // kept at their running value, each logged
};

// A daemon's SIGHUP: loads `file` again with the same command-line `overrides` and offers
// it to `apply(running, next)`. A file that does not load, or one `apply` refuses,
// changes nothing and is logged as "reload refused, running settings kept: ..." under
// `source`; otherwise `running` becomes the new config, except that the keys waiting for
// a restart keep their running values (so the next reload compares against what runs).
Result<ReloadReport> reload(const Schema& schema, Config& running, const std::string& file,
                            const std::map<std::string, std::string>& overrides, const LogSink& log,
                            const std::string& source,
                            const std::function<Result<ReloadReport>(const Config& running, const Config& next)>& apply);

}  // namespace bai::config
