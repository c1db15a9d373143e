// The daemons' TOML configuration (daemon/config_schema) under both declared schemas,
// bai-agent's and bai-manager's, and the typed settings each daemon reads from a file
// that passed: a bad file is refused with a message, never a crash or an exception.
#include "fuzz_support.hpp"

#include "agent/agent_config.hpp"
#include "manager_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = bai::fuzz::textOf(data, size);
  if (const auto config = bai::core::agentConfigSchema().parse(text, "agent.toml")) {
    (void)bai::core::agentSettings(*config);
  }
  if (const auto config = bai::manager::managerConfigSchema().parse(text, "manager.toml")) {
    (void)bai::manager::managerSettings(*config);
  }
  return 0;
}
