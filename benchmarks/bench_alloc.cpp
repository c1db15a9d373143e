// Allocation micro-benchmarks: the cost of one allocate+free pair for each map kind,
// strategy, device count and occupancy the scheduler meets, plus a realistic node.
//
// Every iteration allocates a request and frees it again, so the map is in the same
// state at every iteration and the numbers do not drift with the iteration count.
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
#include <string>
#include <utility>
#include <vector>

namespace {

using bai::BinarySize;
using bai::Quantity;
using bai::ResourceSlot;
using bai::Result;
using bai::SlotName;
using bai::SlotType;
using bai::core::AllocationStrategy;
using bai::core::AllocMap;
using bai::core::AllocMapOptions;
using bai::core::DeviceGrant;
using bai::core::DeviceSpec;
using bai::core::DiscreteAllocMap;
using bai::core::FractionAllocMap;
using bai::core::Grants;
using bai::core::NodeAllocator;

// ---- Setup helpers ----------------------------------------------------------------

using bai::bench::die;
using bai::bench::orDie;

Quantity gib(std::int64_t n) { return Quantity(n << 30); }

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
std::unique_ptr<AllocMap> fractionMap(std::int64_t count, AllocationStrategy strategy) {
  return orDie(FractionAllocMap::create(SlotName::of("cuda.shares"), SlotType::Count,
                                        devices("cuda", count, Quantity(1), 2), withStrategy(strategy)),
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
// read (~20 ns), which we do not subtract. The sample buffer is reserved before the
// timed loop, so recording never allocates.
constexpr std::uint64_t kSampleStride = 16;


// Runs `roundTrip` (one allocate+free; returns false after calling SkipWithError) once
// per iteration, timing every kSampleStride-th call for the percentiles.
template <class RoundTrip>
void runRoundTrips(benchmark::State& state, RoundTrip&& roundTrip) {
  bai::bench::LatencySampler sampler(static_cast<std::size_t>(state.max_iterations / kSampleStride));
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
  sampler.report(state, "", false);  // p50_ns, p99_ns
}

bool mapRoundTrip(benchmark::State& state, AllocMap& map, Quantity amount) {
  auto grants = map.allocate(amount);
  if (!grants) {
    state.SkipWithError(grants.error().message.c_str());
    return false;
  }
  benchmark::DoNotOptimize(grants);
  if (auto freed = map.free(*grants); !freed) {
    state.SkipWithError(freed.error().message.c_str());
    return false;
  }
  return true;
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
  auto allocation = node.allocate(request);
  if (!allocation) {
    state.SkipWithError(allocation.error().message.c_str());
    return false;
  }
  benchmark::DoNotOptimize(allocation);
  if (auto freed = node.free(*allocation); !freed) {
    state.SkipWithError(freed.error().message.c_str());
    return false;
  }
  return true;
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

}  // namespace

int main(int argc, char** argv) {
  registerSweeps();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
