// The one JSON parser for text bai did not write itself: nesting and numbers bounded.
// Header-only and never installed: libbai, libbai-client, the CLI, daemon-common
// (bai::parseJson) and the plugins include it, none of which may link the others.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bai::internal {

// Every document of the protocol, the API and the plugin ABI nests far less than this;
// a limit keeps every recursive walk (dump, compare, copy) of a parsed tree shallow.
inline constexpr std::size_t kMaxJsonDepth = 64;

struct BoundedJson {
  nlohmann::json document;
  std::string error;  // why the text was refused; empty when it parsed
  explicit operator bool() const { return error.empty(); }
};

namespace json_detail {

// A decimal number's exact value as significant digits and a power of ten:
// "1.50e2" -> {"15", 1}; zero has no digits.
struct Decimal {
  bool negative = false;
  std::string digits;
  std::int64_t exponent = 0;
  bool operator==(const Decimal&) const = default;
};

// `text` is JSON number syntax (the lexer checked it); exponents saturate far beyond
// any double's so that a huge one cannot overflow.
inline Decimal decimalOf(std::string_view text) {
  Decimal d;
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') d.negative = true, ++i;
  std::int64_t fractionDigits = 0;
  bool inFraction = false;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') {
      inFraction = true;
      continue;
    }
    if (!(d.digits.empty() && text[i] == '0')) d.digits += text[i];
    if (inFraction) ++fractionDigits;
  }
  std::int64_t exponent = 0;
  bool negativeExponent = false;
  if (i < text.size()) ++i;  // 'e'
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negativeExponent = text[i++] == '-';
  for (; i < text.size(); ++i) exponent = std::min<std::int64_t>(exponent * 10 + (text[i] - '0'), 1'000'000'000);
  d.exponent = (negativeExponent ? -exponent : exponent) - fractionDigits;
  while (!d.digits.empty() && d.digits.back() == '0') d.digits.pop_back(), ++d.exponent;
  if (d.digits.empty()) d = Decimal{};  // -0 and 0e7 are zero
  return d;
}

// Whether `value` (parsed from `text`) is exactly the number `text` says, judged by what
// dump() writes for it, the text amounts are read from: 2^64 is a double, but it dumps
// as 1.8446744073709552e+19.
inline bool holdsExactly(double value, std::string_view text) {
  if (!std::isfinite(value)) return false;
  return decimalOf(nlohmann::json(value).dump()) == decimalOf(text);
}

// nlohmann's SAX events built into a tree, refusing what the limits forbid. The parser
// itself is iterative, so only this builder's stack grows with the nesting.
class BoundedBuilder {
 public:
  using string_t = nlohmann::json::string_t;
  using binary_t = nlohmann::json::binary_t;

  BoundedBuilder(nlohmann::json& root, std::size_t maxDepth) : root_(root), maxDepth_(maxDepth) {}

  bool null() { return put(nullptr); }
  bool boolean(bool value) { return put(value); }
  bool number_integer(nlohmann::json::number_integer_t value) { return put(value); }
  bool number_unsigned(nlohmann::json::number_unsigned_t value) { return put(value); }
  bool number_float(nlohmann::json::number_float_t value, const string_t& text) {
    if (holdsExactly(value, text)) return put(value);
    const std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
    return refuse(path() + "the number " + shown + " cannot be held exactly; send it as a string");
  }
  bool string(string_t& value) { return put(std::move(value)); }
  bool binary(binary_t& value) { return put(nlohmann::json::binary(std::move(value))); }
  bool start_object(std::size_t) { return open(nlohmann::json::object()); }
  bool start_array(std::size_t) { return open(nlohmann::json::array()); }
  bool key(string_t& name) {
    open_.back().key = std::move(name);
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) {
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
    if (const auto start = what.find("] "); start != std::string::npos) what.erase(0, start + 2);
    if (what.size() > 160) what = what.substr(0, 160) + "...";
    for (char& c : what) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';  // it echoes input
    }
    return refuse("malformed JSON: " + what);
  }

  const std::string& error() const { return error_; }

 private:
  struct Open {
    nlohmann::json* container;
    std::string key;  // the member being read, in an object
  };

  nlohmann::json* place(nlohmann::json&& value) {
    if (open_.empty()) return &(root_ = std::move(value));
    nlohmann::json& parent = *open_.back().container;
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    return &(parent[open_.back().key] = std::move(value));
  }
  bool put(nlohmann::json&& value) {
    place(std::move(value));
    return true;
  }
  bool open(nlohmann::json&& container) {
    if (open_.size() >= maxDepth_) return refuse("JSON nested deeper than " + std::to_string(maxDepth_) + " levels");
    open_.push_back({place(std::move(container)), {}});
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }
  bool refuse(std::string why) {
    error_ = std::move(why);
    return false;
  }
  // "resources.cpu: " for the value being read, to name the field in an error.
  std::string path() const {
    std::string out;
    for (const Open& level : open_) {
      if (level.container->is_array()) {
        out += "[" + std::to_string(level.container->size()) + "]";
      } else {
        out += (out.empty() ? "" : ".") + level.key;
      }
    }
    return out.empty() ? out : out + ": ";
  }

  nlohmann::json& root_;
  std::size_t maxDepth_;
  std::vector<Open> open_;
  std::string error_;
};

}  // namespace json_detail

// Parses one JSON document, refusing it when it nests deeper than `maxDepth` containers
// or holds a number that a double cannot hold exactly (18446744073709551616 would
// otherwise become 18446744073709552000): such amounts are sent as strings.
inline BoundedJson parseBoundedJson(std::string_view text, std::size_t maxDepth = kMaxJsonDepth) {
  BoundedJson out;
  json_detail::BoundedBuilder builder(out.document, maxDepth);
  if (!nlohmann::json::sax_parse(text, &builder)) {
    out.document = nlohmann::json();
    out.error = builder.error().empty() ? "malformed JSON" : builder.error();
  }
  return out;
}

}  // namespace bai::internal
