// Scheduling policies through the real dlopen path: the bundled plugins answer hand-built
// views as worked out in the comments, and the catalog survives broken fixture policies.
#include "policy/policy_host.hpp"

#include "module_loader.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bai::manager {
namespace {

namespace fs = std::filesystem;

fs::path envDir(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? fs::path(value) : fs::path();
}

struct LogLine {
  LogLevel level;
  std::string message;
};

// Loads `dirs`, keeping the log lines for inspection.
PolicyCatalog loadCatalog(const std::vector<fs::path>& dirs, std::vector<LogLine>* lines = nullptr) {
  auto catalog = PolicyCatalog::load(dirs, [lines](LogLevel level, const std::string&, const std::string& message) {
    if (lines != nullptr) lines->push_back({level, message});
  });
  if (!catalog) throw std::runtime_error(catalog.error().message);
  return std::move(*catalog);
}

// Figures per slot ([slot][row]): one more row's figures, in slot order, appended.
void appendColumn(std::vector<std::vector<double>>& table, const std::vector<double>& figures) {
  for (std::size_t s = 0; s < table.size(); ++s) table[s].push_back(figures.at(s));
}

// The C view of such a table: a pointer to each slot's figures.
std::vector<const double*> rowPointers(const std::vector<std::vector<double>>& table) {
  std::vector<const double*> rows;
  for (const auto& figures : table) rows.push_back(figures.data());
  return rows;
}

// A pending view built session by session; amounts are listed per session in slot order.
struct Pending {
  std::vector<const char*> slots;
  std::vector<double> capacity;  // [slot]
  std::vector<const char*> ids, owners;
  std::vector<std::uint64_t> seq;
  std::vector<std::vector<double>> requested, allocated;  // [slot][session]
  std::vector<const double*> requestedRows, allocatedRows;
  bai_pending_view view{};

  Pending(std::vector<const char*> slotNames, std::vector<double> groupCapacity)
      : slots(std::move(slotNames)), capacity(std::move(groupCapacity)), requested(slots.size()), allocated(slots.size()) {}

  Pending& add(const char* id, const char* owner, std::uint64_t enqueueSeq, std::vector<double> ownerAllocated = {},
               std::vector<double> request = {}) {
    ids.push_back(id), owners.push_back(owner), seq.push_back(enqueueSeq);
    ownerAllocated.resize(slots.size()), request.resize(slots.size());
    appendColumn(allocated, ownerAllocated);
    appendColumn(requested, request);
    return *this;
  }

  const bai_pending_view& build() {
    requestedRows = rowPointers(requested);
    allocatedRows = rowPointers(allocated);
    view = bai_pending_view{sizeof(bai_pending_view), static_cast<std::uint32_t>(ids.size()),
                            static_cast<std::uint32_t>(slots.size()), slots.data(), ids.data(), owners.data(),
                            seq.data(), requestedRows.data(), capacity.data(), allocatedRows.data()};
    return view;
  }
};

// A candidate view built agent by agent, with the session to place; figures in slot order.
struct Candidates {
  std::vector<const char*> slots;
  std::vector<const char*> ids;
  std::vector<std::vector<double>> capacity, remaining;  // [slot][agent]
  std::vector<std::uint32_t> shared;
  std::vector<std::uint8_t> fraction;  // [slot]: the slot's type is "fraction"
  std::vector<const double*> capacityRows, remainingRows;
  std::vector<double> request;
  bai_candidate_view view{};
  bai_session_view session{};

  explicit Candidates(std::vector<const char*> slotNames)
      : slots(std::move(slotNames)), capacity(slots.size()), remaining(slots.size()), request(slots.size(), 0.0) {
    // As the manager marks them from the cluster's slot types; names are never read.
    for (const char* slot : slots) fraction.push_back(std::string_view(slot) == "cuda.shares" || std::string_view(slot) == "acme.npu");
  }

  Candidates& add(const char* id, std::vector<double> cap, std::vector<double> rem, std::uint32_t sharedDevices = 0) {
    ids.push_back(id), shared.push_back(sharedDevices);
    appendColumn(capacity, cap);
    appendColumn(remaining, rem);
    return *this;
  }

  Candidates& requesting(std::vector<double> amounts) {
    request = std::move(amounts);
    request.resize(slots.size());
    return *this;
  }

  const bai_candidate_view& build() {
    capacityRows = rowPointers(capacity);
    remainingRows = rowPointers(remaining);
    // `largest` equals remaining here: no bundled policy reads it.
    view = bai_candidate_view{sizeof(bai_candidate_view), static_cast<std::uint32_t>(ids.size()),
                              static_cast<std::uint32_t>(slots.size()), slots.data(), ids.data(),
                              capacityRows.data(), remainingRows.data(), remainingRows.data(), shared.data(),
                              fraction.data()};
    session = bai_session_view{sizeof(bai_session_view), "s-1", "alice", request.data()};
    return view;
  }
};

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (envDir("BAI_POLICY_DIR").empty()) GTEST_SKIP() << "BAI_POLICY_DIR is not set (run through meson test)";
  }

  std::vector<std::uint32_t> order(const std::string& name, Pending& pending) {
    auto sequencer = catalog_.makeSequencer(name, "{}");
    EXPECT_TRUE(sequencer.ok()) << sequencer.error().message;
    auto result = (*sequencer)->order(pending.build());
    EXPECT_TRUE(result.ok()) << result.error().message;
    return result.ok() ? *result : std::vector<std::uint32_t>{};
  }

  std::string select(Selector& selector, Candidates& candidates) {
    candidates.build();
    auto chosen = selector.select(candidates.session, candidates.view);
    EXPECT_TRUE(chosen.ok()) << chosen.error().message;
    return chosen.ok() ? candidates.ids[*chosen] : "";
  }

  std::string select(const std::string& name, Candidates& candidates, const std::string& options = "{}") {
    auto selector = catalog_.makeSelector(name, options);
    EXPECT_TRUE(selector.ok()) << selector.error().message;
    return selector.ok() ? select(**selector, candidates) : "";
  }

  PolicyCatalog catalog_ = loadCatalog({envDir("BAI_POLICY_DIR")});
};

TEST_F(PolicyTest, CatalogListsTheBundledPoliciesByKind) {
  EXPECT_EQ(catalog_.names(PolicyKind::Sequencer), (std::vector<std::string>{"drf", "fifo", "lifo"}));
  EXPECT_EQ(catalog_.names(PolicyKind::Selector), (std::vector<std::string>{"concentrated", "dispersed", "roundrobin"}));
  EXPECT_TRUE(catalog_.skipped().empty());
  for (auto [name, preference] : {std::pair{"concentrated", BAI_PREFER_LEAST_REMAINING},
                                  std::pair{"dispersed", BAI_PREFER_MOST_REMAINING},
                                  std::pair{"roundrobin", BAI_PREFER_ANY}}) {
    auto selector = catalog_.makeSelector(name, "{}");
    ASSERT_TRUE(selector.ok()) << selector.error().message;
    EXPECT_EQ((*selector)->preference(), preference) << name;
    EXPECT_EQ((*selector)->name(), name);
  }
}

TEST_F(PolicyTest, FifoAndLifoFollowEnqueueOrder) {
  // Listed s0, s1, s2 with enqueue_seq 30, 10, 20: oldest first is s1, s2, s0.
  Pending pending({"cpu"}, {8});
  pending.add("s0", "alice", 30).add("s1", "bob", 10).add("s2", "alice", 20);
  EXPECT_EQ(order("fifo", pending), (std::vector<std::uint32_t>{1, 2, 0}));
  EXPECT_EQ(order("lifo", pending), (std::vector<std::uint32_t>{0, 2, 1}));
}

TEST_F(PolicyTest, DrfPutsTheSmallestDominantShareFirstAndSkipsEmptySlots) {
  // Group capacity: cuda.device 8, rocm.device 0 (no live agent offers it), cpu 64.
  //   alice holds 2 GPUs, 8 cpu: shares 2/8 = 0.25, 8/64 = 0.125 -> dominant 0.25
  //   bob   holds 8 cpu and 5 rocm: 8/64 = 0.125; rocm has no capacity, so it is
  //         skipped (dividing would make bob's share infinite)   -> dominant 0.125
  //   carol holds 1 GPU: 1/8 = 0.125                              -> dominant 0.125
  // Bob and carol tie at 0.125 and go first, oldest first: s4 (seq 0), s1 (3), s3 (4);
  // then alice's s0 (1), s2 (2).
  Pending pending({"cuda.device", "rocm.device", "cpu"}, {8, 0, 64});
  const std::vector<double> alice{2, 0, 8}, bob{0, 5, 8}, carol{1, 0, 0};
  pending.add("s0", "alice", 1, alice)
      .add("s1", "bob", 3, bob)
      .add("s2", "alice", 2, alice)
      .add("s3", "bob", 4, bob)
      .add("s4", "carol", 0, carol);
  EXPECT_EQ(order("drf", pending), (std::vector<std::uint32_t>{4, 1, 3, 0, 2}));
}

TEST_F(PolicyTest, DrfInterleavesOwnersAsTheirSessionsWouldBePlaced) {
  // Nobody holds anything yet (group: 8 GPUs). alice queued three 2-GPU sessions before
  // bob's one. By shares alone all are 0 and age decides: a1 a2 a3 b1. Progressive
  // filling counts a1 in alice's share (2/8 = 0.25), so bob (0) comes next: a1 b1 a2 a3.
  Pending pending({"cuda.device"}, {8});
  pending.add("a1", "alice", 1, {}, {2}).add("a2", "alice", 2, {}, {2}).add("a3", "alice", 3, {}, {2}).add("b1", "bob", 4, {}, {2});
  EXPECT_EQ(order("drf", pending), (std::vector<std::uint32_t>{0, 3, 1, 2}));
}

TEST_F(PolicyTest, ConcentratedPicksFewestIdleKindsThenLeastRemaining) {
  // Slots cuda.device, cpu, mem; every agent has capacity {4, 32, 128}.
  //   a1 remaining {4, 32, 128}: all 3 kinds idle
  //   a3 remaining {1,  8, 128}: mem idle (1 kind), although it has the least remaining
  //   a4 remaining {2, 16, 120}: no idle kind
  //   a2 remaining {2, 30, 100}: no idle kind; ties a4 on GPUs, more cpu left
  // Fewest idle kinds leaves a4 and a2; least remaining slot by slot picks a4.
  Candidates candidates({"cuda.device", "cpu", "mem"});
  const std::vector<double> cap{4, 32, 128};
  candidates.add("a1", cap, {4, 32, 128}).add("a3", cap, {1, 8, 128}).add("a4", cap, {2, 16, 120}).add("a2", cap, {2, 30, 100});
  candidates.requesting({1, 1, 1});
  EXPECT_EQ(select("concentrated", candidates), "a4");

  // Equal figures: the smaller id. A slot of capacity 0 is not idle.
  Candidates tie({"cuda.device", "cpu"});
  tie.add("b", {0, 8}, {0, 4}).add("a", {0, 8}, {0, 4}).add("c", {2, 8}, {2, 4});
  EXPECT_EQ(select("concentrated", tie), "a");
}

TEST_F(PolicyTest, DispersedPicksMostRemaining) {
  // x {2, 32, 128}, y {3, 8, 16}, z {3, 8, 64}: GPUs first (y and z have 3), cpu ties at 8,
  // mem decides: z. Two identical agents: the smaller id.
  Candidates candidates({"cuda.device", "cpu", "mem"});
  const std::vector<double> cap{4, 32, 128};
  candidates.add("x", cap, {2, 32, 128}).add("y", cap, {3, 8, 16}).add("z", cap, {3, 8, 64});
  EXPECT_EQ(select("dispersed", candidates), "z");

  Candidates tie({"cpu"});
  tie.add("y2", {8}, {8}).add("y1", {8}, {8});
  EXPECT_EQ(select("dispersed", tie), "y1");
}

TEST_F(PolicyTest, CpuOnlySessionsKeepOffIdleAcceleratorNodes) {
  // gpu: 8 idle GPUs and 64 cpu left; cpu-node: no GPUs and 16 cpu left. A cpu-only
  // session: both selectors avoid tying up the idle GPU node (1 spare device kind vs 0),
  // although dispersed would otherwise prefer its larger remainder.
  Candidates cpuOnly({"cuda.device", "cpu"});
  cpuOnly.add("gpu", {8, 64}, {8, 64}).add("cpu-node", {0, 32}, {0, 16});
  cpuOnly.requesting({0, 2});
  EXPECT_EQ(select("dispersed", cpuOnly), "cpu-node");
  EXPECT_EQ(select("concentrated", cpuOnly), "cpu-node");
  // A GPU session goes to the GPU node, of course (the only candidate with GPUs would be
  // offered anyway); with two GPU nodes, dispersed compares the requested GPUs first.
  Candidates gpu({"cuda.device", "cpu"});
  gpu.add("g1", {8, 64}, {2, 64}).add("g2", {8, 64}, {6, 8});
  gpu.requesting({1, 1});
  EXPECT_EQ(select("dispersed", gpu), "g2");
  gpu.requesting({0, 1});  // cpu only: now cpu decides among nodes with no idle GPUs
  EXPECT_EQ(select("dispersed", gpu), "g1");
}

TEST_F(PolicyTest, RoundRobinRotatesByAgentId) {
  // Listed c, a, b: the cursor starts before every id, so a, b, c, then wraps to a. Then b
  // leaves: the next after a among {a, c} is c.
  auto selector = catalog_.makeSelector("roundrobin", "{}");
  ASSERT_TRUE(selector.ok()) << selector.error().message;
  Candidates three({"cpu"});
  three.add("c", {8}, {8}).add("a", {8}, {8}).add("b", {8}, {8});
  std::vector<std::string> chosen;
  for (int call = 0; call < 4; ++call) chosen.push_back(select(**selector, three));
  EXPECT_EQ(chosen, (std::vector<std::string>{"a", "b", "c", "a"}));

  Candidates two({"cpu"});
  two.add("a", {8}, {8}).add("c", {8}, {8});
  EXPECT_EQ(select(**selector, two), "c");
}

TEST_F(PolicyTest, ConcentratedPreferSharedAppliesToSharesRequestsOnly) {
  // A cuda.shares request. g1 has the least remaining, so plain concentrated takes it;
  // g2 already shares one GPU, so prefer_shared takes g2 and leaves g1's GPUs whole.
  Candidates shares({"cuda.shares", "cpu", "mem"});
  const std::vector<double> cap{2, 16, 64};
  shares.add("g1", cap, {1.0, 4, 16}, 0).add("g2", cap, {1.5, 8, 32}, 1).requesting({0.5, 1, 1});
  EXPECT_EQ(select("concentrated", shares), "g1");
  EXPECT_EQ(select("concentrated", shares, R"({"prefer_shared": true})"), "g2");
  EXPECT_EQ(select("concentrated", shares, R"({"prefer_shared": false})"), "g1");

  // A whole-device request (cuda.shares listed but 0): shared devices do not matter, and
  // d1's least remaining wins (d1's cuda.shares has no capacity, so it is not idle).
  Candidates devices({"cuda.device", "cuda.shares", "cpu", "mem"});
  devices.add("d1", {4, 0, 16, 64}, {1, 0, 4, 16}, 0).add("d2", {2, 2, 16, 64}, {1, 1.5, 8, 32}, 1);
  devices.requesting({1, 0, 1, 1});
  EXPECT_EQ(select("concentrated", devices, R"({"prefer_shared": true})"), "d1");
}

TEST_F(PolicyTest, AVendorsFractionSlotIsPackedExactlyAsCudaSharesIs) {
  const std::vector<double> cap{2, 16, 64};
  for (const char* slot : {"cuda.shares", "acme.npu"}) {
    Candidates shares({slot, "cpu", "mem"});
    shares.add("g1", cap, {1.0, 4, 16}, 0).add("g2", cap, {1.5, 8, 32}, 1).requesting({0.5, 1, 1});
    EXPECT_EQ(select("concentrated", shares), "g1") << slot;
    EXPECT_EQ(select("concentrated", shares, R"({"prefer_shared": true})"), "g2") << slot;
  }
  // A slot named like shares but not of the fraction type is not packed by shares.
  Candidates named({"acme.shares", "cpu", "mem"});
  named.add("g1", cap, {1.0, 4, 16}, 0).add("g2", cap, {1.5, 8, 32}, 1).requesting({0.5, 1, 1});
  EXPECT_EQ(select("concentrated", named, R"({"prefer_shared": true})"), "g1");
  // A view from a manager before policy ABI 1.1 carries no slot types: no packing by shares.
  Candidates old({"cuda.shares", "cpu", "mem"});
  old.add("g1", cap, {1.0, 4, 16}, 0).add("g2", cap, {1.5, 8, 32}, 1).requesting({0.5, 1, 1});
  old.build();
  old.view.struct_size = offsetof(bai_candidate_view, slot_is_fraction);
  old.view.slot_is_fraction = nullptr;
  auto selector = catalog_.makeSelector("concentrated", R"({"prefer_shared": true})");
  ASSERT_TRUE(selector.ok());
  auto chosen = (*selector)->select(old.session, old.view);
  ASSERT_TRUE(chosen.ok());
  EXPECT_STREQ(old.ids[*chosen], "g1");
}

TEST_F(PolicyTest, BadOptionsSurfaceTheCreateError) {
  auto message = [](auto result) { return result.ok() ? std::string("(created)") : result.error().message; };
  EXPECT_EQ(message(catalog_.makeSelector("concentrated", "{not json")),
            "policy 'concentrated': options are not valid JSON");
  EXPECT_EQ(message(catalog_.makeSelector("concentrated", R"({"prefer_shared": "yes"})")),
            "policy 'concentrated': option 'prefer_shared' must be true or false");
  EXPECT_EQ(message(catalog_.makeSequencer("fifo", R"({"window": 3})")), "policy 'fifo': unknown option 'window'");
  EXPECT_EQ(message(catalog_.makeSequencer("drf", "[]")), "policy 'drf': options must be a JSON object");
}

TEST_F(PolicyTest, UnknownOrMisKindedNamesListTheKnownOnes) {
  auto missing = catalog_.makeSequencer("fair-share", "{}");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  EXPECT_EQ(missing.error().message, "no scheduling policy named 'fair-share'; known sequencers: drf, fifo, lifo");
  auto wrongKind = catalog_.makeSequencer("dispersed", "{}");
  ASSERT_FALSE(wrongKind.ok());
  EXPECT_EQ(wrongKind.error().message,
            "'dispersed' is a selector, not a sequencer; known sequencers: drf, fifo, lifo");
}

TEST_F(PolicyTest, AViewOlderThanTheAbiIsRefusedByThePolicy) {
  // A struct_size that does not cover the 1.0 members: the policy answers kBadArguments (1).
  Pending pending({"cpu"}, {8});
  pending.add("s0", "alice", 1).add("s1", "bob", 2);
  bai_pending_view view = pending.build();
  view.struct_size = 8;
  auto fifo = catalog_.makeSequencer("fifo", "{}");
  ASSERT_TRUE(fifo.ok());
  auto result = (*fifo)->order(view);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "policy 'fifo': order returned status 1");
}

class PolicyFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (envDir("BAI_POLICY_FIXTURE_DIR").empty()) GTEST_SKIP() << "BAI_POLICY_FIXTURE_DIR is not set";
  }
  fs::path fixture(const char* file) const { return fs::absolute(envDir("BAI_POLICY_FIXTURE_DIR") / file); }
};

TEST_F(PolicyFixtureTest, BrokenPoliciesAreSkippedWithTheirReasons) {
  std::vector<LogLine> lines;
  PolicyCatalog catalog = loadCatalog({envDir("BAI_POLICY_FIXTURE_DIR")}, &lines);
  EXPECT_EQ(catalog.names(PolicyKind::Sequencer), std::vector<std::string>{"bad-order"});
  EXPECT_EQ(catalog.names(PolicyKind::Selector), std::vector<std::string>{"bad-select"});

  // Files are loaded in name order, so duplicate.so comes after bad-order.so.
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"duplicate.so", "a policy named 'bad-order' is already loaded from " + fixture("bad-order.so").string()},
      {"no-entry.so", "no bai_policy_entry symbol"},
      {"not-a-policy.so", "no bai_policy_info symbol: not a bai scheduling policy"},
      {"small-table.so", "call table struct_size 32 is smaller than the ABI 1.0 table (52)"},
      {"wrong-major.so", "built for policy ABI 2." + std::to_string(BAI_POLICY_ABI_MINOR) + ", this manager speaks 1.x"},
  };
  ASSERT_EQ(catalog.skipped().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const SkippedPolicy& skipped = catalog.skipped()[i];
    EXPECT_EQ(skipped.file, fixture(expected[i].first.c_str()));
    EXPECT_EQ(skipped.reason, expected[i].second);
    // One error line names the file and the reason.
    int logged = 0;
    for (const auto& line : lines) {
      logged += line.level == LogLevel::Error && line.message.find(skipped.file.string()) != std::string::npos &&
                line.message.find(skipped.reason) != std::string::npos;
    }
    EXPECT_EQ(logged, 1) << expected[i].first;
  }
}

TEST_F(PolicyFixtureTest, WrongAnswersAreErrorsNotCrashes) {
  PolicyCatalog catalog = loadCatalog({envDir("BAI_POLICY_FIXTURE_DIR")});
  auto sequencer = catalog.makeSequencer("bad-order", "{}");
  ASSERT_TRUE(sequencer.ok()) << sequencer.error().message;
  Pending pending({"cpu"}, {8});
  pending.add("s0", "alice", 1).add("s1", "alice", 2).add("s2", "bob", 3);
  auto ordered = (*sequencer)->order(pending.build());  // answers {0, 1, 0}
  ASSERT_FALSE(ordered.ok());
  EXPECT_EQ(ordered.error().message, "policy 'bad-order': order answered session 0 twice: not a permutation");

  auto selector = catalog.makeSelector("bad-select", "{}");
  ASSERT_TRUE(selector.ok()) << selector.error().message;
  Candidates candidates({"cpu"});
  candidates.add("a", {8}, {8}).add("b", {8}, {8}).build();
  auto chosen = (*selector)->select(candidates.session, candidates.view);  // answers 2
  ASSERT_FALSE(chosen.ok());
  EXPECT_EQ(chosen.error().message, "policy 'bad-select': select answered index 2 for 2 candidate(s)");
}

TEST_F(PolicyFixtureTest, EachInstanceIsDestroyedOnceEvenAfterTheCatalog) {
  // The fixture counts its live instances in an exported int; opening the same file again
  // gives the same mapping, so the test reads the catalog's copy.
  auto probe = LoadedModule::open(fixture("bad-select.so"));
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  const auto* live = static_cast<const int*>(probe->symbol("fixture_live_instances"));
  ASSERT_NE(live, nullptr);
  const int before = *live;

  std::unique_ptr<Selector> kept;
  {
    PolicyCatalog catalog = loadCatalog({envDir("BAI_POLICY_FIXTURE_DIR")});
    auto first = catalog.makeSelector("bad-select", "{}");
    auto second = catalog.makeSelector("bad-select", "{}");
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_EQ(*live, before + 2);
    kept = std::move(*first);
  }  // the catalog and the second instance go; the kept instance still holds the module
  EXPECT_EQ(*live, before + 1);
  EXPECT_EQ(kept->name(), "bad-select");
  kept.reset();
  EXPECT_EQ(*live, before);
}

TEST(PolicyCatalogTest, AFileGivenAsDirectoryIsAnErrorAndAMissingOneAWarning) {
  const fs::path file = fs::temp_directory_path() / ("bai-policy-test-not-a-dir-" + std::to_string(getpid()));
  { std::ofstream(file) << "x"; }
  auto notDir = PolicyCatalog::load({file}, [](LogLevel, const std::string&, const std::string&) {});
  ASSERT_FALSE(notDir.ok());
  EXPECT_EQ(notDir.error().message, "policy directory " + file.string() + " is not a directory");
  fs::remove(file);

  std::vector<LogLine> lines;
  auto missing = loadCatalog({"/nonexistent/bai-policies"}, &lines);
  EXPECT_TRUE(missing.names(PolicyKind::Selector).empty());
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front().level, LogLevel::Warning);
  EXPECT_EQ(lines.front().message, "policy directory /nonexistent/bai-policies does not exist; skipped");
}

}  // namespace
}  // namespace bai::manager
