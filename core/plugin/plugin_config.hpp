// A plugin's config table as the host services' config_get hands it out. One
// implementation for the agent's plugin host and for bai-plugin-check, so that a plugin
// reads the same values in both.
#pragma once

#include <bai/accelerator.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string_view>

namespace bai::core {

class PluginConfig {
 public:
  // `configJson` is the plugin's table as JSON text; text that does not parse is an empty table.
  explicit PluginConfig(std::string_view configJson);

  const nlohmann::json& table() const { return table_; }
  // The value at `key`, a dotted path through nested tables ("limits.max_mem"); null when
  // absent. An empty key, or an empty part of one, names nothing.
  const nlohmann::json* find(std::string_view key) const;

  // config_get as accelerator.h documents it; a host's callback forwards here.
  // Thread-safe: it only reads the table.
  bai_status get(const char* key, char* buffer, std::size_t bufferSize, std::size_t* needed) const;

 private:
  nlohmann::json table_;
};

}  // namespace bai::core
