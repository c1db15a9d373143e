#include "placement_index.hpp"
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

// The ids the index offers, in its order, or "none: <reason>".
std::string offer(std::map<std::string, AgentView>& agents, const SessionRecord& session,
                  std::uint32_t preference = BAI_PREFER_LEAST_REMAINING, const std::set<std::string>& excluded = {},
                  std::size_t limit = 8) {
  PlacementIndex index;
  for (auto& [id, agent] : agents) index.update(agent);
  std::string reason;
  auto found = index.candidates(session, preference, limit, excluded, &reason);
  if (found.empty()) return "none: " + reason;
  std::string out;
  for (const AgentView* agent : found) out += (out.empty() ? "" : " ") + agent->record.id;
  return out;
}

TEST(PlacementIndex, OffersTheAgentsThatFitInTheSelectorsPreferredOrder) {
  std::map<std::string, AgentView> agents;
  agents["a"] = agent("a", {{"cuda.device", {"8", "6"}}, {"cpu", {"64", "40"}}});  // 2 GPUs left
  agents["b"] = agent("b", {{"cuda.device", {"8", "2"}}, {"cpu", {"64", "10"}}});  // 6
  agents["c"] = agent("c", {{"cuda.device", {"8", "0"}}, {"cpu", {"64", "0"}}});   // 8
  agents["d"] = agent("d", {{"cuda.device", {"8", "7"}}, {"cpu", {"64", "0"}}});   // 1: too few
  const auto session = request({{"cuda.device", "2"}, {"cpu", "4"}});
  EXPECT_EQ(offer(agents, session, BAI_PREFER_LEAST_REMAINING), "a b c");
  EXPECT_EQ(offer(agents, session, BAI_PREFER_MOST_REMAINING), "c b a");
  EXPECT_EQ(offer(agents, session, BAI_PREFER_LEAST_REMAINING, {}, 2), "a b") << "a window, not the whole group";
  EXPECT_EQ(offer(agents, session, BAI_PREFER_LEAST_REMAINING, {"a"}), "b c");
}

TEST(PlacementIndex, ARotatingWindowStartsAfterThePreviousOne) {
  std::map<std::string, AgentView> agents;
  for (const char* id : {"a", "b", "c"}) agents[id] = agent(id, {{"cpu", {"4", "0"}}});
  PlacementIndex index;
  for (auto& [id, view] : agents) index.update(view);
  std::string starts;
  for (int i = 0; i < 4; ++i) starts += index.candidates(request({{"cpu", "1"}}), BAI_PREFER_ANY, 1, {}, nullptr)[0]->record.id;
  EXPECT_EQ(starts, "abca");
  // Once a rotation exists, a request nothing fits must find nothing (and not walk off
  // the end of the index, as it once did).
  std::string reason;
  EXPECT_TRUE(index.candidates(request({{"cpu", "5"}}), BAI_PREFER_ANY, 1, {}, &reason).empty());
  EXPECT_EQ(reason, "no agent has cpu 5 free (best: c with 4)");
}

TEST(PlacementIndex, EverySlotMustFitAndTheReasonNamesTheShortSlot) {
  std::map<std::string, AgentView> agents;
  agents["a"] = agent("a", {{"cuda.device", {"4", "3"}}, {"cpu", {"16", "0"}}});
  agents["b"] = agent("b", {{"cuda.device", {"4", "2"}}, {"cpu", {"16", "15"}}});
  EXPECT_EQ(offer(agents, request({{"cuda.device", "2"}, {"cpu", "1"}})), "b");
  EXPECT_EQ(offer(agents, request({{"cuda.device", "2"}, {"cpu", "2"}})),
            "none: no agent has every requested slot free at once (b is short of cpu)");
  EXPECT_EQ(offer(agents, request({{"cuda.device", "3"}})), "none: no agent has cuda.device 3 free (best: b with 2)");
}

TEST(PlacementIndex, AZeroAmountNeedsNothingAndAVendorSlotIsJustASlot) {
  std::map<std::string, AgentView> agents;
  agents["plain"] = agent("plain", {{"cpu", {"4", "0"}}});
  agents["acme"] = agent("acme", {{"acme.device", {"2", "0"}}, {"cpu", {"4", "3"}}});
  EXPECT_EQ(offer(agents, request({{"acme.device", "1"}})), "acme");
  EXPECT_EQ(offer(agents, request({{"acme.device", "0"}, {"cpu", "2"}})), "plain");
  EXPECT_EQ(offer(agents, request({{"rocm.device", "1"}})), "none: no agent has rocm.device 1 free");
}

// A withdrawn plugin's slots: the index says which agents withdrew it and why, until
// their next report no longer does or they leave the group.
TEST(PlacementIndex, NamesThePluginsWithdrawnOnTheGroupsAgents) {
  std::map<std::string, AgentView> agents;
  agents["x"] = agent("x", {{"acme.npu", {"0", "0"}}, {"cpu", {"4", "0"}}});
  agents["x"].withdrawnPlugins["acme"] = "plugin acme withdrawn on agent x: health did not return within 5000 ms";
  agents["y"] = agent("y", {{"cpu", {"4", "0"}}});
  PlacementIndex index;
  for (auto& [id, view] : agents) index.update(view);
  EXPECT_EQ(index.withdrawnPlugins(request({{"acme.npu", "1"}, {"cpu", "1"}})),
            "acme.npu: plugin acme withdrawn on agent x: health did not return within 5000 ms");
  EXPECT_EQ(index.withdrawnPlugins(request({{"cpu", "1"}})), "");
  agents["x"].withdrawnPlugins.clear();
  index.update(agents["x"]);
  EXPECT_EQ(index.withdrawnPlugins(request({{"acme.npu", "1"}})), "");
}

// The cluster where a naive placement (remaining capacity only) fails on the agent.
TEST(PlacementIndex, FractionalRequestsNeedTheLargestAllocatableNotJustTheRemainder) {
  std::map<std::string, AgentView> agents;
  // "frag" has 2.0 shares left in total, but scattered: at most 0.6 on one GPU.
  agents["frag"] = agent("frag", {{"cuda.shares", {"4", "2"}}});
  agents["frag"].record.slots["cuda.shares"].largest = q("0.6");
  agents["whole"] = agent("whole", {{"cuda.shares", {"2", "1"}}});
  EXPECT_EQ(offer(agents, request({{"cuda.shares", "0.5"}}), BAI_PREFER_MOST_REMAINING), "frag whole");
  EXPECT_EQ(offer(agents, request({{"cuda.shares", "0.8"}}), BAI_PREFER_MOST_REMAINING), "whole")
      << "a naive remaining check would offer frag, whose agent would refuse";

  // Our own placement since frag's last report: its figure is no longer 0.6.
  agents["frag"].unseenPlacements["earlier"] = ResourceSlot{{SlotName::of("cuda.shares"), q("0.3")}};
  EXPECT_EQ(agents["frag"].largestAllocatable("cuda.shares"), q("0.3"));
  EXPECT_EQ(offer(agents, request({{"cuda.shares", "0.4"}}), BAI_PREFER_MOST_REMAINING), "whole");
  agents["frag"].unseenPlacements.clear();  // the agent reported it
  EXPECT_EQ(offer(agents, request({{"cuda.shares", "0.4"}}), BAI_PREFER_MOST_REMAINING), "frag whole");
}

TEST(PlacementIndex, LostAgentsAreLeftOutAndUpdatesMoveAgentsInTheOrder) {
  std::map<std::string, AgentView> agents;
  agents["x"] = agent("x", {{"cpu", {"8", "0"}}});
  agents["y"] = agent("y", {{"cpu", {"8", "4"}}});
  PlacementIndex index;
  for (auto& [id, view] : agents) index.update(view);
  auto ids = [&] {
    std::string out;
    for (auto* a : index.candidates(request({{"cpu", "1"}}), BAI_PREFER_LEAST_REMAINING, 8, {}, nullptr)) out += a->record.id;
    return out;
  };
  EXPECT_EQ(ids(), "yx");
  agents["x"].addUsed(ResourceSlot{{SlotName::of("cpu"), q("6")}});
  index.update(agents["x"]);
  EXPECT_EQ(ids(), "xy");
  agents["y"].record.status = AgentStatus::Lost;
  index.update(agents["y"]);
  EXPECT_EQ(ids(), "x");
  EXPECT_EQ(index.capacity("cpu"), q("8"));
  std::string reason;
  EXPECT_TRUE(index.candidates(request({{"cpu", "1"}}, "other"), BAI_PREFER_ANY, 8, {"x"}, &reason).empty());
  EXPECT_TRUE(index.couldEverFit(request({{"cpu", "8"}})));
  EXPECT_FALSE(index.couldEverFit(request({{"cpu", "9"}}))) << "bigger than any agent: it must not block the queue";
}

TEST(PlacementIndex, SlotsFollowTheGroupsPriorityThenTheDefaultOrder) {
  const SlotRegistry types({{"mem", SlotType::Bytes}, {"cpu", SlotType::Count},
                            {"cuda.shares", SlotType::Fraction}, {"acme.device", SlotType::Count}});
  // Accelerator slots (a plugin's key before the dot) by name, then intrinsic ones by
  // type (count, bytes), then a slot of unknown type: no vendor's name is special.
  EXPECT_EQ(slotPriorityOrder({"mem", "cpu", "acme.device", "rocm.device", "cuda.shares", "zz"}, &types),
            (std::vector<std::string>{"acme.device", "cuda.shares", "rocm.device", "cpu", "mem", "zz"}));
  std::map<std::string, AgentView> agents;
  agents["a"] = agent("a", {{"cpu", {"4", "0"}}, {"mem", {"8", "0"}}, {"cuda.device", {"1", "0"}}});
  PlacementIndex index({"mem"});
  index.update(agents["a"]);
  EXPECT_EQ(index.slotOrder(), (std::vector<std::string>{"mem", "cuda.device", "cpu"}));
  CandidateWindow window;
  index.describe({&agents["a"]}, {{"a", 2}}, window);
  ASSERT_EQ(window.view.agent_count, 1u);
  ASSERT_EQ(window.view.slot_count, 3u);
  EXPECT_STREQ(window.view.slot_names[0], "mem");
  EXPECT_EQ(window.view.capacity[0][0], 8.0);
  EXPECT_EQ(window.view.remaining[2][0], 4.0);
  EXPECT_EQ(window.view.shared_devices[0], 2u);
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
  registry.add(learned);
  ASSERT_NE(registry.find("acme.device"), nullptr);
  registry.add(LearnedSlots{});
  EXPECT_EQ(registry.all().size(), 3u) << "never removed";
  EXPECT_NE(registry.table().find("acme.device"), nullptr);
}

TEST(SlotRegistry, RefinesACountSlotToFractionButNothingElse) {
  SlotRegistry registry({{"cuda.shares", SlotType::Count}, {"acme.npu", SlotType::Fraction}});
  LearnedSlots learned = registry.compare({{"cuda.shares", SlotType::Fraction}, {"acme.npu", SlotType::Count}});
  EXPECT_EQ(learned.refined, (std::map<std::string, SlotType>{{"cuda.shares", SlotType::Fraction}}));
  ASSERT_EQ(learned.conflicts.size(), 1u) << "a fraction slot never turns back into a count";
  EXPECT_EQ(learned.conflicts[0].slot, "acme.npu");
  registry.add(learned);
  EXPECT_EQ(*registry.find("cuda.shares"), SlotType::Fraction);
}

}  // namespace
}  // namespace bai::manager
