// Placement benchmarks for bai-manager, from the pure decision to a session running on
// an agent:
//   1. BM_Decision: one placement decision in memory (choosePlacement plus the in-memory
//      reservation) over N simulated agents of mixed kinds, for both selectors.
//   2. BM_StoreReserve: the store commit of one reservation, as Manager::commit does it,
//      on a SQLite file in a temporary directory, synchronous=NORMAL vs FULL.
//   3. BM_EndToEnd: a real Manager in process, agents registered through heartbeats and
//      served by an in-process fake agent RPC: sessions placed and running per second.
//
// Every family reports items_per_second (decisions, commits or sessions per second) and
// p50_us/p99_us per operation from our own samples (libbenchmark's statistics are across
// repetitions only). Times are manual: only the operation itself is timed, not the
// bookkeeping that keeps the cluster in a steady state. BM_Decision also reports
// cpu_p50_us/cpu_p99_us, the thread's CPU time per decision: on shared cores the wall
// time's tail is mostly other processes running instead of us.
//
// Naming: families whose name contains LARGE run 20,000 and 100,000 agents; the smoke
// test (`meson test --suite benchmark-smoke`) skips them with --benchmark_filter=-LARGE.
// Temporary databases go under $TMPDIR (default /tmp): point it at the disk you care about.

#include "bench_support.hpp"
#include "clock.hpp"
#include "cluster.hpp"
#include "http_server.hpp"
#include "manager.hpp"
#include "store/store.hpp"

#include <bai/protocol.hpp>

#include <benchmark/benchmark.h>
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using bai::ErrorCode;
using bai::Quantity;
using bai::ResourceSlot;
using bai::Result;
using bai::SlotName;
using bai::SlotType;
using bai::SlotTypeTable;
using namespace bai::manager;  // the manager under test
namespace http = bai::http;
namespace protocol = bai::protocol;

using namespace bai::bench;  // bench_support.hpp
using bai::bench::LatencyHistogram;  // not the manager's own (metrics)

// ---- Setup helpers ----------------------------------------------------------------

Quantity q(const char* text) { return orDie(Quantity::parse(text), "Quantity::parse"); }

// ---- The simulated cluster -------------------------------------------------------------

// Two in five agents are 8-GPU nodes, one in five a node of 4 fractional GPUs (1.0 share
// each), two in five CPU-only nodes.
enum class NodeKind { Gpu, Fractional, Cpu };

NodeKind nodeKind(std::size_t index) {
  const std::size_t r = index % 5;
  return r < 2 ? NodeKind::Gpu : r == 2 ? NodeKind::Fractional : NodeKind::Cpu;
}

const SlotTypeTable& slotTypeTable() {
  static const SlotTypeTable table{{SlotName::of("cuda.device"), SlotType::Count},
                                   {SlotName::of("cuda.shares"), SlotType::Count},
                                   {SlotName::of("cpu"), SlotType::Count},
                                   {SlotName::of("mem"), SlotType::Bytes}};
  return table;
}

std::map<std::string, SlotType> slotTypesOf(NodeKind kind) {
  std::map<std::string, SlotType> out{{"cpu", SlotType::Count}, {"mem", SlotType::Bytes}};
  if (kind == NodeKind::Gpu) out["cuda.device"] = SlotType::Count;
  if (kind == NodeKind::Fractional) out["cuda.shares"] = SlotType::Count;
  return out;
}

// Capacity and the part of it in use (in eighths, 0..8) for each slot of a node; the
// largest-allocatable figure is what that node would report: all it has left, except
// for fractional GPUs, where one session gets at most one GPU (1.0 share) and sessions
// are packed GPU by GPU.
std::map<std::string, AgentSlotFigures> nodeSlots(NodeKind kind, int eighthsUsed) {
  std::map<std::string, AgentSlotFigures> slots;
  auto add = [&](const char* slot, Quantity capacity, Quantity perEighth) {
    const Quantity used = Quantity::fromRaw(perEighth.raw() * eighthsUsed);
    slots[slot] = AgentSlotFigures{capacity, used, capacity - used};
  };
  switch (kind) {
    case NodeKind::Gpu:
      add("cuda.device", Quantity(8), Quantity(1));
      add("cpu", Quantity(64), Quantity(7));
      add("mem", gib(512), gib(48));
      break;
    case NodeKind::Fractional: {
      add("cuda.shares", Quantity(4), q("0.5"));
      AgentSlotFigures& shares = slots["cuda.shares"];
      shares.largest = std::min(Quantity(1), shares.capacity - shares.used);
      add("cpu", Quantity(32), Quantity(3));
      add("mem", gib(256), gib(24));
      break;
    }
    case NodeKind::Cpu:
      add("cpu", Quantity(64), Quantity(7));
      add("mem", gib(256), gib(24));
      break;
  }
  return slots;
}

std::string agentId(std::size_t index) {
  char id[32];
  std::snprintf(id, sizeof id, "agent-%06zu", index);
  return id;
}

// A busy cluster: a fifth of the nodes idle, a tenth full, the rest between.
int backgroundEighths(SplitMix64& random) {
  const auto r = random.below(10);
  if (r < 2) return 0;
  if (r == 2) return 8;
  return 1 + static_cast<int>(random.below(7));
}

std::map<std::string, AgentView> simulatedCluster(std::size_t count, bool busy) {
  SplitMix64 random(count);
  std::map<std::string, AgentView> agents;
  for (std::size_t i = 0; i < count; ++i) {
    AgentView view;
    view.record.id = agentId(i);
    view.record.status = AgentStatus::Alive;
    view.record.rpcUrl = "http://10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":6001";
    view.record.scalingGroup = "default";
    view.record.slots = nodeSlots(nodeKind(i), busy ? backgroundEighths(random) : 0);
    view.lastSeen = Clock::now();
    view.fullReportSinceStart = true;
    agents.emplace(view.record.id, std::move(view));
  }
  return agents;
}

// The request mix, as users type it: small and large GPU sessions, fractional ones,
// CPU-only ones and a whole 8-GPU node.
const std::vector<std::vector<std::pair<std::string, std::string>>>& requestMix() {
  static const std::vector<std::vector<std::pair<std::string, std::string>>> mix = {
      {{"cuda.device", "1"}, {"cpu", "4"}, {"mem", "32g"}},
      {{"cuda.device", "2"}, {"cpu", "8"}, {"mem", "64g"}},
      {{"cuda.shares", "0.5"}, {"cpu", "2"}, {"mem", "16g"}},
      {{"cpu", "4"}, {"mem", "8g"}},
      {{"cuda.shares", "0.25"}, {"cpu", "1"}, {"mem", "8g"}},
      {{"cpu", "1"}, {"mem", "2g"}},
      {{"cuda.device", "8"}, {"cpu", "32"}, {"mem", "256g"}},
  };
  return mix;
}

ResourceSlot parsedRequest(std::size_t kind) {
  return orDie(ResourceSlot::parseUserInput(requestMix()[kind], slotTypeTable()), "ResourceSlot::parseUserInput");
}

std::vector<SessionRecord> requestStream() {
  std::vector<SessionRecord> out;
  for (std::size_t kind = 0; kind < requestMix().size(); ++kind) {
    SessionRecord session;
    session.id = "request-" + std::to_string(kind);
    session.scalingGroup = "default";
    session.requested = parsedRequest(kind);
    out.push_back(std::move(session));
  }
  return out;
}

// ---- Measuring ----------------------------------------------------------------------

// Per-operation latency percentiles from every sample (the operations here take
// microseconds to seconds, so two clock reads per operation cost nothing that matters).

// ---- 1. One decision in memory ---------------------------------------------------------

// A reservation made by an earlier decision, released `window` decisions later so that
// the cluster stays as busy as it started.
struct Reservation {
  std::string sessionId;
  AgentView* agent = nullptr;
  const ResourceSlot* amount = nullptr;
};

void release(Reservation& reservation) {
  if (reservation.agent == nullptr) return;
  reservation.agent->subtractUsed(*reservation.amount);
  reservation.agent->unseenPlacements.erase(reservation.sessionId);
  reservation.agent = nullptr;
}

std::size_t windowFor(std::size_t agents) { return std::clamp<std::size_t>(agents / 4, 16, 256); }

std::string policyDir() {
  const char* dir = std::getenv("BAI_POLICY_DIR");
  return dir != nullptr ? dir : BAI_BUILD_POLICY_DIR;
}

const PolicyCatalog& catalog() {
  static const PolicyCatalog loaded = orDie(PolicyCatalog::load({policyDir()}, bai::LogSink()), "PolicyCatalog::load");
  return loaded;
}

// A queue of pending sessions as the sequencer sees it (one owner per four sessions).
struct PendingQueue {
  std::vector<std::string> slots{"cuda.device", "cuda.shares", "cpu", "mem"};
  std::vector<const char*> slotNames, ids, owners;
  std::vector<std::string> idText, ownerText;
  std::vector<std::uint64_t> seqs;
  std::vector<std::vector<double>> requested, allocated;
  std::vector<const double*> requestedRows, allocatedRows;
  std::vector<double> capacity;
  bai_pending_view view{};

  PendingQueue(const std::vector<SessionRecord>& requests, std::size_t length, double agents) {
    requested.assign(slots.size(), {});
    allocated.assign(slots.size(), {});
    for (std::size_t i = 0; i < length; ++i) {
      idText.push_back("pending-" + std::to_string(i));
      ownerText.push_back("user-" + std::to_string(i / 4));
      seqs.push_back(i + 1);
      for (std::size_t s = 0; s < slots.size(); ++s) {
        requested[s].push_back(requests[i % requests.size()].requested.get(slots[s]).toDouble());
        allocated[s].push_back(static_cast<double>((i * 7) % 13));
      }
    }
    for (std::size_t i = 0; i < length; ++i) ids.push_back(idText[i].c_str()), owners.push_back(ownerText[i].c_str());
    for (std::size_t s = 0; s < slots.size(); ++s) {
      slotNames.push_back(slots[s].c_str());
      requestedRows.push_back(requested[s].data());
      allocatedRows.push_back(allocated[s].data());
      capacity.push_back(agents * 8);
    }
    view = bai_pending_view{sizeof(bai_pending_view), static_cast<std::uint32_t>(length), static_cast<std::uint32_t>(slots.size()),
                            slotNames.data(), ids.data(), owners.data(), seqs.data(), requestedRows.data(), capacity.data(),
                            allocatedRows.data()};
  }
};

// One decision = the pick (the sequencer orders a queue of 64 pending sessions and the
// first is taken), the select (the free-capacity index offers up to 32 agents that fit,
// the selector plugin chooses one) and what the manager does in memory when it reserves
// (the agent's used figures grow, the placement counts as unseen by the agent, its index
// entry moves). The store commit is measured apart (BM_StoreReserve).
void BM_Decision(benchmark::State& state, const std::string& sequencerName, const std::string& selectorName) {
  const auto count = static_cast<std::size_t>(state.range(0));
  std::map<std::string, AgentView> agents = simulatedCluster(count, true);
  auto sequencer = orDie(catalog().makeSequencer(sequencerName, "{}"), "makeSequencer");
  auto selector = orDie(catalog().makeSelector(selectorName, "{}"), "makeSelector");
  PlacementIndex index;
  for (auto& [id, agent] : agents) index.update(agent);
  const std::vector<SessionRecord> requests = requestStream();
  PendingQueue queue(requests, 64, static_cast<double>(count));
  std::vector<Reservation> window(windowFor(count));
  for (std::size_t i = 0; i < window.size(); ++i) window[i].sessionId = "window-" + std::to_string(i);
  CandidateWindow candidates;
  const std::map<std::string, std::uint32_t> shared;

  LatencyHistogram sampler, cpuSampler;
  std::uint64_t decision = 0, unplaced = 0;
  for (auto _ : state) {
    Reservation& slot = window[decision % window.size()];
    if (slot.agent != nullptr) {
      AgentView* previous = slot.agent;
      release(slot);
      index.update(*previous);
    }
    const auto cpuStart = threadCpuNow();
    const auto start = Clock::now();
    auto order = sequencer->order(queue.view);
    const SessionRecord& session = requests[(decision + (order ? (*order)[0] : 0)) % requests.size()];
    auto found = index.candidates(session, selector->preference(), 32, {}, nullptr);
    if (!found.empty()) {
      index.describe(found, shared, candidates);
      std::vector<double> requested;
      for (const auto& name : index.slotOrder()) requested.push_back(session.requested.get(name).toDouble());
      const bai_session_view view{sizeof(bai_session_view), session.id.c_str(), session.owner.c_str(), requested.data()};
      auto chosen = selector->select(view, candidates.view);
      AgentView& agent = agents.find(found[chosen ? *chosen : 0]->record.id)->second;
      agent.addUsed(session.requested);
      agent.unseenPlacements[slot.sessionId] = session.requested;
      index.update(agent);
      slot.agent = &agent;
      slot.amount = &session.requested;
    } else {
      ++unplaced;
    }
    const auto elapsed = Clock::now() - start;
    cpuSampler.add(threadCpuNow() - cpuStart);
    state.SetIterationTime(seconds(elapsed));
    sampler.add(elapsed);
    ++decision;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["window"] = static_cast<double>(window.size());
  state.counters["unplaced_pct"] = decision == 0 ? 0.0 : 100.0 * static_cast<double>(unplaced) / static_cast<double>(decision);
  sampler.report(state);
  cpuSampler.report(state, "cpu_");
}

void registerDecisions() {
  struct Range {
    const char* suffix;
    std::vector<std::int64_t> counts;
  };
  const Range kRanges[] = {{"", {100, 1000, 5000}}, {"_LARGE", {20000, 100000}}};
  for (const Range& range : kRanges) {
    for (const char* sequencer : {"fifo", "lifo", "drf"}) {
      for (const char* selector : {"concentrated", "dispersed", "roundrobin"}) {
        const std::string name = std::string("BM_Decision") + range.suffix + "/" + sequencer + "/" + selector;
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Decision, std::string(sequencer), std::string(selector));
        b->ArgName("agents")->UseManualTime()->Unit(benchmark::kMicrosecond);
        for (std::int64_t count : range.counts) b->Arg(count);
      }
    }
  }
}

// ---- 2. The store commit of one reservation --------------------------------------------

std::unique_ptr<Store> openFileStore(const std::filesystem::path& file, bool fullSync) {
  StoreOptions options;
  options.fullSync = fullSync;
  return orDie(bai::manager::openStore("sqlite://" + file.string(), options), "openStore");
}

AgentRecord storedAgent(std::size_t index) {
  AgentRecord record;
  record.id = agentId(index);
  record.rpcUrl = "http://127.0.0.1:6001";
  record.scalingGroup = "default";
  record.version = "bench";
  record.slots = nodeSlots(nodeKind(index), 0);
  return record;
}

// The reservation transaction of Manager::commit (placement.cpp's placeOne with one
// session): the agent row must be alive; its used figures (commit reads the row a second
// time for them) plus the request must fit its capacity; then the allocation, the new
// used figures and the session's new state are written, all under BEGIN IMMEDIATE.
Result<void> reserveInStore(Store& store, const SessionRecord& scheduled) {
  return store.write([&](StoreTransaction& tx) -> Result<void> {
    auto row = tx.agent(scheduled.agentId);
    if (!row) return bai::fail(row.error().code, row.error().message);
    if (!row->has_value() || (*row)->status != AgentStatus::Alive) {
      return bai::fail(ErrorCode::Conflict, "agent '" + scheduled.agentId + "' is not alive");
    }
    auto again = tx.agent(scheduled.agentId);
    if (!again) return bai::fail(again.error().code, again.error().message);
    if (!again->has_value()) return bai::fail(ErrorCode::NotFound, "agent '" + scheduled.agentId + "' is not registered");
    ResourceSlot used;
    for (const auto& [slot, figures] : (*again)->slots) used.set(SlotName::of(slot), figures.used);
    for (const auto& [slot, amount] : scheduled.requested) {
      auto figures = (*row)->slots.find(slot.str());
      const Quantity capacity = figures == (*row)->slots.end() ? Quantity() : figures->second.capacity;
      if (used.get(slot) + amount > capacity) {
        return bai::fail(ErrorCode::Conflict, "agent '" + scheduled.agentId + "' has no " + slot.str() + " free");
      }
    }
    used = used + scheduled.requested;
    if (auto done = tx.insertAllocation({scheduled.id, scheduled.agentId, scheduled.requested, false}); !done) return done;
    if (auto done = tx.setAgentUsed(scheduled.agentId, used); !done) return done;
    return tx.updateSession(scheduled);
  });
}

// A request that fits the agent's kind, alternating between two of the mix.
std::size_t requestKindFor(std::size_t agentIndex, std::uint64_t decision) {
  const bool other = (decision / 1000) % 2 != 0;
  switch (nodeKind(agentIndex)) {
    case NodeKind::Gpu: return other ? 1 : 0;
    case NodeKind::Fractional: return other ? 4 : 2;
    case NodeKind::Cpu: return other ? 5 : 3;
  }
  return 5;
}

void BM_StoreReserve(benchmark::State& state, bool fullSync) {
  constexpr std::size_t kAgents = 1000;
  constexpr std::size_t kPool = 256;           // pending sessions inserted per batch (untimed)
  constexpr std::size_t kWindow = 256;         // reservations alive at a time
  constexpr std::size_t kReleaseBatch = 64;    // released per transaction (untimed)
  TempDir dir;
  auto store = openFileStore(dir.path() / "reserve.db", fullSync);
  orDie(store->write([&](StoreTransaction& tx) -> Result<void> {
          for (const auto& [slot, type] : std::map<std::string, SlotType>{
                   {"cuda.device", SlotType::Count}, {"cuda.shares", SlotType::Count},
                   {"cpu", SlotType::Count}, {"mem", SlotType::Bytes}}) {
            if (auto done = tx.insertSlotType(slot, type); !done) return done;
          }
          for (std::size_t i = 0; i < kAgents; ++i) {
            if (auto done = tx.upsertAgent(storedAgent(i)); !done) return done;
          }
          return {};
        }),
        "inserting agents");

  std::vector<ResourceSlot> kinds;
  for (std::size_t kind = 0; kind < requestMix().size(); ++kind) kinds.push_back(parsedRequest(kind));
  std::map<std::string, ResourceSlot> usedByAgent;  // mirrors the store, for releases
  std::vector<SessionRecord> pool;                  // inserted, pending, next to reserve
  std::size_t nextInPool = 0;
  std::deque<SessionRecord> live;                   // reserved, oldest first
  std::uint64_t decision = 0;

  auto refillPool = [&] {
    pool.clear();
    nextInPool = 0;
    for (std::size_t i = 0; i < kPool; ++i) {
      const std::uint64_t d = decision + i;
      const std::size_t agent = d % kAgents;
      SessionRecord session;
      session.id = "session-" + std::to_string(d);
      session.name = session.id;
      session.owner = "bench";
      session.scalingGroup = "default";
      session.command = {"sleep", "infinity"};
      session.requested = kinds[requestKindFor(agent, d)];
      session.agentId = agentId(agent);  // decided by the benchmark, not the selector
      session.createdAtMillis = bai::nowMillis();
      pool.push_back(std::move(session));
    }
    orDie(store->write([&](StoreTransaction& tx) -> Result<void> {
            for (auto& session : pool) {
              SessionRecord pending = session;
              pending.agentId.clear();
              auto seq = tx.insertSession(pending);
              if (!seq) return bai::fail(seq.error().code, seq.error().message);
              session.enqueueSeq = *seq;
            }
            return {};
          }),
          "inserting sessions");
  };
  auto releaseOldest = [&] {
    const std::size_t count = std::min(kReleaseBatch, live.size());
    orDie(store->write([&](StoreTransaction& tx) -> Result<void> {
            for (std::size_t i = 0; i < count; ++i) {
              SessionRecord& session = live[i];
              auto allocation = tx.allocation(session.id);
              if (!allocation) return bai::fail(allocation.error().code, allocation.error().message);
              ResourceSlot& used = usedByAgent[session.agentId];
              used = used - session.requested;
              if (auto done = tx.deleteAllocation(session.id); !done) return done;
              if (auto done = tx.setAgentUsed(session.agentId, used); !done) return done;
              session.status = SessionStatus::Terminated;
              session.endedAtMillis = bai::nowMillis();
              if (auto done = tx.updateSession(session); !done) return done;
            }
            return {};
          }),
          "releasing reservations");
    live.erase(live.begin(), live.begin() + static_cast<std::ptrdiff_t>(count));
  };

  LatencyHistogram sampler;
  for (auto _ : state) {
    if (nextInPool == pool.size()) refillPool();
    if (live.size() >= kWindow + kReleaseBatch) releaseOldest();
    SessionRecord scheduled = pool[nextInPool++];
    scheduled.status = SessionStatus::Scheduled;
    scheduled.scheduledAtMillis = bai::nowMillis();
    const auto start = Clock::now();
    auto reserved = reserveInStore(*store, scheduled);
    const auto elapsed = Clock::now() - start;
    if (!reserved) {
      state.SkipWithError(("reservation failed: " + reserved.error().message).c_str());
      break;
    }
    state.SetIterationTime(seconds(elapsed));
    sampler.add(elapsed);
    usedByAgent[scheduled.agentId] = usedByAgent[scheduled.agentId] + scheduled.requested;
    live.push_back(std::move(scheduled));
    ++decision;
  }
  state.SetItemsProcessed(state.iterations());
  sampler.report(state);
}

void registerStoreReserve() {
  for (bool fullSync : {false, true}) {
    const std::string name = std::string("BM_StoreReserve/sync:") + (fullSync ? "full" : "normal");
    benchmark::RegisterBenchmark(name.c_str(), BM_StoreReserve, fullSync)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

// ---- 3. End to end through a real Manager ----------------------------------------------

// The agent's RPC as far as placement needs it: POST /v1/sessions answers a running
// session, DELETE /v1/sessions/{id} a destroyed one. Checks the cluster token.
class FakeAgentRpc {
 public:
  explicit FakeAgentRpc(std::string token)
      : token_(std::move(token)),
        server_(http::ServerOptions{"127.0.0.1", 0, 1, 1 << 20, "", ""},
                http::Handler([this](const http::Request& request) { return handle(request); })) {}

  void start() { orDie(server_.start(), "fake agent RPC start"); }
  void stop() { server_.stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

 private:
  static http::Response error(int status, const std::string& type, const std::string& detail) {
    return http::Response{status, "application/json", protocol::ApiError{type, type, detail}.toJson(), {}};
  }

  http::Response handle(const http::Request& request) {
    if (request.header("authorization") != "Bearer " + token_) return error(401, "bad-cluster-token", "");
    const std::string prefix = "/v1/sessions/";
    protocol::SessionInfo info;
    if (request.method == "POST" && request.path == "/v1/sessions") {
      auto create = protocol::CreateSessionRequest::fromJson(request.body);
      if (!create) return error(400, "invalid-request", create.error().message);
      info.id = create->sessionId;
      info.state = protocol::SessionState::Running;
      info.pid = 4242;
      info.startedAtMillis = bai::nowMillis();
      return http::Response{201, "application/json", info.toJson(), {}};
    }
    if (request.path.rfind(prefix, 0) != 0) return error(404, "not-found", request.path);
    info.id = http::urlDecode(request.path.substr(prefix.size()));
    if (request.method == "DELETE") {
      info.state = protocol::SessionState::Destroyed;
      info.exitCode = 0;
      info.endedAtMillis = bai::nowMillis();
      return http::Response{200, "application/json", info.toJson(), {}};
    }
    if (request.method == "GET") {
      info.state = protocol::SessionState::Running;
      return http::Response{200, "application/json", info.toJson(), {}};
    }
    return error(405, "method-not-allowed", request.method);
  }

  std::string token_;
  http::Server server_;
};

protocol::Heartbeat registration(std::size_t index, const std::string& rpcUrl) {
  protocol::AgentState state;
  state.rpcAddress = rpcUrl;
  state.region = "local";
  state.scalingGroup = "default";
  state.architecture = "x86_64";
  state.version = "bench";
  const NodeKind kind = nodeKind(index);
  for (const auto& [slot, figures] : nodeSlots(kind, 0)) {
    state.available.set(SlotName::of(slot), figures.capacity);
    state.largestAllocatable.set(SlotName::of(slot), figures.largest);
    state.occupied.set(SlotName::of(slot), Quantity());
  }
  state.slotTypes = slotTypesOf(kind);
  return protocol::Heartbeat{agentId(index), 1, std::move(state)};
}

// Polls the manager until every session in `ids` has `wanted` (or, with final=true, any
// final status); adds each one's time since createdAt[i] to `sampler`. False after
// SkipWithError (a session failed, or the deadline passed).
bool waitFor(benchmark::State& state, Manager& manager, const Caller& caller, const std::vector<std::string>& ids,
             const std::vector<Clock::time_point>& createdAt, SessionStatus wanted, bool final, LatencyHistogram* sampler) {
  std::vector<std::size_t> open(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) open[i] = i;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!open.empty()) {
    std::vector<std::size_t> still;
    for (std::size_t i : open) {
      auto session = manager.session(caller, ids[i]);
      if (!session) {
        state.SkipWithError(("session " + ids[i] + ": " + session.error().detail).c_str());
        return false;
      }
      const bool done = final ? bai::manager::isFinal(session->status) : session->status == wanted;
      if (!done && bai::manager::isFinal(session->status)) {
        state.SkipWithError(("session " + ids[i] + " ended: " + bai::manager::sessionStatusName(session->status) + " " +
                             session->statusReason)
                                .c_str());
        return false;
      }
      if (done) {
        if (sampler != nullptr) sampler->add(Clock::now() - createdAt[i]);
      } else {
        still.push_back(i);
      }
    }
    open = std::move(still);
    if (open.empty()) break;
    if (Clock::now() > deadline) {
      const std::string id = ids[open.front()];
      auto session = manager.session(caller, id);
      state.SkipWithError(("after 60 s, " + std::to_string(open.size()) + " sessions not there yet; " + id + " is " +
                           (session ? bai::manager::sessionStatusName(session->status) : "?") + " (" + manager.pendingReason(id) + ")")
                              .c_str());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// Digest-only heartbeats at the rate real agents send them (every agent every 5 s),
// straight into Manager::heartbeat from one thread: how long liveness reports wait while
// the manager is busy placing. Latency counts from when the heartbeat was due, not from
// when this thread got to send it: real agents do not wait for each other, so a stall
// delays every heartbeat due during it (no coordinated omission).
class HeartbeatTraffic {
 public:
  HeartbeatTraffic(Manager& manager, std::size_t agents) : manager_(manager), agents_(agents) {}

  void start() {
    running_ = true;
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }
  // While stopped.
  std::vector<Clock::duration> take() { return std::exchange(latencies_, {}); }
  std::string failure() const { return failure_; }

 private:
  void run() {
    const auto period = std::chrono::microseconds(5'000'000 / agents_);
    auto next = Clock::now();
    while (running_) {
      const std::string id = agentId(index_++ % agents_);
      auto reply = manager_.heartbeat(id, protocol::Heartbeat{id, 1, std::nullopt});
      latencies_.push_back(Clock::now() - next);
      if ((!reply || reply->sendFull) && failure_.empty()) failure_ = "heartbeat of " + id + " failed or asked for a full state";
      next += period;
      std::this_thread::sleep_until(next);
    }
  }

  Manager& manager_;
  std::size_t agents_;
  std::size_t index_ = 0;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::vector<Clock::duration> latencies_;
  std::string failure_;
};

// Sessions per second from createSession of a batch until every one of them is RUNNING
// (placed, reserved in the store, started on its agent and recorded as running), with
// p50/p99 of that time per session. The batch is destroyed (untimed) before the next, so
// the cluster is idle at the start of every batch. Meanwhile the agents keep sending
// digest-only heartbeats (HeartbeatTraffic): hb_p99_us and hb_max_us are their latency
// while the batches are placed.
void BM_EndToEnd(benchmark::State& state) {
  const auto agentCount = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  const std::string token = "bench-cluster-token";
  TempDir dir;
  FakeAgentRpc rpc(token);
  rpc.start();

  ManagerSettings settings;
  settings.listen = "127.0.0.1:0";  // unused: no API server here
  settings.db = "sqlite://" + (dir.path() / "manager.db").string();
  settings.heartbeatTimeout = std::chrono::hours(1);  // no heartbeats after registration
  settings.policyPath = {policyDir()};
  settings.defaultSessionSlots = {};  // the mix asks for what it measures
  settings.maxPendingPerKeypair = 0;  // one caller submits whole batches
  auto manager = orDie(Manager::start(settings, openFileStore(dir.path() / "manager.db", false), token,
                                      bai::stderrLogSink(bai::LogLevel::Warning)),
                       "Manager::start");
  for (std::size_t i = 0; i < agentCount; ++i) {
    auto reply = manager->heartbeat(agentId(i), registration(i, rpc.url()));
    if (!reply) die("registering " + agentId(i) + ": " + reply.error().detail);
  }

  const Caller caller{"bench-user", false};
  std::vector<NewSession> requests;
  for (const auto& resources : requestMix()) {
    NewSession session;
    session.command = {"sleep", "infinity"};
    session.resources = resources;
    requests.push_back(std::move(session));
  }
  LatencyHistogram sampler;
  std::vector<std::string> ids;
  std::vector<Clock::time_point> createdAt;
  std::vector<Clock::duration> heartbeatLatencies;
  HeartbeatTraffic heartbeats(*manager, agentCount);
  std::uint64_t created = 0;
  for (auto _ : state) {
    ids.clear();
    createdAt.clear();
    heartbeats.start();
    const auto start = Clock::now();
    for (std::size_t i = 0; i < batch; ++i) {
      auto session = manager->createSession(caller, requests[created++ % requests.size()]);
      if (!session) {
        state.SkipWithError(("createSession: " + session.error().detail).c_str());
        break;
      }
      ids.push_back(session->id);
      createdAt.push_back(Clock::now());
    }
    if (ids.size() != batch) break;
    const bool running = waitFor(state, *manager, caller, ids, createdAt, SessionStatus::Running, false, &sampler);
    const auto elapsed = Clock::now() - start;
    heartbeats.stop();
    for (auto latency : heartbeats.take()) heartbeatLatencies.push_back(latency);
    if (!running) break;
    if (!heartbeats.failure().empty()) {
      state.SkipWithError(heartbeats.failure().c_str());
      break;
    }
    state.SetIterationTime(seconds(elapsed));
    bool destroyed = true;
    for (const auto& id : ids) {
      if (auto done = manager->destroySession(caller, id); !done) {
        state.SkipWithError(("destroySession: " + done.error().detail).c_str());
        destroyed = false;
        break;
      }
    }
    if (!destroyed || !waitFor(state, *manager, caller, ids, createdAt, SessionStatus::Terminated, true, nullptr)) break;
  }
  heartbeats.stop();
  manager->shutdown();
  manager.reset();
  rpc.stop();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  sampler.report(state);
  if (!heartbeatLatencies.empty()) {
    std::sort(heartbeatLatencies.begin(), heartbeatLatencies.end());
    const auto p99 = heartbeatLatencies[static_cast<std::size_t>(0.99 * static_cast<double>(heartbeatLatencies.size() - 1))];
    state.counters["hb_p99_us"] = seconds(p99) * 1e6;
    state.counters["hb_max_us"] = seconds(heartbeatLatencies.back()) * 1e6;
  }
}

// The agent call of one placement alone: the manager's create-session RPC (libcurl, a
// kept-alive connection) to an agent that answers at once, so the figure is the call's
// own cost on loopback, without the agent's work of starting a process.
void BM_AgentCall(benchmark::State& state) {
  const std::string token = "bench-cluster-token";
  FakeAgentRpc rpc(token);
  rpc.start();
  const bai::manager::AgentClient client(token, std::chrono::seconds(5));
  protocol::CreateSessionRequest request;
  request.command = {"true"};
  request.slots.set(bai::SlotName::of("cpu"), bai::Quantity(1));
  LatencyHistogram sampler;
  std::uint64_t n = 0;
  for (auto _ : state) {
    request.sessionId = "call-" + std::to_string(n++);
    const auto start = Clock::now();
    auto created = client.createSession(rpc.url(), request);
    const auto elapsed = Clock::now() - start;
    if (!created) die("create-session: " + created.error().describe());
    state.SetIterationTime(seconds(elapsed));
    sampler.add(elapsed);
  }
  state.SetItemsProcessed(state.iterations());
  sampler.report(state);
}
BENCHMARK(BM_AgentCall)->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_EndToEnd)
    ->ArgNames({"agents", "batch"})
    ->Args({100, 100})
    ->Args({1000, 100})
    ->Args({5000, 100})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists: the manager's dispatch threads call agents through libcurl.
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fprintf(stderr, "bench_schedule: libcurl initialisation failed\n");
    return 1;
  }
  registerDecisions();
  registerStoreReserve();
  if (!bai::bench::runSpecifiedBenchmarks(argc, argv)) return 1;
  curl_global_cleanup();
  return 0;
}
