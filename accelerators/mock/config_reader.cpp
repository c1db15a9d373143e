#include "config_reader.hpp"

#include "mock_config.hpp"

#include <bai/plugin.hpp>

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace bai::mock {
namespace {

bool isStringList(const toml::node& node) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return false;
  for (const toml::node& item : *array) {
    if (!item.is_string()) return false;
  }
  return true;
}

bool hasType(const toml::node& node, ValueType type) {
  switch (type) {
    case ValueType::String:
      return node.is_string();
    case ValueType::Count:
      return node.is_integer();
    case ValueType::Flag:
      return node.is_boolean();
    case ValueType::Amount:
      return node.is_string() || node.is_integer();
    case ValueType::Bytes:
      return node.is_string() || node.is_integer();
    case ValueType::Duration:
      return node.is_string() || node.is_integer() || node.is_floating_point();
    case ValueType::Strings:
      return isStringList(node);
    case ValueType::Table:
      return node.is_table();
    case ValueType::Tables:
      return node.is_array_of_tables() || (node.is_array() && node.as_array()->empty());
    case ValueType::List:
      return node.is_array();
  }
  return false;
}

bool isNegative(const toml::node& node) {
  if (const auto* integer = node.as_integer()) return integer->get() < 0;
  if (const auto* number = node.as_floating_point()) return number->get() < 0;
  return false;
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::int64_t parseCount(std::string_view text) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) throw std::logic_error("bad default count");
  return value;
}

}  // namespace

std::string describeSource(const toml::source_region& source) {
  if (source.begin.line == 0) return "inline config";
  std::string position = std::to_string(source.begin.line) + ":" + std::to_string(source.begin.column);
  return source.path ? *source.path + ":" + position : "line " + position;
}

void failConfig(const toml::source_region& where, std::string_view keyPath, std::string_view message) {
  throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, "mock config: " + describeSource(where) + ": " +
                                                          std::string(keyPath) + ": " + std::string(message));
}

TableReader::TableReader(const toml::table& table, std::string path, std::span<const KeySpec> keys)
    : table_(&table), path_(std::move(path)), keys_(keys) {
  validate();
}

void TableReader::validate() const {
  for (auto&& [key, node] : *table_) {
    const KeySpec* found = nullptr;
    for (const KeySpec& candidate : keys_) {
      if (candidate.key.name == key.str()) found = &candidate;
    }
    if (found == nullptr) {
      std::string accepted;
      for (const KeySpec& candidate : keys_) accepted += (accepted.empty() ? "" : ", ") + std::string(candidate.key.name);
      failConfig(key.source(), keyPath(key.str()), "unknown key (accepted here: " + accepted + ")");
    }
    if (!hasType(node, found->type)) {
      failConfig(node.source(), keyPath(key.str()), "expected " + std::string(found->key.type));
    }
    if (isNegative(node)) failConfig(node.source(), keyPath(key.str()), "must not be negative");
  }
  for (const KeySpec& candidate : keys_) {
    if (candidate.required && !has(candidate.key.name)) fail(candidate.key.name, "missing (required)");
  }
}

const KeySpec& TableReader::spec(std::string_view key) const {
  for (const KeySpec& candidate : keys_) {
    if (candidate.key.name == key) return candidate;
  }
  throw std::logic_error("undeclared config key " + std::string(key));
}

const toml::node* TableReader::nodeOrDefault(std::string_view key, std::string_view& fallback) const {
  fallback = spec(key).key.defaultValue;
  const toml::node* node = table_->get(key);
  if (node == nullptr && fallback.empty()) throw std::logic_error("config key without default: " + std::string(key));
  return node;
}

std::string TableReader::keyPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void TableReader::fail(std::string_view key, std::string_view message) const {
  const toml::node* node = table_->get(key);
  failConfig(node != nullptr ? node->source() : table_->source(), keyPath(key), message);
}

void TableReader::failTable(std::string_view message) const {
  failConfig(table_->source(), path_.empty() ? "(top level)" : path_, message);
}

std::string TableReader::string(std::string_view key) const {
  std::string_view fallback;
  const toml::node* node = nodeOrDefault(key, fallback);
  return node != nullptr ? node->as_string()->get() : std::string(fallback);
}

std::int64_t TableReader::count(std::string_view key) const {
  std::string_view fallback;
  const toml::node* node = nodeOrDefault(key, fallback);
  return node != nullptr ? node->as_integer()->get() : parseCount(fallback);
}

bool TableReader::flag(std::string_view key) const {
  std::string_view fallback;
  const toml::node* node = nodeOrDefault(key, fallback);
  return node != nullptr ? node->as_boolean()->get() : fallback == "true";
}

Quantity TableReader::amount(std::string_view key) const {
  std::string_view fallback;
  const toml::node* node = nodeOrDefault(key, fallback);
  if (node != nullptr && node->is_integer()) return node->as_integer()->get();
  std::string text = node != nullptr ? node->as_string()->get() : std::string(fallback);
  std::optional<Quantity> value = parseAmount(text);
  if (!value) fail(key, quoted(text) + " is not a decimal such as \"0.5\" (non-negative, at most 6 fractional digits)");
  return *value;
}

std::uint64_t TableReader::bytes(std::string_view key) const {
  std::string_view fallback;
  const toml::node* node = nodeOrDefault(key, fallback);
  if (node != nullptr && node->is_integer()) return static_cast<std::uint64_t>(node->as_integer()->get());
  std::string text = node != nullptr ? node->as_string()->get() : std::string(fallback);
  Result<BinarySize> value = BinarySize::parse(text);
  if (!value) fail(key, quoted(text) + " is not a whole number of bytes such as \"40g\", \"1.5GiB\" or \"512\"");
  return value->bytes();
}

std::chrono::nanoseconds TableReader::duration(std::string_view key, std::chrono::nanoseconds unit) const {
  std::string_view fallback;
  const toml::node* node = nodeOrDefault(key, fallback);
  constexpr double kLimit = 1e18;  // nanoseconds an int64 holds, with room to spare
  double nanos = 0;
  if (node != nullptr && node->is_floating_point()) {
    nanos = node->as_floating_point()->get() * static_cast<double>(unit.count());
  } else if (node != nullptr && node->is_integer()) {
    nanos = static_cast<double>(node->as_integer()->get()) * static_cast<double>(unit.count());
  } else {
    std::string text = node != nullptr ? node->as_string()->get() : std::string(fallback);
    std::optional<Quantity> value = parseAmount(text);
    if (!value) fail(key, quoted(text) + " is not a number such as \"0.2\"");
    __int128 exact = value->timesFloor(unit.count());  // an amount is at most 10^18: no overflow
    if (exact > static_cast<__int128>(kLimit)) fail(key, "too long");
    return std::chrono::nanoseconds(static_cast<std::int64_t>(exact));
  }
  if (!std::isfinite(nanos) || nanos > kLimit) fail(key, "too long");
  return std::chrono::nanoseconds(std::llround(nanos));
}

std::vector<std::string> TableReader::strings(std::string_view key) const {
  std::vector<std::string> values;
  if (const toml::node* node = table_->get(key)) {
    for (const toml::node& item : *node->as_array()) values.push_back(item.as_string()->get());
  }
  return values;
}

TableReader TableReader::table(std::string_view key, std::span<const KeySpec> keys) const {
  static const toml::table kEmpty;
  const toml::node* node = table_->get(key);
  return TableReader(node != nullptr ? *node->as_table() : kEmpty, keyPath(key), keys);
}

std::vector<TableReader> TableReader::tables(std::string_view key, std::span<const KeySpec> keys) const {
  std::vector<TableReader> readers;
  const toml::node* node = table_->get(key);
  if (node == nullptr) return readers;
  const toml::array& array = *node->as_array();
  readers.reserve(array.size());
  for (std::size_t i = 0; i < array.size(); ++i) {
    readers.emplace_back(*array[i].as_table(), keyPath(key) + "[" + std::to_string(i) + "]", keys);
  }
  return readers;
}

}  // namespace bai::mock
