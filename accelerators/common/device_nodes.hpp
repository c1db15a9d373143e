// The device nodes a plugin names in prepare_session's "devices" (docs/abi/
// prepare_session.schema.json): with type and numbers when the plugin can stat the node,
// the path alone otherwise, and the agent then reads the node itself.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace bai::accel {

// {"path", "type", "major", "minor"} for a character or block device; {"path"} for
// anything else (a node that is missing, or a plain file standing in for one in tests).
nlohmann::json deviceNodeEntry(const std::string& path);

// Whether anything exists at `path` (a node, or a file standing in for one).
bool nodeExists(const std::string& path);

}  // namespace bai::accel
