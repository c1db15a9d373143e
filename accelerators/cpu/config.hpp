// The cpu plugin's config table (the JSON object given to create). Every key is optional;
// an unknown key is an error, so that a typo never silently falls back to a default.
#pragma once

#include <bai/slots.hpp>

#include <string>
#include <string_view>

namespace bai::cpu {

enum class TopologySource { ThisMachine, Xml, Synthetic };

struct CpuConfig {
  TopologySource source = TopologySource::ThisMachine;
  std::string topologyArgument;  // the XML path or the synthetic description
  Quantity cpuOvercommit = 1;  // capacity of each PU; whole, since the cpu map is discrete
  Quantity memOvercommit = 1;  // factor on each NUMA node's bytes, floored to whole bytes
  std::string cpuStrategy = "evenly";
  std::string memStrategy = "evenly";

  // "this machine", "xml:<path>" or "synthetic:<description>", for describe and logs.
  std::string sourceName() const;
};

// Throws bai::plugin::StatusError(BAI_ERR_INVALID_ARGUMENT) naming the offending key.
CpuConfig parseConfig(std::string_view configJson);

}  // namespace bai::cpu
