// Allocation micro-benchmarks: the cost of one allocate+free pair for each map kind,
// strategy, device count and occupancy the scheduler meets, plus a realistic node, and
// a churn workload (section 4) that measures throughput and fragmentation failures.
//
// In sections 1-3 every iteration allocates a request and frees it again, so the map is
// in the same state at every iteration and the numbers do not drift with the iteration
// count. The churn changes the map on purpose, from a fixed pseudo-random stream.
//
// Naming: families whose name contains LARGE run up to 4,096 devices; the smoke test
// (`meson test --suite benchmark-smoke`) skips them with --benchmark_filter=-LARGE.
// Each sweep therefore exists twice: BM_<Kind><Strategy>/occupied:P over 8..1,024
// devices (cheap, in the smoke run) and BM_<Kind><Strategy>_LARGE/occupied:P over
// 8..4,096 devices, whose BigO line is the full-range growth figure.
// `--benchmark_filter=LARGE` runs only the full-range sweeps.

#include "alloc/alloc_map.hpp"
#include "alloc/node_allocator.hpp"

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace {

using bai::BinarySize;
using bai::Quantity;
using bai::ResourceSlot;
using bai::SlotName;
using bai::SlotType;
using namespace bai::core;  // the allocation maps under test

// ---- Setup helpers ----------------------------------------------------------------

using namespace bai::bench;  // bench_support.hpp

// `count` devices "<prefix>0", "<prefix>1", ... of equal capacity, numbered in blocks per
// NUMA node (0..count/numaNodes-1 on node 0, ...) the way hardware enumerates them.
std::vector<DeviceSpec> devices(const std::string& prefix, std::int64_t count, Quantity capacity, int numaNodes) {
  std::vector<DeviceSpec> out;
  out.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    out.push_back(DeviceSpec{prefix + std::to_string(i), capacity, static_cast<int>(i * numaNodes / count)});
  }
  return out;
}

AllocMapOptions withStrategy(AllocationStrategy strategy) {
  AllocMapOptions options;
  options.strategy = strategy;
  return options;
}

std::unique_ptr<AllocMap> discreteMap(const char* slot, SlotType type, std::vector<DeviceSpec> specs,
                                      AllocationStrategy strategy) {
  return orDie(DiscreteAllocMap::create(SlotName::of(slot), type, specs, withStrategy(strategy)),
               "DiscreteAllocMap::create");
}

// Fractional GPUs: capacity 1.0 each, quantum 0.01 (the AllocMapOptions default).
std::unique_ptr<AllocMap> fractionMap(std::int64_t count, AllocationStrategy strategy,
                                      bool fragmentationGuard = false) {
  AllocMapOptions options = withStrategy(strategy);
  options.fragmentationGuard = fragmentationGuard;
  return orDie(FractionAllocMap::create(SlotName::of("cuda.shares"), SlotType::Count,
                                        devices("cuda", count, Quantity(1), 2), options),
               "FractionAllocMap::create");
}

// The map's grant unit: 1 for discrete maps, the quantum for fraction maps.
Quantity unitOf(const AllocMap& map) {
  return map.isFraction() ? static_cast<const FractionAllocMap&>(map).quantum() : Quantity(1);
}

// Occupies about `percent`% of the map with one apply(), spread over every device
// instead of packed at one end (which is what a busy node looks like). Each device gets
// its error-diffused share of percent% (so the shares sum to the exact total), plus a
// zero-sum jitter of about 5% of its capacity (at least one unit) so that devices differ
// in free amount and the preference sort compares real keys. Clamping to [0, capacity]
// makes the result approximate; the occupied_pct counter reports the real figure.
void preOccupy(AllocMap& map, int percent) {
  if (percent == 0) return;
  static constexpr int kJitter[6] = {0, -1, +1, -1, +1, 0};
  const __int128 unitRaw = unitOf(map).raw();
  Grants grants;
  for (std::uint32_t i = 0; i < map.deviceCount(); ++i) {
    const auto cap = static_cast<std::int64_t>(map.capacity(i).raw() / unitRaw);
    const std::int64_t base = cap * percent * (i + 1) / 100 - cap * percent * i / 100;
    const std::int64_t jitter = kJitter[i % 6] * std::max<std::int64_t>(1, cap / 20);
    const std::int64_t units = std::clamp<std::int64_t>(base + jitter, 0, cap);
    if (units > 0) grants.push_back(DeviceGrant{i, Quantity::fromRaw(units * unitRaw)});
  }
  if (auto applied = map.apply(grants); !applied) die("apply: " + applied.error().message);
}

double occupiedPercent(const AllocMap& map) {
  return 100.0 * static_cast<double>(map.allocatedTotal().raw()) / static_cast<double>(map.capacityTotal().raw());
}

// ---- Measuring ----------------------------------------------------------------------

// Per-operation latency percentiles. libbenchmark reports the mean time per iteration
// (its statistics are across repetitions), so we keep our own samples: every
// kSampleStride-th allocate+free pair is bracketed by two steady_clock::now() calls
// (clock_gettime through the vDSO, ~20 ns each on x86-64 Linux). That adds about
// 40 ns / 16 = 2.5 ns to the mean per iteration, and each sample includes one clock
// read (~20 ns), which we do not subtract. The histogram never allocates.
constexpr std::uint64_t kSampleStride = 16;


// Runs `roundTrip` (one allocate+free; returns false after calling SkipWithError) once
// per iteration, timing every kSampleStride-th call for the percentiles.
template <class RoundTrip>
void runRoundTrips(benchmark::State& state, RoundTrip&& roundTrip) {
  bai::bench::LatencyHistogram sampler;
  std::uint64_t iteration = 0;
  for (auto _ : state) {
    bool ok;
    if (iteration++ % kSampleStride == 0) {
      const auto start = std::chrono::steady_clock::now();
      ok = roundTrip();
      sampler.add(std::chrono::steady_clock::now() - start);
    } else {
      ok = roundTrip();
    }
    if (!ok) return;
  }
  sampler.report(state, "", bai::bench::TimeUnit::Nanoseconds);
}

// One allocate+free of `request` on a map or a node allocator; false after SkipWithError.
template <class Allocator, class Request>
bool allocateAndFree(benchmark::State& state, Allocator& allocator, const Request& request) {
  auto granted = allocator.allocate(request);
  if (!granted) {
    state.SkipWithError(granted.error().message.c_str());
    return false;
  }
  benchmark::DoNotOptimize(granted);
  if (auto freed = allocator.free(*granted); !freed) {
    state.SkipWithError(freed.error().message.c_str());
    return false;
  }
  return true;
}

bool mapRoundTrip(benchmark::State& state, AllocMap& map, Quantity amount) {
  return allocateAndFree(state, map, amount);
}

// Checks the request once before timing and reports how many devices a grant spans
// (EVENLY requests are chosen to span several).
bool checkRequest(benchmark::State& state, AllocMap& map, Quantity amount) {
  auto grants = map.allocate(amount);
  if (!grants) {
    state.SkipWithError(grants.error().message.c_str());
    return false;
  }
  state.counters["devices_per_grant"] = static_cast<double>(grants->size());
  if (auto freed = map.free(*grants); !freed) {
    state.SkipWithError(freed.error().message.c_str());
    return false;
  }
  return true;
}

void runMapBenchmark(benchmark::State& state, AllocMap& map, Quantity amount) {
  // Only for pre-occupied maps: a constant 0 makes the cv aggregate print -nan%.
  if (!map.allocatedTotal().isZero()) state.counters["occupied_pct"] = occupiedPercent(map);
  if (!checkRequest(state, map, amount)) return;
  runRoundTrips(state, [&] { return mapRoundTrip(state, map, amount); });
}

// ---- 1. Sweeps over device count and occupancy --------------------------------------

enum class MapKind { Discrete, Fraction };

// Discrete sweeps use capacity 8 per device (e.g. cores of a CCX or MIG-able GPUs) so
// that partial occupancy leaves every device a different free amount; 4 units is a
// request that FILL may place on one device and EVENLY spreads over 4 devices.
// Fraction sweeps use capacity 1.0 and quantum 0.01. 2.5 shares never fit on one
// device, so EVENLY must choose a run of devices. At 90% an 8-GPU map has only ~0.8
// shares free, so there the request is 0.5 shares, which still spans ~5 devices.
Quantity sweepRequest(MapKind kind, int occupiedPct) {
  if (kind == MapKind::Discrete) return Quantity(4);
  return Quantity::fromRaw(occupiedPct >= 90 ? Quantity::kScale / 2 : Quantity::kScale * 5 / 2);
}

void BM_Sweep(benchmark::State& state, MapKind kind, AllocationStrategy strategy, int occupiedPct) {
  const std::int64_t count = state.range(0);
  auto map = kind == MapKind::Discrete
                 ? discreteMap("cuda.device", SlotType::Count, devices("dev", count, Quantity(8), 2), strategy)
                 : fractionMap(count, strategy);
  preOccupy(*map, occupiedPct);
  runMapBenchmark(state, *map, sweepRequest(kind, occupiedPct));
  state.SetComplexityN(count);
}

void registerSweeps() {
  struct Family {
    const char* name;
    MapKind kind;
    AllocationStrategy strategy;
  };
  static constexpr Family kFamilies[] = {
      {"BM_DiscreteFill", MapKind::Discrete, AllocationStrategy::Fill},
      {"BM_DiscreteEvenly", MapKind::Discrete, AllocationStrategy::Evenly},
      {"BM_FractionFill", MapKind::Fraction, AllocationStrategy::Fill},
      {"BM_FractionEvenly", MapKind::Fraction, AllocationStrategy::Evenly},
  };
  struct Range {
    const char* suffix;
    std::vector<std::int64_t> counts;
  };
  const Range kRanges[] = {
      {"", {8, 32, 128, 512, 1024}},
      {"_LARGE", {8, 32, 128, 512, 1024, 2048, 4096}},
  };
  for (const Range& range : kRanges) {
    for (const Family& family : kFamilies) {
      for (int occupied : {0, 50, 90}) {
        const std::string name = std::string(family.name) + range.suffix + "/occupied:" + std::to_string(occupied);
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Sweep, family.kind, family.strategy, occupied);
        b->ArgName("devices")->Complexity(benchmark::oAuto);
        for (std::int64_t count : range.counts) b->Arg(count);
      }
    }
  }
}

// ---- 2. A realistic node -------------------------------------------------------------

// 8 GPUs and 128 cores on 2 NUMA nodes, 1 TiB of memory as one device per node; every
// map EVENLY, the node interleaved (NodeAllocatorOptions defaults).
NodeAllocator realisticNode() {
  NodeAllocator node;
  auto add = [&](std::unique_ptr<AllocMap> map) {
    if (auto added = node.addMap(std::move(map)); !added) die("addMap: " + added.error().message);
  };
  add(discreteMap("cuda.device", SlotType::Count, devices("cuda", 8, Quantity(1), 2), AllocationStrategy::Evenly));
  add(discreteMap("cpu", SlotType::Count, devices("cpu", 128, Quantity(1), 2), AllocationStrategy::Evenly));
  add(discreteMap("mem", SlotType::Bytes, devices("mem", 2, gib(512), 2), AllocationStrategy::Evenly));
  return node;
}

ResourceSlot realisticRequest() {
  return ResourceSlot{{SlotName::of("cuda.device"), Quantity(2)},
                      {SlotName::of("cpu"), Quantity(8)},
                      {SlotName::of("mem"), orDie(BinarySize::parse("64g"), "BinarySize::parse").toQuantity()}};
}

// Not inlined, so that callgrind can count exactly this (--toggle-collect).
[[gnu::noinline]] bool nodeRoundTrip(benchmark::State& state, NodeAllocator& node, const ResourceSlot& request) {
  return allocateAndFree(state, node, request);
}

void BM_RealisticNode(benchmark::State& state) {
  NodeAllocator node = realisticNode();
  const ResourceSlot request = realisticRequest();
  runRoundTrips(state, [&] { return nodeRoundTrip(state, node, request); });
}
BENCHMARK(BM_RealisticNode);

// The same node with sessions already running, unevenly over the NUMA nodes: 3 GPUs
// and 48 cores taken on node 0, 1 GPU and 16 cores on node 1, 384 GiB of memory.
void BM_BusyRealisticNode(benchmark::State& state) {
  NodeAllocator node = realisticNode();
  auto occupy = [&](const char* slot, const Grants& grants) {
    if (auto applied = node.map(slot)->apply(grants); !applied) die("apply: " + applied.error().message);
  };
  Grants cores;
  for (std::uint32_t core = 0; core < 48; ++core) cores.push_back({core, 1});
  for (std::uint32_t core = 64; core < 80; ++core) cores.push_back({core, 1});
  occupy("cuda.device", {{0, 1}, {1, 1}, {2, 1}, {4, 1}});
  occupy("cpu", cores);
  occupy("mem", {{0, gib(256)}, {1, gib(128)}});
  const ResourceSlot request = realisticRequest();
  runRoundTrips(state, [&] { return nodeRoundTrip(state, node, request); });
}
BENCHMARK(BM_BusyRealisticNode);

// A fixed iteration count and no clock reads, for instruction counts under callgrind:
//   valgrind --tool=callgrind --toggle-collect='*nodeRoundTrip*' ./bench_alloc
//       --benchmark_filter=BM_RealisticNode_Fixed
// counts only nodeRoundTrip and its callees; divide the total by kFixedIterations.
constexpr benchmark::IterationCount kFixedIterations = 10000;

void BM_RealisticNode_Fixed(benchmark::State& state) {
  NodeAllocator node = realisticNode();
  const ResourceSlot request = realisticRequest();
  for (auto _ : state) {
    if (!nodeRoundTrip(state, node, request)) return;
  }
}
BENCHMARK(BM_RealisticNode_Fixed)->Iterations(kFixedIterations);

// ---- 3. Named workloads (empty maps) ---------------------------------------------------

// 2.5 shares over 8 fractional GPUs: no single GPU holds it, so EVENLY picks a run.
void BM_Workload_FractionEvenly_2_5of8GPUs(benchmark::State& state) {
  auto map = fractionMap(8, AllocationStrategy::Evenly);
  runMapBenchmark(state, *map, orDie(Quantity::parse("2.5"), "Quantity::parse"));
}
BENCHMARK(BM_Workload_FractionEvenly_2_5of8GPUs);

// 16 whole GPUs spread over a 1,024-GPU map (capacity 1 each): one per device.
void BM_Workload_DiscreteEvenly_16of1024(benchmark::State& state) {
  auto map = discreteMap("cuda.device", SlotType::Count, devices("cuda", 1024, Quantity(1), 2),
                         AllocationStrategy::Evenly);
  runMapBenchmark(state, *map, Quantity(16));
}
BENCHMARK(BM_Workload_DiscreteEvenly_16of1024);

// Half a GPU, FILL, over 8 fractional GPUs.
void BM_Workload_FractionFill_0_5of8GPUs(benchmark::State& state) {
  auto map = fractionMap(8, AllocationStrategy::Fill);
  runMapBenchmark(state, *map, orDie(Quantity::parse("0.5"), "Quantity::parse"));
}
BENCHMARK(BM_Workload_FractionFill_0_5of8GPUs);

// ---- 4. Churn at 90% occupancy -------------------------------------------------------

// A node kept about 90% full while sessions of random sizes arrive and leave: how many
// allocations per second a map sustains, and how often it refuses a request that its
// free capacity as a whole could hold (fragmentation), FILL vs EVENLY, fraction maps
// with and without the fragmentation guard.
//
// Families: BM_Churn/fraction/<strategy>[/guard]/gpus:N over 8 and 64 fractional GPUs
// (kFractionMix), BM_Churn/discrete/<strategy>/cores:128 (kCoreMix), and
// BM_Churn_LARGE/fraction/... over 512 and 4,096 GPUs to show growth.
//
// The workload is the same in every run: splitmix64 from a fixed seed draws the sizes
// and the departures.
//   - Target: 90% of the map's capacity.
//   - Settling (untimed): arrivals fill the empty map to the target, a refused request
//     being dropped; then kWarmUpTurnovers times as many steps as there are live
//     allocations, so that the measured layout is the churned one and not the tidy one
//     of a fill from empty (about 5% of the first allocations are still live).
//   - One iteration (a step): one departure (a uniformly chosen live allocation is
//     freed), then arrivals while the allocated total is below the target. The first
//     refused arrival ends the step and its request is dropped, as if the scheduler
//     placed it on another node. A step may end above the target by less than the
//     last request.
//
// Counters (the percentages are of the arrivals of the timed loop, i.e. allocate() calls):
//   items_per_second    granted allocations per second; the time also holds the free()
//                       of the departures and the refused calls
//   frag_fail_pct       refused although the free total was enough (freeTotal() >= request)
//   full_fail_pct       refused because the free total was not enough
//   guard_refusals_pct  (guard only) refused as FractionalResourceFragmented; equal to
//                       frag_fail_pct unless the map refuses fitting requests otherwise
//   split_pct           (fraction maps) the granted requests of at most one device's
//                       capacity that were split over several devices, in % of those
//   occupied_pct        mean allocated share of capacity at the end of a step
//   p50_ns, p99_ns      latency of the granted allocate() calls; refused_p50_ns and
//                       refused_p99_ns of the refused ones, which build an error message
// Without the guard both map kinds split whatever fits in total, so frag_fail_pct is 0
// by construction there and fragmentation shows as split_pct instead.

constexpr std::uint64_t kChurnSeed = 0x5EED'C4A5'0000'0001;
constexpr int kChurnTargetPct = 90;
constexpr std::size_t kWarmUpTurnovers = 3;

struct WeightedSize {
  const char* amount;
  int weight;
};

// GPU shares: many small inference sessions, whole GPUs, a few multi-GPU jobs; mean 0.65.
constexpr WeightedSize kFractionMix[] = {{"0.1", 15}, {"0.25", 15}, {"0.3", 15}, {"0.5", 20},
                                         {"1", 20},   {"1.5", 10},  {"2", 5}};
// Cores; mean 6.25.
constexpr WeightedSize kCoreMix[] = {{"1", 25}, {"2", 20}, {"4", 20}, {"8", 20}, {"16", 10}, {"32", 5}};

struct ChurnCounts {
  std::uint64_t steps = 0;
  std::uint64_t arrivals = 0;
  std::uint64_t granted = 0;
  std::uint64_t fragmented = 0;    // refused, though the free total was enough
  std::uint64_t insufficient = 0;  // refused, the free total was not enough
  std::uint64_t guardRefusals = 0;
  std::uint64_t oneDeviceGranted = 0;  // granted requests of at most one device's capacity ...
  std::uint64_t oneDeviceSplit = 0;    // ... of which split over several devices
  double occupiedSum = 0;           // allocated share of capacity at the end of each step
};

// One map under churn. Sizes and the allocated total are kept in the map's units, so the
// free total is known without a scan of the devices in the timed loop; report() checks it
// against the map.
class Churn {
 public:
  Churn(std::unique_ptr<AllocMap> map, std::span<const WeightedSize> mix, bool guard)
      : map_(std::move(map)), guard_(guard), unitRaw_(unitOf(*map_).raw()) {
    capacityUnits_ = units(map_->capacityTotal());
    targetUnits_ = capacityUnits_ * kChurnTargetPct / 100;
    deviceCapacityUnits_ = units(map_->capacity(0));  // every device has the same capacity
    int cumulative = 0;
    for (const WeightedSize& size : mix) {
      const Quantity amount = orDie(Quantity::parse(size.amount), "Quantity::parse");
      cumulative += size.weight;
      sizes_.push_back(Size{amount, units(amount), cumulative});
    }
  }

  // Fills to the target (below it some device always has room for a smallest request in
  // both mixes, so this ends), then churns the live set kWarmUpTurnovers times over.
  void settle() {
    while (liveUnits_ < targetUnits_) arrive();
    const std::size_t warmUpSteps = kWarmUpTurnovers * live_.size();
    for (std::size_t i = 0; i < warmUpSteps; ++i) step();
  }

  void startMeasuring() {
    counts_ = {};
    granted_ = {};
    refused_ = {};
    measuring_ = true;
  }

  void step() {
    depart();
    while (liveUnits_ < targetUnits_ && arrive()) {
    }
    ++counts_.steps;
    counts_.occupiedSum += static_cast<double>(liveUnits_) / static_cast<double>(capacityUnits_);
  }

  void report(benchmark::State& state) {
    if (map_->allocatedTotal() != Quantity::fromRaw(liveUnits_ * unitRaw_)) {
      die("churn bookkeeping: the map holds " + map_->allocatedTotal().toString() + ", the live set " +
          Quantity::fromRaw(liveUnits_ * unitRaw_).toString());
    }
    auto percent = [](std::uint64_t part, std::uint64_t whole) {
      return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
    };
    state.SetItemsProcessed(static_cast<std::int64_t>(counts_.granted));
    state.counters["frag_fail_pct"] = percent(counts_.fragmented, counts_.arrivals);
    state.counters["full_fail_pct"] = percent(counts_.insufficient, counts_.arrivals);
    if (guard_) state.counters["guard_refusals_pct"] = percent(counts_.guardRefusals, counts_.arrivals);
    if (map_->isFraction()) state.counters["split_pct"] = percent(counts_.oneDeviceSplit, counts_.oneDeviceGranted);
    state.counters["occupied_pct"] = 100.0 * counts_.occupiedSum / static_cast<double>(counts_.steps);
    granted_.report(state, "", bai::bench::TimeUnit::Nanoseconds);
    refused_.report(state, "refused_", bai::bench::TimeUnit::Nanoseconds);
  }

 private:
  struct Size {
    Quantity amount;
    std::int64_t units;
    int cumulativeWeight;
  };
  struct Live {
    Grants grants;
    std::int64_t units;
  };

  std::int64_t units(Quantity amount) const {
    if (amount.raw() % unitRaw_ != 0) die("churn size " + amount.toString() + " is not a whole number of map units");
    return static_cast<std::int64_t>(amount.raw() / unitRaw_);
  }

  const Size& drawSize() {
    const auto pick = static_cast<int>(random_.below(static_cast<std::uint64_t>(sizes_.back().cumulativeWeight)));
    return *std::find_if(sizes_.begin(), sizes_.end(), [&](const Size& s) { return pick < s.cumulativeWeight; });
  }

  // Every kSampleStride-th call is timed once measuring.
  bool arrive() {
    const Size& size = drawSize();
    const bool timed = measuring_ && counts_.arrivals % kSampleStride == 0;
    ++counts_.arrivals;
    const auto start = timed ? bai::bench::Clock::now() : bai::bench::Clock::time_point{};
    auto grants = map_->allocate(size.amount);
    if (timed) (grants ? granted_ : refused_).add(bai::bench::Clock::now() - start);
    if (!grants) {
      countRefusal(size, grants.error());
      return false;
    }
    ++counts_.granted;
    if (size.units <= deviceCapacityUnits_) {
      ++counts_.oneDeviceGranted;
      counts_.oneDeviceSplit += grants->size() > 1 ? 1 : 0;
    }
    live_.push_back(Live{std::move(*grants), size.units});
    liveUnits_ += size.units;
    return true;
  }

  // frag_fail_pct follows the definition (enough free in total, yet refused), not the
  // error kind, so that a map refusing a fitting request for another reason shows there.
  void countRefusal(const Size& size, const AllocationError& error) {
    if (error.kind != AllocationErrorKind::InsufficientResource &&
        error.kind != AllocationErrorKind::FractionalResourceFragmented) {
      die("churn: unexpected refusal: " + error.message);
    }
    if (capacityUnits_ - liveUnits_ >= size.units) ++counts_.fragmented;
    else ++counts_.insufficient;
    if (error.kind == AllocationErrorKind::FractionalResourceFragmented) ++counts_.guardRefusals;
  }

  void depart() {
    std::swap(live_[random_.below(live_.size())], live_.back());
    orDie(map_->free(live_.back().grants), "free of a grant the map gave");
    liveUnits_ -= live_.back().units;
    live_.pop_back();
  }

  std::unique_ptr<AllocMap> map_;
  bool guard_;
  __int128 unitRaw_;
  std::int64_t capacityUnits_ = 0;
  std::int64_t targetUnits_ = 0;
  std::int64_t deviceCapacityUnits_ = 0;
  std::vector<Size> sizes_;
  SplitMix64 random_{kChurnSeed};
  std::vector<Live> live_;
  std::int64_t liveUnits_ = 0;
  bool measuring_ = false;
  ChurnCounts counts_;
  bai::bench::LatencyHistogram granted_;
  bai::bench::LatencyHistogram refused_;
};

void BM_Churn(benchmark::State& state, MapKind kind, AllocationStrategy strategy, bool guard) {
  const std::int64_t count = state.range(0);
  Churn churn = kind == MapKind::Fraction
                    ? Churn(fractionMap(count, strategy, guard), kFractionMix, guard)
                    : Churn(discreteMap("cpu", SlotType::Count, devices("cpu", count, Quantity(1), 2), strategy),
                            kCoreMix, false);
  churn.settle();
  churn.startMeasuring();
  for (auto _ : state) churn.step();
  churn.report(state);
}

void registerChurn() {
  struct Family {
    MapKind kind;
    AllocationStrategy strategy;
    bool guard;
  };
  static constexpr Family kFamilies[] = {
      {MapKind::Fraction, AllocationStrategy::Fill, false},   {MapKind::Fraction, AllocationStrategy::Fill, true},
      {MapKind::Fraction, AllocationStrategy::Evenly, false}, {MapKind::Fraction, AllocationStrategy::Evenly, true},
      {MapKind::Discrete, AllocationStrategy::Fill, false},   {MapKind::Discrete, AllocationStrategy::Evenly, false},
  };
  struct Range {
    const char* suffix;
    std::vector<std::int64_t> gpus;
    std::vector<std::int64_t> cores;
  };
  const Range kRanges[] = {
      {"", {8, 64}, {128}},
      {"_LARGE", {512, 4096}, {}},
  };
  for (const Range& range : kRanges) {
    for (const Family& family : kFamilies) {
      const bool fraction = family.kind == MapKind::Fraction;
      const std::vector<std::int64_t>& counts = fraction ? range.gpus : range.cores;
      if (counts.empty()) continue;
      const std::string name = std::string("BM_Churn") + range.suffix + (fraction ? "/fraction/" : "/discrete/") +
                               bai::core::allocationStrategyName(family.strategy) + (family.guard ? "/guard" : "");
      auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Churn, family.kind, family.strategy, family.guard);
      b->ArgName(fraction ? "gpus" : "cores");
      for (std::int64_t count : counts) b->Arg(count);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  registerSweeps();
  registerChurn();
  if (!bai::bench::runSpecifiedBenchmarks(argc, argv)) return 1;
  return 0;
}
