// The cluster's slot types, learned from agents: a name, once known, keeps its type
// forever (never silently removed); an agent reporting another type for it is refused.
#pragma once

#include <bai/slots.hpp>

#include <map>
#include <string>
#include <vector>

namespace bai::manager {

struct SlotTypeConflict {
  std::string slot;
  SlotType known;
  SlotType reported;
};

struct LearnedSlots {
  std::map<std::string, SlotType> added;     // new to the cluster: to be stored
  std::map<std::string, SlotType> refined;   // known as count, now reported as fraction: to be stored
  std::vector<SlotTypeConflict> conflicts;  // refused: the slot is not taken from that agent
};

// Not thread-safe: the manager guards it with its state lock.
class SlotRegistry {
 public:
  explicit SlotRegistry(std::map<std::string, SlotType> known = {});

  // What `reported` would add or conflict with; changes nothing.
  LearnedSlots compare(const std::map<std::string, SlotType>& reported) const;
  // Takes `learned`'s added and refined types.
  void add(const LearnedSlots& learned);

  const std::map<std::string, SlotType>& all() const { return types_; }
  const SlotType* find(const std::string& slot) const;
  SlotTypeTable table() const;

 private:
  std::map<std::string, SlotType> types_;
};

}  // namespace bai::manager
