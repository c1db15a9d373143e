// The SELECTs of agents, sessions and allocations and the readers of their rows into
// records: each reader knows its list's column order, so the two live together.
#pragma once

#include "sqlite_connection.hpp"
#include "store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace bai::manager::sqlite {

const std::string kSessionColumns =
    "SELECT id, name, owner, scaling_group, command_json, env_json, requested_json, status, status_reason, "
    "agent_id, exit_code, enqueue_seq, created_at_ms, scheduled_at_ms, started_at_ms, ended_at_ms, idempotency_key, "
    "request_digest, image, open_stdin, tty, service_ports_json, mounts_json FROM sessions";

const std::string kAgentColumns =
    "SELECT id, status, rpc_url, region, scaling_group, architecture, version, digest, plugins_json, "
    "device_health_json, last_event_seq, registered_at_ms, status_changed_at_ms, runtimes_json, images_json FROM agents";

const std::string kAllocationColumns = "SELECT session_id, agent_id, slots_json, released FROM allocations";

// The agents kAgentColumns + `tail` selects (binding `id` when given), with their slots.
Result<std::vector<AgentRecord>> readAgentRows(Connection& db, const std::string& tail,
                                               const std::optional<std::string>& id);
// Every row `stmt` (kSessionColumns + a WHERE) yields; corrupt JSON or status is an error naming the session.
Result<std::vector<SessionRecord>> readSessionRows(Statement& stmt);
// An agent's runtimes and images as their columns hold them.
Result<std::string> runtimesText(const AgentRecord& agent);
Result<std::string> imagesText(const AgentRecord& agent);
// A session's declared service ports as their column holds them.
Result<std::string> servicePortsText(const SessionRecord& session);
// A session's folder mounts as their column holds them: [{folder, id, source, target, read_only}].
Result<std::string> mountsText(const SessionRecord& session);

// Every row `stmt` (kAllocationColumns + a WHERE) yields.
Result<std::vector<AllocationRecord>> readAllocationRows(Statement& stmt);

// SELECTs of scaling groups and resource policies; `tail` is the WHERE/ORDER clause, `name`
// bound to its one parameter when given.
Result<std::vector<ScalingGroupRecord>> readScalingGroupRows(Connection& db, const std::string& tail,
                                                             const std::optional<std::string>& name);
Result<std::vector<ResourcePolicyRecord>> readResourcePolicyRows(Connection& db, const std::string& tail,
                                                                 const std::optional<std::string>& name);

}  // namespace bai::manager::sqlite
