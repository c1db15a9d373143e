#include "cluster.hpp"
#include "slot_registry.hpp"

#include <gtest/gtest.h>

namespace bai::manager {
namespace {

Quantity q(const char* text) { return *Quantity::parse(text); }

AgentView agent(const std::string& id, std::map<std::string, std::pair<const char*, const char*>> capacityUsed,
                const std::string& group = "default") {
  AgentView view;
  view.record.id = id;
  view.record.scalingGroup = group;
  for (const auto& [slot, figures] : capacityUsed) {
    view.record.slots[slot] = {q(figures.first), q(figures.second), q(figures.first) - q(figures.second)};
  }
  return view;
}

SessionRecord request(std::map<std::string, const char*> amounts, const std::string& group = "default") {
  SessionRecord session;
  session.id = "s";
  session.scalingGroup = group;
  for (const auto& [slot, amount] : amounts) session.requested.set(SlotName::of(slot), q(amount));
  return session;
}

std::string pick(const std::map<std::string, AgentView>& agents, const SessionRecord& session, SelectorKind kind,
                 const std::set<std::string>& excluded = {}) {
  auto selector = makeSelector(kind);
  PlacementChoice choice = choosePlacement(session, agents, *selector, excluded);
  return choice.agent == nullptr ? "none: " + choice.reason : choice.agent->record.id;
}

TEST(Selectors, ConcentratedPacksAndDispersedSpreads) {
  std::map<std::string, AgentView> agents;
  agents["a"] = agent("a", {{"cuda.device", {"8", "6"}}, {"cpu", {"64", "40"}}});
  agents["b"] = agent("b", {{"cuda.device", {"8", "2"}}, {"cpu", {"64", "10"}}});
  agents["c"] = agent("c", {{"cuda.device", {"8", "0"}}, {"cpu", {"64", "0"}}});
  const auto session = request({{"cuda.device", "1"}, {"cpu", "4"}});
  // a has 2 GPUs left, b 6, c 8 (and c is wholly idle).
  EXPECT_EQ(pick(agents, session, SelectorKind::Concentrated), "a");
  EXPECT_EQ(pick(agents, session, SelectorKind::Dispersed), "c");
}

TEST(Selectors, ConcentratedPrefersAgentsWithFewerIdleSlotKinds) {
  std::map<std::string, AgentView> agents;
  // x has less left, but its GPUs are untouched; y already has work on every slot kind.
  agents["x"] = agent("x", {{"cuda.device", {"2", "0"}}, {"cpu", {"8", "4"}}});
  agents["y"] = agent("y", {{"cuda.device", {"8", "1"}}, {"cpu", {"64", "1"}}});
  EXPECT_EQ(pick(agents, request({{"cpu", "1"}}), SelectorKind::Concentrated), "y")
      << "starting on x would break into its idle GPUs' node";
}

TEST(Selectors, AcceleratorsWeighFirstThenCpuThenMem) {
  EXPECT_EQ(slotPriorityOrder({"mem", "cpu", "acme.device", "rocm.device", "cuda.shares", "zz"}),
            (std::vector<std::string>{"cuda.shares", "rocm.device", "acme.device", "cpu", "mem", "zz"}));
  std::map<std::string, AgentView> agents;
  agents["gpu-rich"] = agent("gpu-rich", {{"cuda.device", {"8", "0"}}, {"cpu", {"8", "7"}}});
  agents["cpu-rich"] = agent("cpu-rich", {{"cuda.device", {"8", "4"}}, {"cpu", {"64", "0"}}});
  EXPECT_EQ(pick(agents, request({{"cpu", "1"}}), SelectorKind::Dispersed), "gpu-rich");
}

TEST(Placement, EverySlotMustFitAndTheReasonNamesTheShortSlot) {
  std::map<std::string, AgentView> agents;
  agents["a"] = agent("a", {{"cuda.device", {"4", "3"}}, {"cpu", {"16", "0"}}});
  agents["b"] = agent("b", {{"cuda.device", {"4", "2"}}, {"cpu", {"16", "15"}}});
  EXPECT_EQ(pick(agents, request({{"cuda.device", "2"}, {"cpu", "1"}}), SelectorKind::Concentrated), "b");
  EXPECT_EQ(pick(agents, request({{"cuda.device", "2"}, {"cpu", "2"}}), SelectorKind::Concentrated),
            "none: no agent has cpu 2 free (best: b with 1)");
  EXPECT_EQ(pick(agents, request({{"cuda.device", "3"}}), SelectorKind::Concentrated),
            "none: no agent has cuda.device 3 free (best: b with 2)");
}

TEST(Placement, AZeroAmountNeedsNothingAndAVendorSlotIsJustASlot) {
  std::map<std::string, AgentView> agents;
  agents["plain"] = agent("plain", {{"cpu", {"4", "0"}}});
  agents["acme"] = agent("acme", {{"acme.device", {"2", "0"}}, {"cpu", {"4", "3"}}});
  EXPECT_EQ(pick(agents, request({{"acme.device", "1"}}), SelectorKind::Dispersed), "acme");
  EXPECT_EQ(pick(agents, request({{"acme.device", "0"}, {"cpu", "2"}}), SelectorKind::Dispersed), "plain");
}

TEST(Placement, FractionalRequestsNeedTheLargestAllocatableNotJustTheRemainder) {
  std::map<std::string, AgentView> agents;
  // "frag" has 2.0 shares left in total, but scattered: at most 0.6 on one GPU.
  agents["frag"] = agent("frag", {{"cuda.shares", {"4", "2"}}});
  agents["frag"].record.slots["cuda.shares"].largest = q("0.6");
  agents["whole"] = agent("whole", {{"cuda.shares", {"2", "1"}}});
  const auto half = request({{"cuda.shares", "0.5"}});
  const auto big = request({{"cuda.shares", "0.8"}});
  EXPECT_EQ(pick(agents, half, SelectorKind::Dispersed), "frag");
  EXPECT_EQ(pick(agents, big, SelectorKind::Dispersed), "whole") << "a naive remaining check would pick frag and be refused";

  // Our own placement since frag's last report: its figure is no longer 0.6.
  agents["frag"].unseenPlacements["earlier"] = ResourceSlot{{SlotName::of("cuda.shares"), q("0.3")}};
  EXPECT_EQ(agents["frag"].largestAllocatable("cuda.shares"), q("0.3"));
  EXPECT_EQ(pick(agents, request({{"cuda.shares", "0.4"}}), SelectorKind::Dispersed), "whole");
  agents["frag"].unseenPlacements.clear();  // the agent reported it
  EXPECT_EQ(pick(agents, request({{"cuda.shares", "0.4"}}), SelectorKind::Dispersed), "frag");
}

TEST(Placement, OnlyLiveAgentsOfTheGroupAndNotExcludedOnes) {
  std::map<std::string, AgentView> agents;
  agents["gpu1"] = agent("gpu1", {{"cpu", {"8", "0"}}}, "gpu");
  agents["gpu2"] = agent("gpu2", {{"cpu", {"8", "4"}}}, "gpu");
  agents["cpu1"] = agent("cpu1", {{"cpu", {"64", "0"}}}, "default");
  agents["gpu1"].record.status = AgentStatus::Lost;
  const auto session = request({{"cpu", "1"}}, "gpu");
  EXPECT_EQ(pick(agents, session, SelectorKind::Dispersed), "gpu2");
  EXPECT_EQ(pick(agents, session, SelectorKind::Dispersed, {"gpu2"}),
            "none: every live agent of scaling group 'gpu' refused it");
  EXPECT_EQ(pick(agents, request({{"cpu", "1"}}, "none"), SelectorKind::Dispersed),
            "none: no live agent in scaling group 'none'");
}

TEST(AgentView, UsedNeverGoesNegativeAndRemainingFollowsIt) {
  AgentView view = agent("a", {{"cpu", {"4", "1"}}});
  view.addUsed(ResourceSlot{{SlotName::of("cpu"), q("2")}});
  EXPECT_EQ(view.remaining("cpu"), q("1"));
  view.subtractUsed(ResourceSlot{{SlotName::of("cpu"), q("5")}});
  EXPECT_EQ(view.used("cpu"), Quantity());
  EXPECT_EQ(view.remaining("unknown"), Quantity());
}

TEST(SlotRegistry, LearnsNewSlotsKeepsThemAndRefusesAnotherType) {
  SlotRegistry registry({{"cpu", SlotType::Count}, {"mem", SlotType::Bytes}});
  LearnedSlots learned = registry.compare({{"cpu", SlotType::Count}, {"acme.device", SlotType::Count}, {"mem", SlotType::Count}});
  EXPECT_EQ(learned.added, (std::map<std::string, SlotType>{{"acme.device", SlotType::Count}}));
  ASSERT_EQ(learned.conflicts.size(), 1u);
  EXPECT_EQ(learned.conflicts[0].slot, "mem");
  EXPECT_EQ(learned.conflicts[0].known, SlotType::Bytes);
  EXPECT_EQ(registry.find("acme.device"), nullptr) << "compare changes nothing";
  registry.add(learned.added);
  ASSERT_NE(registry.find("acme.device"), nullptr);
  registry.add({});
  EXPECT_EQ(registry.all().size(), 3u) << "never removed";
  EXPECT_NE(registry.table().find("acme.device"), nullptr);
}

}  // namespace
}  // namespace bai::manager
