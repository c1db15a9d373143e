#include <bai/slots.hpp>

#include "bounded_json.hpp"

#include <algorithm>

namespace bai {
namespace {

const Quantity kZero;

auto findEntry(const std::vector<ResourceSlot::Entry>& entries, std::string_view slot) {
  return std::lower_bound(entries.begin(), entries.end(), slot,
                          [](const ResourceSlot::Entry& e, std::string_view key) { return e.first.str() < key; });
}

// A JSON number is taken only when it denotes an exact quantity: integers always,
// floats when their shortest round-trip text has at most 6 fractional digits.
Result<Quantity> quantityFromJson(const nlohmann::json& value) {
  if (value.is_string()) return Quantity::parse(value.get_ref<const std::string&>());
  if (value.is_number_integer() && !value.is_number_unsigned()) return Quantity(value.get<std::int64_t>());
  if (value.is_number_unsigned()) {
    return Quantity::fromRaw(static_cast<__int128>(value.get<std::uint64_t>()) * Quantity::kScale);
  }
  if (value.is_number_float()) return Quantity::fromDouble(value.get<double>());
  return fail(ErrorCode::InvalidArgument, "expected a decimal string or number, got " + std::string(value.type_name()));
}

}  // namespace

ResourceSlot::ResourceSlot(std::initializer_list<Entry> entries) {
  for (const auto& [slot, amount] : entries) set(slot, amount);
}

Quantity ResourceSlot::get(std::string_view slot) const {
  auto it = findEntry(entries_, slot);
  return (it != entries_.end() && it->first.str() == slot) ? it->second : kZero;
}

Quantity ResourceSlot::get(const SlotName& slot) const { return get(std::string_view(slot.str())); }

bool ResourceSlot::contains(std::string_view slot) const {
  auto it = findEntry(entries_, slot);
  return it != entries_.end() && it->first.str() == slot;
}

void ResourceSlot::set(const SlotName& slot, Quantity amount) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), slot,
                             [](const Entry& e, const SlotName& key) { return e.first < key; });
  if (it != entries_.end() && it->first == slot) {
    it->second = amount;
  } else {
    entries_.insert(it, {slot, amount});
  }
}

bool ResourceSlot::isZero() const {
  return std::all_of(entries_.begin(), entries_.end(), [](const Entry& e) { return e.second.isZero(); });
}

// Visits the union of keys in order with both values (missing = 0).
template <class Op>
ResourceSlot ResourceSlot::combine(const ResourceSlot& a, const ResourceSlot& b, Op op) {
  ResourceSlot out;
  out.entries_.reserve(std::max(a.size(), b.size()));
  auto ia = a.entries_.begin(), ib = b.entries_.begin();
  while (ia != a.entries_.end() || ib != b.entries_.end()) {
    if (ib == b.entries_.end() || (ia != a.entries_.end() && ia->first < ib->first)) {
      out.entries_.emplace_back(ia->first, op(ia->second, kZero));
      ++ia;
    } else if (ia == a.entries_.end() || ib->first < ia->first) {
      out.entries_.emplace_back(ib->first, op(kZero, ib->second));
      ++ib;
    } else {
      out.entries_.emplace_back(ia->first, op(ia->second, ib->second));
      ++ia, ++ib;
    }
  }
  return out;
}

ResourceSlot operator+(const ResourceSlot& a, const ResourceSlot& b) {
  return ResourceSlot::combine(a, b, [](Quantity x, Quantity y) { return x + y; });
}

ResourceSlot operator-(const ResourceSlot& a, const ResourceSlot& b) {
  return ResourceSlot::combine(a, b, [](Quantity x, Quantity y) { return x - y; });
}

std::partial_ordering operator<=>(const ResourceSlot& a, const ResourceSlot& b) {
  bool anyLess = false, anyGreater = false;
  auto ia = a.entries_.begin(), ib = b.entries_.begin();
  auto note = [&](Quantity x, Quantity y) {
    anyLess |= x < y;
    anyGreater |= x > y;
  };
  while (ia != a.entries_.end() || ib != b.entries_.end()) {
    if (ib == b.entries_.end() || (ia != a.entries_.end() && ia->first < ib->first)) {
      note(ia->second, kZero);
      ++ia;
    } else if (ia == a.entries_.end() || ib->first < ia->first) {
      note(kZero, ib->second);
      ++ib;
    } else {
      note(ia->second, ib->second);
      ++ia, ++ib;
    }
  }
  if (anyLess && anyGreater) return std::partial_ordering::unordered;
  if (anyLess) return std::partial_ordering::less;
  if (anyGreater) return std::partial_ordering::greater;
  return std::partial_ordering::equivalent;
}

bool operator==(const ResourceSlot& a, const ResourceSlot& b) { return (a <=> b) == 0; }

std::string ResourceSlot::toJson() const {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [slot, amount] : entries_) object[slot.str()] = amount.toString();
  return object.dump();
}

Result<ResourceSlot> ResourceSlot::fromJson(std::string_view json) {
  internal::BoundedJson parsed = internal::parseBoundedJson(json);
  if (!parsed) return fail(ErrorCode::InvalidArgument, "resource slots: " + parsed.error);
  const nlohmann::json& document = parsed.document;
  if (!document.is_object()) return fail(ErrorCode::InvalidArgument, "resource slots: expected a JSON object");
  ResourceSlot out;
  for (const auto& [key, value] : document.items()) {
    auto slot = SlotName::parse(key);
    if (!slot) return Failure{slot.error()};
    auto amount = quantityFromJson(value);
    if (!amount) {
      return fail(amount.error().code, "resource slot '" + key + "': " + amount.error().message);
    }
    out.set(*slot, *amount);
  }
  return out;
}

Result<ResourceSlot> ResourceSlot::parseUserInput(const std::vector<std::pair<std::string, std::string>>& input,
                                                  const SlotTypeTable& types) {
  ResourceSlot out;
  for (const auto& entry : input) {
    // Named references, not a structured binding: clang before 16 (the fuzzing build)
    // cannot capture a binding in the lambda below.
    const std::string& key = entry.first;
    const std::string& text = entry.second;
    auto slot = SlotName::parse(key);
    if (!slot) return Failure{slot.error()};
    const SlotType* type = types.find(key);
    if (type == nullptr) return fail(ErrorCode::NotFound, "unknown resource slot '" + key + "'");
    if (out.contains(key)) return fail(ErrorCode::InvalidArgument, "resource slot '" + key + "' given twice");
    auto bad = [&](const std::string& why) {
      return fail(ErrorCode::InvalidArgument, "resource slot '" + key + "' = '" + text + "': " + why);
    };
    Quantity amount;
    switch (*type) {
      case SlotType::Bytes: {
        auto size = BinarySize::parse(text);
        if (!size) return fail(size.error().code, "resource slot '" + key + "': " + size.error().message);
        amount = size->toQuantity();
        break;
      }
      case SlotType::Count:
      case SlotType::Fraction:
      case SlotType::Unique: {
        auto parsed = Quantity::parse(text);
        if (!parsed) return fail(parsed.error().code, "resource slot '" + key + "': " + parsed.error().message);
        amount = *parsed;
        if (amount.isNegative()) return bad("negative");
        if (amount.isInfinite()) return bad("must be finite");
        if (*type == SlotType::Unique && amount != Quantity(0) && amount != Quantity(1)) {
          return bad("a unique slot is requested as exactly 1");
        }
        break;
      }
      case SlotType::Unified:
        return bad("a unified slot is given to every session and cannot be requested");
    }
    out.set(*slot, amount);
  }
  return out;
}

}  // namespace bai
