#include "prometheus_text.hpp"

#include <stdexcept>

namespace bai {
namespace {

bool isNameStart(char c, bool colonAllowed) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colonAllowed && c == ':');
}

// Metric names may hold colons, label names may not; neither starts with a digit.
void requireName(std::string_view name, bool colonAllowed, const char* what) {
  bool valid = !name.empty() && isNameStart(name.front(), colonAllowed);
  for (char c : name) valid = valid && (isNameStart(c, colonAllowed) || (c >= '0' && c <= '9'));
  if (!valid) throw std::logic_error(std::string("invalid Prometheus ") + what + " name '" + std::string(name) + "'");
}

// Backslash and newline always; the double quote only inside a label value.
void appendEscaped(std::string& out, std::string_view text, bool quoteToo) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quoteToo) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

const char* typeName(MetricType type) {
  switch (type) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

void PrometheusText::family(std::string_view name, MetricType type, std::string_view help) {
  requireName(name, true, "metric");
  if (!written_.emplace(name).second) {
    throw std::logic_error("Prometheus family '" + std::string(name) + "' written twice");
  }
  current_ = name;
  text_ += "# HELP " + current_ + " ";
  appendEscaped(text_, help, false);
  text_ += "\n# TYPE " + current_ + " " + typeName(type) + "\n";
}

void PrometheusText::sample(std::initializer_list<MetricLabel> labels, std::string_view value) {
  sampleWithSuffix({}, labels, value);
}

void PrometheusText::sampleWithSuffix(std::string_view suffix, std::initializer_list<MetricLabel> labels,
                                      std::string_view value) {
  if (current_.empty()) throw std::logic_error("a Prometheus sample before any family");
  if (!suffix.empty()) requireName(current_ + std::string(suffix), true, "metric");
  text_ += current_;
  text_ += suffix;
  const char* separator = "{";
  for (const MetricLabel& label : labels) {
    requireName(label.name, false, "label");
    text_ += separator;
    text_ += label.name;
    text_ += "=\"";
    appendEscaped(text_, label.value, true);
    text_ += '"';
    separator = ",";
  }
  if (labels.size() != 0) text_ += '}';
  text_ += ' ';
  text_ += value;
  text_ += '\n';
}

}  // namespace bai
