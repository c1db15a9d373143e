// The CDI specs a container engine reads (Container Device Interface: /etc/cdi,
// /var/run/cdi), read for one thing only: the device names a kind offers, so that a
// plugin can name its devices as the engine knows them ("nvidia.com/gpu=GPU-...").
// JSON specs go through the plugins' JSON reader; YAML specs through a reader of the
// block style that nvidia-ctk and the other spec generators write (see readCdiYaml).
#pragma once

#include <bai/result.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bai::accel {

// What one spec file says: its kind ("nvidia.com/gpu") and the names of its devices.
struct CdiSpec {
  std::string kind;
  std::vector<std::string> deviceNames;
};

// A spec as JSON text; the error names what is missing or of the wrong type.
Result<CdiSpec> readCdiJson(std::string_view text);

// A spec as YAML text in block style: the top-level `kind` and `devices` keys and each
// device's `name`; every other key is skipped unread. A flow collection, an anchor or a
// tag where one of these three is read is refused ("line 7: ..."), never misread.
Result<CdiSpec> readCdiYaml(std::string_view text);

// The specs of `kind` found in `dirs`: the device names they offer, the files that
// offered them, and one line per file that could not be read (it is skipped).
struct CdiScan {
  std::set<std::string> deviceNames;
  std::vector<std::string> specFiles;
  std::vector<std::string> problems;
};

// Reads every *.json, *.yaml and *.yml file of `dirs` (a missing dir is fine: no
// specs), in name order, and keeps those whose kind is `kind`.
CdiScan scanCdiSpecs(const std::vector<std::string>& dirs, const std::string& kind);

}  // namespace bai::accel
