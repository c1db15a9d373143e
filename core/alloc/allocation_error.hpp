// Why an allocation failed, with the numbers a user needs to fix the request.
#pragma once

#include <bai/slots.hpp>

#include <string>
#include <vector>

namespace bai::core {

enum class AllocationErrorKind {
  InsufficientResource,          // not enough free capacity for the slot
  InvalidResourceCombination,    // two mutually exclusive slots requested together
  InvalidResourceArgument,       // negative, infinite, non-integral for a discrete slot, unique != 1, bad free/apply
  NotMultipleOfQuantum,          // fractional request not a multiple of the map's quantum
  FractionalResourceFragmented,  // enough in total, but the guard forbids splitting it across devices
  UnsupportedResource,           // no map serves the slot
};

const char* allocationErrorKindName(AllocationErrorKind kind);

struct AllocationError {
  AllocationErrorKind kind = AllocationErrorKind::InvalidResourceArgument;
  std::string slot;
  Quantity requested;
  Quantity allocatable;
  std::vector<Quantity> nearestValid;  // NotMultipleOfQuantum: the valid amounts around the request
  std::string message;                 // one sentence naming all of the above
};

}  // namespace bai::core
