// Allocation maps: which device of one slot holds how much of it. Plugins describe
// devices; the maps decide placement, so every plugin gets the same semantics.
#pragma once

#include "affinity.hpp"
#include "allocation_error.hpp"

#include <bai/result.hpp>
#include <bai/slots.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bai::core {

enum class AllocationStrategy {
  Fill,    // most-free device first, as few devices as possible
  Evenly,  // spread the request evenly (fractions: best single fit, else the most even run of devices)
};

const char* allocationStrategyName(AllocationStrategy strategy);
Result<AllocationStrategy> parseAllocationStrategy(std::string_view text);

struct DeviceSpec {
  std::string id;
  Quantity capacity;
  int numaNode = -1;  // -1: unknown, fits any NUMA preference
};

struct DeviceGrant {
  std::uint32_t device = 0;  // index into the map's devices
  Quantity amount;
  friend bool operator==(const DeviceGrant&, const DeviceGrant&) = default;
};
using Grants = std::vector<DeviceGrant>;  // sorted by device index, amounts > 0

struct AllocMapOptions {
  AllocationStrategy strategy = AllocationStrategy::Evenly;
  // Fraction maps only: the smallest grantable step, and whether a request that fits in
  // one device's capacity must be placed on a single device.
  // Under the guard, a request larger than a device is split into near-equal shares
  // (amount / n each, some one quantum more) or refused as fragmented.
  Quantity quantum = Quantity::fromRaw(Quantity::kScale / 100);
  bool fragmentationGuard = false;
  // Fraction maps with the strategy evenly only (Backend.AI's min_memory): a device takes
  // part in a grant only with at least this much free; zero lets every device take part.
  Quantity minFree{};
};

// One slot (e.g. cuda.device) over a set of devices. Amounts are kept as integers of
// the map's unit (1 for discrete maps, the quantum for fraction maps), so every grant
// is exact and sums equal requests.
class AllocMap {
 public:
  virtual ~AllocMap() = default;
  AllocMap(const AllocMap&) = delete;
  AllocMap& operator=(const AllocMap&) = delete;

  const SlotName& slot() const { return slot_; }
  SlotType slotType() const { return slotType_; }
  AllocationStrategy strategy() const { return strategy_; }
  virtual bool isFraction() const = 0;
  // The smallest grantable step: 1 for discrete maps, the fraction map's quantum.
  Quantity quantum() const { return toQuantity(1); }

  std::size_t deviceCount() const { return devices_.size(); }
  const std::string& deviceId(std::uint32_t device) const { return devices_.at(device).id; }
  int numaNode(std::uint32_t device) const { return devices_.at(device).numaNode; }
  std::optional<std::uint32_t> findDevice(std::string_view id) const;
  Quantity capacity(std::uint32_t device) const { return toQuantity(devices_.at(device).capacity); }
  Quantity allocated(std::uint32_t device) const { return toQuantity(devices_.at(device).used); }
  bool enabled(std::uint32_t device) const { return devices_.at(device).enabled; }

  Quantity capacityTotal() const;
  // Capacity of the enabled devices plus what disabled ones still hold: what the node
  // offers now, so that it less allocatedTotal is freeTotal. A disabled (unhealthy,
  // masked, withdrawn) device leaves service as the sessions holding it end.
  Quantity capacityInService() const;
  Quantity allocatedTotal() const;
  // Free capacity on enabled devices.
  Quantity freeTotal() const;
  // The largest amount L such that every request up to L (in valid steps) is granted
  // now: what the manager may place here without failing on fragmentation.
  Quantity largestAllocatable() const;

  // Grants exactly `amount` or fails with the reason; the map is unchanged on failure.
  Result<Grants, AllocationError> allocate(Quantity amount, const AffinityHint& hint = {});
  // Gives back a grant; freeing more than a device holds is an error and changes nothing.
  Result<void, AllocationError> free(const Grants& grants);
  Result<void, AllocationError> checkFree(const Grants& grants) const;
  // Re-applies a recorded grant (agent restart); exceeding a device's capacity is an error.
  Result<void, AllocationError> apply(const Grants& grants);
  Result<void, AllocationError> checkApply(const Grants& grants) const;
  void clear();
  // A disabled device (unhealthy or masked) gets no new grants; what it holds stays.
  void setEnabled(std::uint32_t device, bool enabled) { devices_.at(device).enabled = enabled; }
  // After a restart, a session holds `amount` on a device its plugin no longer offers
  // (masked, gone): the device is kept, disabled, with a capacity of what sessions hold
  // on it, so the amount stays allocated until they end; then it leaves service.
  Result<DeviceGrant, AllocationError> holdOnRetired(const std::string& deviceId, Quantity amount);
  bool retired(std::uint32_t device) const { return devices_.at(device).retired; }

 protected:
  struct Device {
    std::string id;
    std::int64_t capacity = 0;  // in units
    std::int64_t used = 0;      // in units
    int numaNode = -1;
    std::uint32_t rankInNode = 0;  // position among the devices of its NUMA node
    bool enabled = true;
    bool retired = false;  // not offered: its capacity is what sessions still hold (holdOnRetired)
    std::int64_t free() const { return capacity - used; }
  };
  struct Placement {
    std::uint32_t device;
    std::int64_t units;
  };
  using PlaceResult = Result<std::vector<Placement>, AllocationError>;
  // A device that may take part in a grant, with its preference keys computed once.
  struct Candidate {
    std::int64_t free;
    std::uint32_t device;
    std::uint32_t rankInNode;
    int numaNode;
    bool hinted;
  };
  using Candidates = std::vector<Candidate>;
  // Preference order: hinted NUMA nodes, most free, interleaved across nodes, index.
  static bool preferred(const Candidate& a, const Candidate& b);
  // The same order as a function object, so that sorting algorithms inline it.
  static constexpr struct ByPreference {
    bool operator()(const Candidate& a, const Candidate& b) const {
      if (a.hinted != b.hinted) return a.hinted;
      if (a.free != b.free) return a.free > b.free;
      if (a.rankInNode != b.rankInNode) return a.rankInNode < b.rankInNode;
      if (a.numaNode != b.numaNode) return a.numaNode < b.numaNode;
      return a.device < b.device;
    }
  } byPreference{};

  AllocMap(SlotName slot, SlotType slotType, AllocationStrategy strategy, __int128 unitRaw);
  // Called by subclass constructors once the unit is known.
  Result<void> addDevices(const std::vector<DeviceSpec>& devices);

  Quantity toQuantity(std::int64_t units) const { return Quantity::fromRaw(units * unitRaw_); }
  virtual Result<std::int64_t, AllocationError> toUnits(Quantity amount) const = 0;
  // Chooses devices for `units` among candidates (enabled, free > 0, any order; may reorder them).
  virtual PlaceResult place(std::int64_t units, Candidates& candidates) const = 0;
  // From the free units of the enabled devices that have any (any order; may reorder them).
  virtual Quantity largestFor(std::vector<std::int64_t>& freeUnits) const;

  PlaceResult fill(std::int64_t units, Candidates& candidates) const;
  PlaceResult spreadEvenly(std::int64_t units, Candidates& candidates) const;
  AllocationError error(AllocationErrorKind kind, Quantity requested, Quantity allocatable, std::string why) const;
  AllocationError insufficient(std::int64_t units, std::int64_t freeUnits) const;

  std::vector<Device> devices_;

 private:
  static constexpr int kAnyNode = -2;      // for candidates(): no NUMA restriction
  static constexpr int kHintedNodes = -3;  // for candidates(): only devices the hint prefers
  // Enabled devices with free capacity on `onlyNode` (or as the constants above say), in
  // a per-thread buffer that stays valid until the next call on this thread.
  Candidates& candidates(const AffinityHint& hint, int onlyNode) const;
  PlaceResult placeWithAffinity(std::int64_t units, const AffinityHint& hint) const;
  PlaceResult toPlacements(const Grants& grants) const;
  PlaceResult placementsToFree(const Grants& grants) const;   // validated: each device holds it
  PlaceResult placementsToApply(const Grants& grants) const;  // validated: each device has room

  std::unordered_map<std::string, std::uint32_t> index_;  // device id -> index
  SlotName slot_;
  SlotType slotType_;
  AllocationStrategy strategy_;
  __int128 unitRaw_;
};

// Whole units per device: cores, GPUs, MIG slices, bytes. Requests must be integers.
class DiscreteAllocMap final : public AllocMap {
 public:
  static Result<std::unique_ptr<DiscreteAllocMap>> create(SlotName slot, SlotType slotType,
                                                          const std::vector<DeviceSpec>& devices,
                                                          AllocMapOptions options = {});
  bool isFraction() const override { return false; }

 private:
  DiscreteAllocMap(SlotName slot, SlotType slotType, AllocationStrategy strategy);
  Result<std::int64_t, AllocationError> toUnits(Quantity amount) const override;
  PlaceResult place(std::int64_t units, Candidates& candidates) const override;
};

// Decimal shares in steps of a quantum: fractional GPUs. A device's capacity is used
// down to a whole number of quanta.
class FractionAllocMap final : public AllocMap {
 public:
  static Result<std::unique_ptr<FractionAllocMap>> create(SlotName slot, SlotType slotType,
                                                          const std::vector<DeviceSpec>& devices,
                                                          AllocMapOptions options = {});
  bool isFraction() const override { return true; }

 private:
  FractionAllocMap(SlotName slot, SlotType slotType, const AllocMapOptions& options);
  Result<std::int64_t, AllocationError> toUnits(Quantity amount) const override;
  PlaceResult place(std::int64_t units, Candidates& candidates) const override;
  Quantity largestFor(std::vector<std::int64_t>& freeUnits) const override;
  PlaceResult placeMostEvenRun(std::int64_t units, Candidates& candidates) const;
  PlaceResult placeNearEqualShares(std::int64_t units, Candidates& candidates) const;
  std::vector<Placement> nearEqualShares(std::int64_t units, std::size_t devices, const Candidates& mostFreeFirst) const;
  bool takesPart(std::int64_t freeUnits) const;
  std::int64_t largestCapacity() const;

  bool fragmentationGuard_;
  std::int64_t minFreeUnits_ = 0;  // AllocMapOptions::minFree in quanta, rounded up; evenly only
};

}  // namespace bai::core
