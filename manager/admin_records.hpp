// The admin records of the API (scaling groups, keypair resource policies) to and from
// JSON. Every field is checked and named in errors; unknown fields are refused; fields
// left out take the record's defaults.
#pragma once

#include "admin_service.hpp"
#include "store/store.hpp"

#include <bai/result.hpp>
#include <bai/slots.hpp>

#include <nlohmann/json_fwd.hpp>

#include <string_view>

namespace bai::manager {

// Names of scaling groups and resource policies: `[a-z0-9][a-z0-9-]{0,63}`.
bool isValidRecordName(std::string_view name);

// {"name", "total_resource_slots": {slot: amount}, "default_session_slots": {slot: amount},
// "default_for_unspecified": "LIMITED" | "UNLIMITED", "max_concurrent_sessions",
// "max_pending_session_count", "max_vfolder_count", "max_vfolder_size" (bytes or "10g"; 0:
// unlimited)}. Amounts are read like a session's request ("4g" for a
// bytes slot) from slots in `types`; "Infinity" is no limit; defaults are for intrinsic
// slots only. created_at_ms is the manager's to set and refused here.
Result<ResourcePolicyRecord> resourcePolicyFromJson(const nlohmann::json& doc, const SlotTypeTable& types);
nlohmann::json resourcePolicyToJson(const ResourcePolicyRecord& policy);  // with created_at_ms

// {"name", "description", "sequencer", "selector", "options": {"sequencer": {...},
// "selector": {...}}, "slot_priority": [slot, ...], "hol_max_passes", "hol_max_wait_ms",
// "active"}. Sequencer and selector names are checked for shape only: placement resolves them.
Result<ScalingGroupRecord> scalingGroupFromJson(const nlohmann::json& doc);
nlohmann::json scalingGroupToJson(const ScalingGroupRecord& group);  // with created_at_ms

// The API's edits for AdminService: a create reads the whole record from `doc`; a PATCH
// lays the given fields over the stored record's JSON, replacing whole fields.
RecordEdit<ScalingGroupRecord> scalingGroupCreate(const nlohmann::json& doc);
RecordEdit<ScalingGroupRecord> scalingGroupPatch(const nlohmann::json& fields);
RecordEdit<ResourcePolicyRecord> resourcePolicyCreate(const nlohmann::json& doc);
RecordEdit<ResourcePolicyRecord> resourcePolicyPatch(const nlohmann::json& fields);

}  // namespace bai::manager
