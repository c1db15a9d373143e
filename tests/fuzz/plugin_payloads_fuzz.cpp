// A plugin's payloads as the agent and bai-plugin-check read them (core/plugin/payloads):
// line 1 is the key of the plugin's info record, lines 2 to 5 what it returns from
// describe, list_devices, slot_types and alloc_map_spec, read in that order as at its
// start, and the allocation maps built from them. The rest is tried as every other
// call's payload. A plugin may return anything; the agent refuses it, never crashes.
#include "fuzz_support.hpp"

#include "plugin/payloads.hpp"

namespace {

using bai::core::Discovery;

bool discover(const std::vector<std::string_view>& lines) {
  using Read = bai::Result<void> (*)(const nlohmann::json&, Discovery&);
  static const std::pair<const char*, Read> steps[] = {
      {"list_devices", &bai::core::readDevices},
      {"slot_types", &bai::core::readSlotTypes},
      {"alloc_map_spec", &bai::core::readAllocMapSpec},
  };
  Discovery discovery;
  const auto described = bai::core::parsePayload("describe", std::string(lines[1]));
  if (!described || !bai::core::readDescribe(std::string(lines[0]), *described, discovery)) return false;
  for (std::size_t i = 0; i < std::size(steps); ++i) {
    const auto document = bai::core::parsePayload(steps[i].first, std::string(lines[2 + i]));
    if (!document || !steps[i].second(*document, discovery)) return false;
  }
  const auto maps = bai::core::buildMaps(discovery);
  bai::fuzz::require(maps.ok(), "a discovery that passed alloc_map_spec builds its maps");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = bai::fuzz::textOf(data, size);
  const std::vector<std::string_view> lines = bai::fuzz::splitLines(text);
  if (lines.size() >= 5) discover(lines);
  const std::string rest(lines.size() > 5 ? text.substr(static_cast<std::size_t>(lines[5].data() - text.data())) : text);
  for (const char* call : {"health", "node_measures", "session_measures", "session"}) {
    (void)bai::core::parsePayload(call, rest);
  }
  // What the agent applies to a session: a valid prepare_session read into its resources.
  if (const auto prepared = bai::core::parsePayload("prepare_session", rest)) {
    (void)bai::core::readSessionResources(*prepared);
  }
  return 0;
}
