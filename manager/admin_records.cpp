#include "admin_records.hpp"

#include <bai/protocol.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <set>

namespace bai::manager {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxDescription = 1024;
constexpr std::size_t kMaxImagePattern = 255;  // the longest image reference

Failure<Error> invalid(std::string message) { return fail(ErrorCode::InvalidArgument, std::move(message)); }

Result<std::string> readName(const Json& value, const std::string& field) {
  if (!value.is_string() || !isValidRecordName(value.get_ref<const std::string&>())) {
    return invalid(field + " must be a string matching [a-z0-9][a-z0-9-]{0,63}");
  }
  return value.get<std::string>();
}

// A whole number from 0 to `max`; a fraction (1.0 included) is refused.
Result<std::int64_t> readCount(const Json& value, const std::string& field, std::int64_t max) {
  // The parser keeps non-negative integers unsigned; built documents may hold them signed.
  const bool inRange = value.is_number_unsigned()  ? value.get<std::uint64_t>() <= static_cast<std::uint64_t>(max)
                       : value.is_number_integer() ? value.get<std::int64_t>() >= 0 && value.get<std::int64_t>() <= max
                                                   : false;
  if (!inRange) return invalid(field + " must be a whole number from 0 to " + std::to_string(max));
  return value.get<std::int64_t>();
}

Result<bool> readBool(const Json& value, const std::string& field) {
  if (!value.is_boolean()) return invalid(field + " must be true or false");
  return value.get<bool>();
}

// One limit of a policy, read like a session's request of that slot; "Infinity" is no limit.
Result<Quantity> readLimit(const std::string& slot, const Json& value, const SlotTypeTable& types) {
  const std::string field = "total_resource_slots." + slot;
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_number()) {
    text = value.dump();  // the number's own text, never a float round trip
  } else {
    return invalid(field + " must be a number or a string such as \"4g\"");
  }
  auto name = SlotName::parse(slot);
  if (!name) return invalid("total_resource_slots: '" + slot + "' is not a slot name: " + name.error().message);
  const SlotType* type = types.find(slot);
  if (type == nullptr) return invalid(field + ": no agent of this cluster has ever offered this slot");
  if (*type == SlotType::Unified) return invalid(field + ": a unified slot is given to every session and has no limit");
  if (auto amount = Quantity::parse(text); amount && amount->isInfinite() && !amount->isNegative()) {
    return Quantity::infinity();
  }
  // A limit on a unique slot counts slices (a request takes exactly one), so it reads as a count.
  const SlotTypeTable table{{*name, *type == SlotType::Unique ? SlotType::Count : *type}};
  auto parsed = ResourceSlot::parseUserInput({{slot, text}}, table);
  if (!parsed) return invalid("total_resource_slots: " + parsed.error().message);
  return parsed->get(slot);
}

// One amount of default_session_slots: an intrinsic slot the cluster knows, read like a
// session's request of it (a default is a request made for the user).
Result<Quantity> readDefaultAmount(const std::string& slot, const Json& value, const SlotTypeTable& types) {
  const std::string field = "default_session_slots." + slot;
  if (slot.find('.') != std::string::npos) {
    return invalid(field + ": only intrinsic slots (no namespace, such as cpu and mem) take a default");
  }
  if (!value.is_string() && !value.is_number()) return invalid(field + " must be a number or a string such as \"1g\"");
  const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (types.find(slot) == nullptr) return invalid(field + ": no agent of this cluster has ever offered this slot");
  auto parsed = ResourceSlot::parseUserInput({{slot, text}}, types);
  if (!parsed) return invalid("default_session_slots: " + parsed.error().message);
  return parsed->get(slot);
}

Result<ResourceSlot> readDefaults(const Json& value, const SlotTypeTable& types) {
  if (!value.is_object()) return invalid("default_session_slots must be an object {slot: amount}");
  ResourceSlot defaults;
  for (const auto& [slot, amount] : value.items()) {
    auto parsed = readDefaultAmount(slot, amount, types);
    if (!parsed) return Failure{parsed.error()};
    defaults.set(SlotName::of(slot), *parsed);
  }
  return defaults;
}

// allowed_images: patterns of 1 to 255 characters ('*' for any run), each once.
Result<std::vector<std::string>> readImagePatterns(const Json& value) {
  if (!value.is_array()) return invalid("allowed_images must be an array of image patterns such as \"bai-test/*\"");
  std::vector<std::string> patterns;
  for (const auto& pattern : value) {
    if (!pattern.is_string()) return invalid("allowed_images must be an array of strings, not " + pattern.dump());
    const std::string& text = pattern.get_ref<const std::string&>();
    if (text.empty() || text.size() > kMaxImagePattern) {
      return invalid("allowed_images: a pattern must be 1 to " + std::to_string(kMaxImagePattern) +
                     " characters, not " + std::to_string(text.size()));
    }
    if (std::find(patterns.begin(), patterns.end(), text) != patterns.end()) {
      return invalid("allowed_images names '" + text + "' twice");
    }
    patterns.push_back(text);
  }
  return patterns;
}

}  // namespace

bool isValidRecordName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Result<ResourcePolicyRecord> resourcePolicyFromJson(const Json& doc, const SlotTypeTable& types) {
  if (!doc.is_object()) return invalid("a resource policy is a JSON object");
  ResourcePolicyRecord policy;
  for (const auto& [key, value] : doc.items()) {
    if (key == "name") {
      auto name = readName(value, key);
      if (!name) return Failure{name.error()};
      policy.name = *name;
    } else if (key == "total_resource_slots") {
      if (!value.is_object()) return invalid("total_resource_slots must be an object {slot: amount}");
      for (const auto& [slot, amount] : value.items()) {
        auto limit = readLimit(slot, amount, types);
        if (!limit) return Failure{limit.error()};
        policy.totalResourceSlots.set(SlotName::of(slot), *limit);
      }
    } else if (key == "default_session_slots") {
      auto defaults = readDefaults(value, types);
      if (!defaults) return Failure{defaults.error()};
      policy.defaultSessionSlots = std::move(*defaults);
    } else if (key == "default_for_unspecified") {
      if (value != "LIMITED" && value != "UNLIMITED") {
        return invalid("default_for_unspecified must be \"LIMITED\" or \"UNLIMITED\"");
      }
      policy.defaultUnlimited = value == "UNLIMITED";
    } else if (key == "max_concurrent_sessions" || key == "max_pending_session_count") {
      auto count = readCount(value, key, INT_MAX);
      if (!count) return Failure{count.error()};
      int& field = key == "max_concurrent_sessions" ? policy.maxConcurrentSessions : policy.maxPendingSessions;
      field = static_cast<int>(*count);
    } else if (key == "max_vfolder_count") {
      auto count = readCount(value, key, INT_MAX);
      if (!count) return Failure{count.error()};
      policy.maxVfolderCount = *count;
    } else if (key == "max_vfolder_size") {
      // Bytes as a number or as people write sizes ("10g"); stored in SQLite's signed integers.
      auto size = value.is_string() ? BinarySize::parse(value.get<std::string>()) : Result<BinarySize>(BinarySize{});
      if (value.is_string() && !size) return invalid("max_vfolder_size: " + size.error().message);
      if (!value.is_string()) {
        auto count = readCount(value, key, INT64_MAX);
        if (!count) return Failure{count.error()};
        size = BinarySize(static_cast<std::uint64_t>(*count));
      }
      if (size->bytes() > static_cast<std::uint64_t>(INT64_MAX)) return invalid("max_vfolder_size is above 2^63 - 1 bytes");
      policy.maxVfolderSize = size->bytes();
    } else {
      return invalid("unknown field '" + key +
                     "' (name, total_resource_slots, default_session_slots, default_for_unspecified, "
                     "max_concurrent_sessions, max_pending_session_count, max_vfolder_count, max_vfolder_size)");
    }
  }
  if (policy.name.empty()) return invalid("name is required");
  return policy;
}

Json resourcePolicyToJson(const ResourcePolicyRecord& policy) {
  Json slots = Json::object();
  for (const auto& [slot, amount] : policy.totalResourceSlots) slots[slot.str()] = amount.toString();
  Json defaults = Json::object();
  for (const auto& [slot, amount] : policy.defaultSessionSlots) defaults[slot.str()] = amount.toString();
  return {{"name", policy.name},
          {"total_resource_slots", slots},
          {"default_session_slots", defaults},
          {"default_for_unspecified", policy.defaultUnlimited ? "UNLIMITED" : "LIMITED"},
          {"max_concurrent_sessions", policy.maxConcurrentSessions},
          {"max_pending_session_count", policy.maxPendingSessions},
          {"max_vfolder_count", policy.maxVfolderCount},
          {"max_vfolder_size", policy.maxVfolderSize},
          {"created_at_ms", policy.createdAtMillis}};
}

Result<ScalingGroupRecord> scalingGroupFromJson(const Json& doc) {
  if (!doc.is_object()) return invalid("a scaling group is a JSON object");
  ScalingGroupRecord group;
  for (const auto& [key, value] : doc.items()) {
    if (key == "name" || key == "sequencer" || key == "selector") {
      auto name = readName(value, key);
      if (!name) return Failure{name.error()};
      std::string& field = key == "name" ? group.name : key == "sequencer" ? group.sequencer : group.selector;
      field = *name;
    } else if (key == "description") {
      if (!value.is_string() || value.get_ref<const std::string&>().size() > kMaxDescription) {
        return invalid("description must be a string of at most " + std::to_string(kMaxDescription) + " bytes");
      }
      group.description = value.get<std::string>();
    } else if (key == "options") {
      if (!value.is_object()) return invalid("options must be an object {\"sequencer\": {...}, \"selector\": {...}}");
      for (const auto& [part, settings] : value.items()) {
        if (part != "sequencer" && part != "selector") {
          return invalid("unknown field 'options." + part + "' (options.sequencer, options.selector)");
        }
        if (!settings.is_object()) return invalid("options." + part + " must be an object");
      }
      group.optionsJson = value.dump();
    } else if (key == "slot_priority") {
      if (!value.is_array()) return invalid("slot_priority must be an array of slot names");
      std::set<std::string> seen;
      for (const auto& slot : value) {
        if (!slot.is_string() || !SlotName::parse(slot.get<std::string>())) {
          return invalid("slot_priority must be an array of slot names, not " + slot.dump());
        }
        if (!seen.insert(slot.get<std::string>()).second) {
          return invalid("slot_priority names '" + slot.get<std::string>() + "' twice");
        }
        group.slotPriority.push_back(slot.get<std::string>());
      }
    } else if (key == "hol_max_passes") {
      auto passes = readCount(value, key, INT_MAX);
      if (!passes) return Failure{passes.error()};
      group.holMaxPasses = static_cast<int>(*passes);
    } else if (key == "hol_max_wait_ms") {
      auto wait = readCount(value, key, INT64_MAX);
      if (!wait) return Failure{wait.error()};
      group.holMaxWaitMillis = *wait;
    } else if (key == "active") {
      auto active = readBool(value, key);
      if (!active) return Failure{active.error()};
      group.active = *active;
    } else if (key == "image_pull_policy") {
      auto policy = value.is_string() ? protocol::parsePullPolicy(value.get<std::string>())
                                      : Result<protocol::PullPolicy>(invalid("not a string"));
      if (!policy) return invalid("image_pull_policy must be \"never\", \"if-missing\" or \"always\", not " + value.dump());
      group.imagePullPolicy = protocol::pullPolicyName(*policy);
    } else if (key == "allowed_images") {
      auto patterns = readImagePatterns(value);
      if (!patterns) return Failure{patterns.error()};
      group.allowedImages = std::move(*patterns);
    } else {
      return invalid("unknown field '" + key +
                     "' (name, description, sequencer, selector, options, slot_priority, hol_max_passes, "
                     "hol_max_wait_ms, active, image_pull_policy, allowed_images)");
    }
  }
  if (group.name.empty()) return invalid("name is required");
  return group;
}

Json scalingGroupToJson(const ScalingGroupRecord& group) {
  Json options = Json::parse(group.optionsJson, nullptr, false);
  return {{"name", group.name},
          {"description", group.description},
          {"sequencer", group.sequencer},
          {"selector", group.selector},
          {"options", options.is_discarded() ? Json::object() : options},
          {"slot_priority", group.slotPriority},
          {"hol_max_passes", group.holMaxPasses},
          {"hol_max_wait_ms", group.holMaxWaitMillis},
          {"active", group.active},
          {"image_pull_policy", group.imagePullPolicy},
          {"allowed_images", group.allowedImages},
          {"created_at_ms", group.createdAtMillis}};
}

namespace {

// A PATCH: the stored record's JSON with the given fields replacing whole fields; the
// creation time is the manager's.
Result<nlohmann::json> overlay(nlohmann::json stored, const nlohmann::json& fields) {
  if (!fields.is_object()) return fail(ErrorCode::InvalidArgument, "the body is not a JSON object");
  stored.erase("created_at_ms");
  for (const auto& [key, value] : fields.items()) stored[key] = value;
  return stored;
}

}  // namespace

RecordEdit<ScalingGroupRecord> scalingGroupCreate(const nlohmann::json& doc) {
  return [doc](const ScalingGroupRecord&, const SlotTypeTable&) { return scalingGroupFromJson(doc); };
}

RecordEdit<ScalingGroupRecord> scalingGroupPatch(const nlohmann::json& fields) {
  return [fields](const ScalingGroupRecord& stored, const SlotTypeTable&) -> Result<ScalingGroupRecord> {
    auto merged = overlay(scalingGroupToJson(stored), fields);
    if (!merged) return Failure{merged.error()};
    return scalingGroupFromJson(*merged);
  };
}

RecordEdit<ResourcePolicyRecord> resourcePolicyCreate(const nlohmann::json& doc) {
  return [doc](const ResourcePolicyRecord&, const SlotTypeTable& types) { return resourcePolicyFromJson(doc, types); };
}

RecordEdit<ResourcePolicyRecord> resourcePolicyPatch(const nlohmann::json& fields) {
  return [fields](const ResourcePolicyRecord& stored, const SlotTypeTable& types) -> Result<ResourcePolicyRecord> {
    auto merged = overlay(resourcePolicyToJson(stored), fields);
    if (!merged) return Failure{merged.error()};
    return resourcePolicyFromJson(*merged, types);
  };
}

}  // namespace bai::manager
