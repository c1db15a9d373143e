// How bai-agent puts an agent together: builds the plugin host, the node inventory, the
// limits back end, the event journal and the session runtime, hands them to the Agent,
// recovers the recorded sessions and starts reporting and plugin supervision.
#pragma once

#include "agent/agent.hpp"

namespace bai::core {

// Lines below settings.logLevel are dropped before `log`; reload() may change the level.
Result<std::unique_ptr<Agent>> startAgent(AgentSettings settings, std::string clusterToken, LogSink log);

}  // namespace bai::core
