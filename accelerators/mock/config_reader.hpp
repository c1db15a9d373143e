// Reads TOML tables against declared keys. Each table of the mock's config declares its
// keys once (name, type, default, meaning); the reader rejects unknown keys, wrong types,
// negative numbers and missing required keys, and every error names the key path and
// where it was written ("mock-4xa100.toml:12:1", or "inline config" for JSON settings).
#pragma once

#include <bai/plugin.hpp>
#include <bai/slots.hpp>

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bai::mock {

enum class ValueType {
  String,
  Count,     // a non-negative integer
  Flag,      // a boolean
  Amount,    // a Quantity: decimal text or a non-negative integer
  Bytes,     // a binary size ("40g") or a non-negative integer of bytes
  Duration,  // decimal text, a non-negative integer or float; its unit is the reader's caller's
  Strings,   // an array of strings
  Table,
  Tables,  // an array of tables
  List,    // an array of anything: data passed through as it is written
};

// What a value of `type` looks like, for the key's declaration and the reader's errors.
constexpr std::string_view expectation(ValueType type) {
  switch (type) {
    case ValueType::String:
      return "a string";
    case ValueType::Count:
      return "a non-negative integer";
    case ValueType::Flag:
      return "true or false";
    case ValueType::Amount:
      return "a decimal string such as \"0.5\"";
    case ValueType::Bytes:
      return "a size such as \"40g\" or a number of bytes";
    case ValueType::Duration:
      return "a number such as \"0.2\"";
    case ValueType::Strings:
      return "a list of strings";
    case ValueType::Table:
      return "a table";
    case ValueType::Tables:
      return "a list of tables";
    case ValueType::List:
      return "a list";
  }
  return "a value";
}

// A key of a table: the SDK's declaration (its default is config text, read like a
// configured value; empty: none) and how the reader checks a value.
struct KeySpec {
  plugin::ConfigKey key;
  ValueType type = ValueType::String;
  bool required = false;
};

constexpr KeySpec keySpec(std::string_view name, ValueType type, bool required, std::string_view fallback,
                          std::string_view description) {
  return {{name, expectation(type), fallback, description}, type, required};
}

// "file.toml:12:5" for a value read from a file, "inline config" for one converted from JSON.
std::string describeSource(const toml::source_region& source);

// Throws StatusError(BAI_ERR_INVALID_ARGUMENT) with "<where>: <key path>: <message>".
[[noreturn]] void failConfig(const toml::source_region& where, std::string_view keyPath, std::string_view message);

class TableReader {
 public:
  // Validates `table` against `keys` at once; `path` names the table in messages ("devices[2]").
  TableReader(const toml::table& table, std::string path, std::span<const KeySpec> keys);

  bool has(std::string_view key) const { return table_->get(key) != nullptr; }
  // Getters return the configured value or the declared default; reading an absent key
  // without a default is a programming error (std::logic_error).
  std::string string(std::string_view key) const;
  std::int64_t count(std::string_view key) const;
  bool flag(std::string_view key) const;
  Quantity amount(std::string_view key) const;
  std::uint64_t bytes(std::string_view key) const;
  std::chrono::nanoseconds duration(std::string_view key, std::chrono::nanoseconds unit) const;
  std::vector<std::string> strings(std::string_view key) const;
  TableReader table(std::string_view key, std::span<const KeySpec> keys) const;
  std::vector<TableReader> tables(std::string_view key, std::span<const KeySpec> keys) const;

  // The table itself, for free-form tables whose keys are data (e.g. attributes).
  const toml::table& raw() const { return *table_; }
  std::string keyPath(std::string_view key) const;
  // Fails naming `key` and where it was written (the table's position when it is absent).
  [[noreturn]] void fail(std::string_view key, std::string_view message) const;
  [[noreturn]] void failTable(std::string_view message) const;

 private:
  void validate() const;
  const KeySpec& spec(std::string_view key) const;
  // The configured node, or nullptr when the default applies.
  const toml::node* nodeOrDefault(std::string_view key, std::string_view& fallback) const;

  const toml::table* table_;
  std::string path_;
  std::span<const KeySpec> keys_;
};

}  // namespace bai::mock
