#include "slot_registry.hpp"

namespace bai::manager {

SlotRegistry::SlotRegistry(std::map<std::string, SlotType> known) : types_(std::move(known)) {}

LearnedSlots SlotRegistry::compare(const std::map<std::string, SlotType>& reported) const {
  LearnedSlots learned;
  for (const auto& [slot, type] : reported) {
    auto it = types_.find(slot);
    if (it == types_.end()) {
      learned.added.emplace(slot, type);
    } else if (it->second == SlotType::Count && type == SlotType::Fraction) {
      learned.refined.emplace(slot, type);
    } else if (it->second != type) {
      learned.conflicts.push_back({slot, it->second, type});
    }
  }
  return learned;
}

void SlotRegistry::add(const LearnedSlots& learned) {
  for (const auto& [slot, type] : learned.added) types_.emplace(slot, type);
  for (const auto& [slot, type] : learned.refined) types_[slot] = type;
}

const SlotType* SlotRegistry::find(const std::string& slot) const {
  auto it = types_.find(slot);
  return it == types_.end() ? nullptr : &it->second;
}

SlotTypeTable SlotRegistry::table() const {
  SlotTypeTable table;
  for (const auto& [slot, type] : types_) {
    if (auto name = SlotName::parse(slot)) (void)table.add(*name, type);
  }
  return table;
}

}  // namespace bai::manager
