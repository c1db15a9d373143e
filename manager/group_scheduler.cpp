#include "group_scheduler.hpp"

#include "parse_json.hpp"

#include <nlohmann/json.hpp>

namespace bai::manager {
namespace {

// The options of one policy: {"sequencer": {...}, "selector": {...}} -> the part for `kind`.
std::string optionsFor(const std::string& optionsJson, const char* kind) {
  const auto options = parseJson(optionsJson);
  if (options && options->is_object() && options->contains(kind) && (*options)[kind].is_object()) {
    return (*options)[kind].dump();
  }
  return "{}";
}

}  // namespace

bool GroupScheduler::differsFrom(const ScalingGroupRecord& record) const {
  return record.sequencer != config.sequencer || record.selector != config.selector ||
         record.optionsJson != config.optionsJson || record.slotPriority != config.slotPriority ||
         record.holMaxPasses != config.holMaxPasses || record.holMaxWaitMillis != config.holMaxWaitMillis ||
         record.active != config.active;
}

void configureGroup(GroupScheduler& group, const ScalingGroupRecord& record, const PolicyCatalog& catalog,
                    const SlotRegistry& slots) {
  const bool newPriority = record.slotPriority != group.config.slotPriority;
  group.config = record;
  group.policyError.clear();
  group.sequencer.reset();
  group.selector.reset();
  auto sequencer = catalog.makeSequencer(record.sequencer, optionsFor(record.optionsJson, "sequencer"));
  auto selector = catalog.makeSelector(record.selector, optionsFor(record.optionsJson, "selector"));
  if (!sequencer) {
    group.policyError = "scaling group '" + record.name + "': sequencer: " + sequencer.error().message;
  } else if (!selector) {
    group.policyError = "scaling group '" + record.name + "': selector: " + selector.error().message;
  } else {
    group.sequencer = std::move(*sequencer);
    group.selector = std::move(*selector);
  }
  if (newPriority) group.index = PlacementIndex(record.slotPriority, &slots);  // refilled by the caller
}

Result<void> checkPolicies(const ScalingGroupRecord& record, const PolicyCatalog& catalog) {
  if (auto sequencer = catalog.makeSequencer(record.sequencer, optionsFor(record.optionsJson, "sequencer")); !sequencer) {
    return fail(ErrorCode::InvalidArgument, "sequencer: " + sequencer.error().message);
  }
  if (auto selector = catalog.makeSelector(record.selector, optionsFor(record.optionsJson, "selector")); !selector) {
    return fail(ErrorCode::InvalidArgument, "selector: " + selector.error().message);
  }
  return {};
}

}  // namespace bai::manager
