#include "plugin/plugin_config.hpp"

#include "parse_json.hpp"

#include <cstring>
#include <string>

namespace bai::core {

PluginConfig::PluginConfig(std::string_view configJson) {
  auto parsed = parseJson(configJson);
  table_ = parsed ? std::move(*parsed) : nlohmann::json::object();
}

const nlohmann::json* PluginConfig::find(std::string_view key) const {
  if (key.empty()) return nullptr;
  const nlohmann::json* node = &table_;
  for (;;) {
    const std::size_t dot = key.find('.');
    const std::string part(key.substr(0, dot));
    if (part.empty() || !node->is_object()) return nullptr;
    auto child = node->find(part);
    if (child == node->end()) return nullptr;
    node = &*child;
    if (dot == std::string_view::npos) return node;
    key.remove_prefix(dot + 1);
  }
}

bai_status PluginConfig::get(const char* key, char* buffer, std::size_t bufferSize, std::size_t* needed) const {
  if (key == nullptr) return BAI_ERR_INVALID_ARGUMENT;
  const nlohmann::json* value = find(key);
  if (value == nullptr) return BAI_ERR_NOT_FOUND;
  const std::string text = value->dump();
  if (needed != nullptr) *needed = text.size() + 1;
  if (buffer == nullptr || bufferSize < text.size() + 1) return BAI_ERR_INVALID_ARGUMENT;
  std::memcpy(buffer, text.c_str(), text.size() + 1);
  return BAI_OK;
}

}  // namespace bai::core
