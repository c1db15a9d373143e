// Prometheus text exposition format (version 0.0.4) for the daemons' /metrics, written one
// metric family at a time so that every sample follows its family's HELP and TYPE lines:
//
//   PrometheusText out;
//   out.family("bai_agent_slot_used", MetricType::Gauge, "Amount held by sessions per slot.");
//   for (const auto& [slot, amount] : used) out.sample({{"slot", slot.str()}}, amount);
//   return out.text();
//
// Names are the caller's constants: an invalid metric or label name, a sample before any
// family and a family written twice are programming errors (std::logic_error).
#pragma once

#include <bai/slots.hpp>

#include <concepts>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

namespace bai {

enum class MetricType { Counter, Gauge, Histogram };

struct MetricLabel {
  std::string_view name;
  std::string_view value;  // any text: escaped as the format asks
};

class PrometheusText {
 public:
  // Starts a family: its "# HELP" and "# TYPE" lines. `help` may hold any text.
  void family(std::string_view name, MetricType type, std::string_view help);

  // One sample of the current family: `name{labels} value`.
  void sample(std::initializer_list<MetricLabel> labels, std::string_view value);
  void sample(std::initializer_list<MetricLabel> labels, Quantity value) { sample(labels, value.toString()); }
  template <std::integral T>
  void sample(std::initializer_list<MetricLabel> labels, T value) {
    sample(labels, std::to_string(value));
  }
  // A histogram's series: the family name plus "_bucket", "_sum" or "_count".
  void sampleWithSuffix(std::string_view suffix, std::initializer_list<MetricLabel> labels, std::string_view value);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string current_;           // the family samples belong to; empty before the first
  std::set<std::string> written_;  // every family so far, each allowed once
};

}  // namespace bai
