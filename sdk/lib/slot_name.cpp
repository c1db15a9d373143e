#include <bai/slots.hpp>

#include <algorithm>
#include <stdexcept>

namespace bai {
namespace {

constexpr std::size_t kMaxSlotNameLength = 64;

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// device: [a-z][a-z0-9_-]*   major: [a-z0-9][a-z0-9_-]*   minor: [a-z0-9][a-z0-9._+-]*
bool validPart(std::string_view part, bool mustStartWithLetter, std::string_view extra) {
  if (part.empty()) return false;
  if (mustStartWithLetter ? !(part[0] >= 'a' && part[0] <= 'z') : !isLowerAlnum(part[0])) return false;
  return std::all_of(part.begin() + 1, part.end(), [&](char c) {
    return isLowerAlnum(c) || extra.find(c) != std::string_view::npos;
  });
}

}  // namespace

Result<SlotName> SlotName::parse(std::string_view text) {
  auto invalid = [&](const std::string& why) {
    return fail(ErrorCode::InvalidArgument, "invalid slot name '" + std::string(text) + "': " + why);
  };
  if (text.empty()) return invalid("empty");
  if (text.size() > kMaxSlotNameLength) return invalid("longer than 64 characters");
  const std::size_t dot = text.find('.');
  const std::size_t colon = text.find(':');
  if (colon != std::string_view::npos && (dot == std::string_view::npos || colon < dot)) {
    return invalid("a ':minor' part needs a '.major' part before it");
  }
  std::string_view device = text.substr(0, dot);
  if (!validPart(device, true, "_-")) {
    return invalid("the device part must start with a-z and use only a-z, 0-9, '_' and '-'");
  }
  if (dot != std::string_view::npos) {
    std::string_view major = text.substr(dot + 1, colon == std::string_view::npos ? std::string_view::npos : colon - dot - 1);
    if (!validPart(major, false, "_-")) return invalid("the major part must use only a-z, 0-9, '_' and '-'");
    if (colon != std::string_view::npos) {
      std::string_view minor = text.substr(colon + 1);
      if (!validPart(minor, false, "._+-")) return invalid("the minor part must use only a-z, 0-9 and '._+-'");
    }
  }
  return SlotName(std::string(text));
}

SlotName SlotName::of(std::string_view text) {
  auto parsed = parse(text);
  if (!parsed) throw std::invalid_argument(parsed.error().message);
  return std::move(parsed).value();
}

std::string_view SlotName::device() const {
  return std::string_view(name_).substr(0, name_.find('.'));
}

std::string_view SlotName::major() const {
  const std::size_t dot = name_.find('.');
  if (dot == std::string::npos) return {};
  const std::size_t colon = name_.find(':', dot);
  return std::string_view(name_).substr(dot + 1, colon == std::string::npos ? std::string::npos : colon - dot - 1);
}

std::string_view SlotName::minor() const {
  const std::size_t colon = name_.find(':');
  return colon == std::string::npos ? std::string_view{} : std::string_view(name_).substr(colon + 1);
}

const char* slotTypeName(SlotType type) {
  switch (type) {
    case SlotType::Count: return "count";
    case SlotType::Bytes: return "bytes";
    case SlotType::Unique: return "unique";
    case SlotType::Unified: return "unified";
    case SlotType::Fraction: return "fraction";
  }
  return "unknown";
}

Result<SlotType> parseSlotType(std::string_view text) {
  for (SlotType type : {SlotType::Count, SlotType::Bytes, SlotType::Unique, SlotType::Unified, SlotType::Fraction}) {
    if (text == slotTypeName(type)) return type;
  }
  return fail(ErrorCode::InvalidArgument,
              "unknown slot type '" + std::string(text) + "' (expected count, bytes, unique, unified or fraction)");
}

SlotTypeTable::SlotTypeTable(std::initializer_list<std::pair<SlotName, SlotType>> entries) {
  for (const auto& [slot, type] : entries) {
    if (auto added = add(slot, type); !added) throw std::invalid_argument(added.error().message);
  }
}

Result<void> SlotTypeTable::add(const SlotName& slot, SlotType type) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), slot,
                             [](const auto& entry, const SlotName& key) { return entry.first < key; });
  if (it != entries_.end() && it->first == slot) {
    if (it->second == type) return {};
    return fail(ErrorCode::Conflict, "slot '" + slot.str() + "' is already known as " + slotTypeName(it->second) +
                                         ", not " + slotTypeName(type));
  }
  entries_.insert(it, {slot, type});
  return {};
}

const SlotType* SlotTypeTable::find(std::string_view slot) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), slot,
                             [](const auto& entry, std::string_view key) { return entry.first.str() < key; });
  return (it != entries_.end() && it->first.str() == slot) ? &it->second : nullptr;
}

}  // namespace bai
