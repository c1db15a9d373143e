// Keypair resource policies: the quota arithmetic (quota.hpp) and the JSON of the admin
// records (admin_records.hpp). Expected answers are worked out next to each case.
#include "admin_records.hpp"
#include "quota.hpp"
#include "manager_test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace bai::manager {
namespace {

using Json = nlohmann::json;

using test_support::q;
using test_support::slots;

ResourcePolicyRecord policy(ResourceSlot totals, bool defaultUnlimited, int maxConcurrent = 0, int maxPending = 0) {
  return ResourcePolicyRecord{"small", std::move(totals), defaultUnlimited, maxConcurrent, maxPending, 0};
}

OwnerUsage usage(ResourceSlot held, int active = 0, int pending = 0) { return OwnerUsage{std::move(held), active, pending}; }

// ---- quotaShortfall ------------------------------------------------------------------

TEST(QuotaTest, AnEmptyUnlimitedPolicyAllowsAnything) {
  // No slot listed, unlisted slots free, no session counts: nothing can be short.
  const auto open = policy({}, true);
  EXPECT_EQ(quotaShortfall(open, usage(slots({{"cpu", "1000"}}), 500, 500), slots({{"cpu", "64"}, {"mem", "1e12"}})),
            std::nullopt);
}

TEST(QuotaTest, AListedSlotAllowsUpToItsLimit) {
  const auto small = policy(slots({{"cuda.device", "2"}}), true);
  // 1 held + 1 asked = 2 <= 2: fits exactly.
  EXPECT_EQ(quotaShortfall(small, usage(slots({{"cuda.device", "1"}}), 1), slots({{"cuda.device", "1"}})), std::nullopt);
  // 2 held + 1 asked = 3 > 2.
  EXPECT_EQ(quotaShortfall(small, usage(slots({{"cuda.device", "2"}}), 2), slots({{"cuda.device", "1"}})),
            "keypair policy 'small' allows cuda.device 2; 2 held, 1 more asked");
  // 0 held + 3 asked = 3 > 2: one request alone can be over.
  EXPECT_EQ(quotaShortfall(small, usage({}), slots({{"cuda.device", "3"}})),
            "keypair policy 'small' allows cuda.device 2; 0 held, 3 more asked");
}

TEST(QuotaTest, ExactDecimalsDecideTheEdge) {
  const auto shares = policy(slots({{"cuda.shares", "1.5"}}), true);
  // 1.000001 + 0.499999 = 1.5 exactly: fits (a float sum could land on either side).
  EXPECT_EQ(quotaShortfall(shares, usage(slots({{"cuda.shares", "1.000001"}}), 1), slots({{"cuda.shares", "0.499999"}})),
            std::nullopt);
  // 1.000001 + 0.5 = 1.500001 > 1.5 by one millionth.
  EXPECT_EQ(quotaShortfall(shares, usage(slots({{"cuda.shares", "1.000001"}}), 1), slots({{"cuda.shares", "0.5"}})),
            "keypair policy 'small' allows cuda.shares 1.5; 1.000001 held, 0.5 more asked");
}

TEST(QuotaTest, AZeroAmountNeverCounts) {
  // LIMITED: cuda.device is unlisted, so its limit is 0, but asking 0 of it asks nothing.
  const auto limited = policy(slots({{"cpu", "4"}}), false);
  EXPECT_EQ(quotaShortfall(limited, usage({}), slots({{"cpu", "1"}, {"cuda.device", "0"}})), std::nullopt);
  // cpu is already over its limit (the policy was lowered), yet a request of 0 cpu is not short of cpu.
  EXPECT_EQ(quotaShortfall(limited, usage(slots({{"cpu", "8"}}), 2), slots({{"cpu", "0"}})), std::nullopt);
}

TEST(QuotaTest, LimitedRefusesAnyUnlistedSlot) {
  const auto limited = policy(slots({{"cpu", "4"}}), false);
  // mem is not listed: LIMITED makes its limit 0, and 1 byte > 0.
  EXPECT_EQ(quotaShortfall(limited, usage({}), slots({{"cpu", "1"}, {"mem", "1"}})),
            "keypair policy 'small' allows no mem (unlisted slots are LIMITED); 1 asked");
}

TEST(QuotaTest, UnlimitedLeavesUnlistedSlotsFreeButAListedZeroIsALimit) {
  const auto unlimited = policy(slots({{"cuda.device", "0"}}), true);
  // mem is not listed: free under UNLIMITED, however much is held.
  EXPECT_EQ(quotaShortfall(unlimited, usage(slots({{"mem", "1e15"}}), 9), slots({{"mem", "1e15"}})), std::nullopt);
  // cuda.device is listed as 0: 0 held + 1 asked = 1 > 0.
  EXPECT_EQ(quotaShortfall(unlimited, usage({}), slots({{"cuda.device", "1"}})),
            "keypair policy 'small' allows cuda.device 0; 0 held, 1 more asked");
}

TEST(QuotaTest, AnInfiniteLimitIsNone) {
  // Listed as Infinity under LIMITED: held + asked is never over.
  const auto infinite = policy(slots({{"cpu", "Infinity"}}), false);
  EXPECT_EQ(quotaShortfall(infinite, usage(slots({{"cpu", "1e20"}}), 3), slots({{"cpu", "1e20"}})), std::nullopt);
}

TEST(QuotaTest, MaxConcurrentSessionsCountsSessionsHoldingResources) {
  const auto three = policy({}, true, 3);
  // 2 running + this one = 3 <= 3.
  EXPECT_EQ(quotaShortfall(three, usage({}, 2, 10), slots({{"cpu", "1"}})), std::nullopt);
  // 3 running already: a 4th is over, and this is reported before any slot.
  EXPECT_EQ(quotaShortfall(policy(slots({{"cpu", "0"}}), true, 3), usage({}, 3), slots({{"cpu", "1"}})),
            "keypair policy 'small' allows 3 concurrent sessions; 3 running");
  // 0 is no limit.
  EXPECT_EQ(quotaShortfall(policy({}, true, 0), usage({}, 1000), slots({{"cpu", "1"}})), std::nullopt);
}

// ---- pendingShortfall ----------------------------------------------------------------

TEST(QuotaTest, MaxPendingCountsSessionsAlreadyWaiting) {
  const auto two = policy({}, true, 0, 2);
  // 1 pending + this one = 2 <= 2.
  EXPECT_EQ(pendingShortfall(two, usage({}, 0, 1)), std::nullopt);
  // 2 pending: a 3rd is over. Running sessions do not count.
  EXPECT_EQ(pendingShortfall(two, usage({}, 50, 2)), "keypair policy 'small' allows 2 pending sessions; 2 pending");
  // 0 is no limit.
  EXPECT_EQ(pendingShortfall(policy({}, true, 0, 0), usage({}, 0, 1000)), std::nullopt);
}

// ---- ownerUsage ----------------------------------------------------------------------

TEST(QuotaTest, OwnerUsageCountsTheOwnersLiveSessionsByStatus) {
  std::map<std::string, SessionRecord> sessions;
  auto add = [&](const std::string& id, const std::string& owner, SessionStatus status, ResourceSlot requested) {
    SessionRecord session;
    session.id = id;
    session.owner = owner;
    session.status = status;
    session.requested = std::move(requested);
    sessions[id] = session;
  };
  add("p1", "AK", SessionStatus::Pending, slots({{"cpu", "100"}}));  // pending: counted, holds nothing
  add("p2", "AK", SessionStatus::Pending, slots({{"cpu", "100"}}));
  add("s", "AK", SessionStatus::Scheduled, slots({{"cpu", "1"}}));
  add("pr", "AK", SessionStatus::Preparing, slots({{"cpu", "0.5"}, {"mem", "1024"}}));
  add("r", "AK", SessionStatus::Running, slots({{"cpu", "2"}}));
  add("t", "AK", SessionStatus::Terminating, slots({{"cuda.device", "1"}}));
  add("done", "AK", SessionStatus::Terminated, slots({{"cpu", "50"}}));  // over: holds nothing
  add("other", "AKOTHER", SessionStatus::Running, slots({{"cpu", "7"}}));
  const OwnerUsage counted = ownerUsage(sessions, "AK");
  EXPECT_EQ(counted.pending, 2);
  EXPECT_EQ(counted.active, 4);  // SCHEDULED, PREPARING, RUNNING, TERMINATING
  // cpu 1 + 0.5 + 2 = 3.5; mem 1024; cuda.device 1.
  EXPECT_EQ(counted.held, slots({{"cpu", "3.5"}, {"mem", "1024"}, {"cuda.device", "1"}}));
  EXPECT_EQ(ownerUsage(sessions, "AKNONE").active, 0);
}

// ---- Admin record JSON ---------------------------------------------------------------

const SlotTypeTable kTypes{{SlotName::of("cpu"), SlotType::Count},
                           {SlotName::of("mem"), SlotType::Bytes},
                           {SlotName::of("cuda.device"), SlotType::Count},
                           {SlotName::of("cuda.shares"), SlotType::Count},
                           {SlotName::of("cuda.device:1g.10gb-mig"), SlotType::Unique},
                           {SlotName::of("cuda.mem"), SlotType::Unified}};

std::string policyError(const Json& doc) {
  auto parsed = resourcePolicyFromJson(doc, kTypes);
  if (parsed.ok()) return "(accepted)";
  EXPECT_EQ(parsed.error().code, ErrorCode::InvalidArgument);
  return parsed.error().message;
}

std::string groupError(const Json& doc) {
  auto parsed = scalingGroupFromJson(doc);
  return parsed.ok() ? "(accepted)" : parsed.error().message;
}

TEST(AdminRecordsTest, RecordNames) {
  EXPECT_TRUE(isValidRecordName("a"));
  EXPECT_TRUE(isValidRecordName("0-gpu-a100"));
  EXPECT_TRUE(isValidRecordName(std::string(64, 'x')));
  EXPECT_FALSE(isValidRecordName(std::string(65, 'x')));  // 1 + {0,63}
  EXPECT_FALSE(isValidRecordName(""));
  EXPECT_FALSE(isValidRecordName("-gpu"));
  EXPECT_FALSE(isValidRecordName("GPU"));
  EXPECT_FALSE(isValidRecordName("gpu_a"));
  EXPECT_FALSE(isValidRecordName("gpu a"));
}

TEST(AdminRecordsTest, ReadsAPolicyLikeUserInput) {
  auto parsed = resourcePolicyFromJson(Json::parse(R"({
      "name": "small",
      "total_resource_slots": {"cpu": "2.5", "mem": "4g", "cuda.device": 1, "cuda.shares": "Infinity",
                               "cuda.device:1g.10gb-mig": "3"},
      "default_for_unspecified": "LIMITED",
      "max_concurrent_sessions": 3,
      "max_pending_session_count": 2})"),
                                       kTypes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  // "4g" = 4 * 2^30 = 4294967296 bytes; a unique slot's limit counts slices, so 3 is taken.
  EXPECT_EQ(parsed->totalResourceSlots, (ResourceSlot{{SlotName::of("cpu"), q("2.5")},
                                                      {SlotName::of("mem"), q("4294967296")},
                                                      {SlotName::of("cuda.device"), q("1")},
                                                      {SlotName::of("cuda.shares"), Quantity::infinity()},
                                                      {SlotName::of("cuda.device:1g.10gb-mig"), q("3")}}));
  EXPECT_FALSE(parsed->defaultUnlimited);
  EXPECT_EQ(parsed->maxConcurrentSessions, 3);
  EXPECT_EQ(parsed->maxPendingSessions, 2);

  const Json out = resourcePolicyToJson(*parsed);
  EXPECT_EQ(out["total_resource_slots"]["mem"], "4294967296") << "exact text, not a float";
  EXPECT_EQ(out["total_resource_slots"]["cuda.shares"], "Infinity");
  EXPECT_EQ(out["default_for_unspecified"], "LIMITED");
  EXPECT_EQ(out["max_pending_session_count"], 2);
  // What the API gives back reads back to the same record (less the server's created_at_ms).
  Json again = out;
  again.erase("created_at_ms");
  auto reread = resourcePolicyFromJson(again, kTypes);
  ASSERT_TRUE(reread.ok()) << reread.error().message;
  EXPECT_EQ(reread->totalResourceSlots, parsed->totalResourceSlots);
}

TEST(AdminRecordsTest, APolicyNeedsOnlyAName) {
  auto parsed = resourcePolicyFromJson(Json{{"name", "open"}}, kTypes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->totalResourceSlots.empty());
  EXPECT_TRUE(parsed->defaultUnlimited);
  EXPECT_EQ(parsed->maxConcurrentSessions, 0);
  EXPECT_EQ(parsed->maxPendingSessions, 0);
}

TEST(AdminRecordsTest, RefusesBadPoliciesNamingTheField) {
  auto has = [](const std::string& message, const std::string& needle) {
    return message.find(needle) != std::string::npos ? ::testing::AssertionSuccess()
                                                     : ::testing::AssertionFailure() << message;
  };
  EXPECT_TRUE(has(policyError(Json::array()), "JSON object"));
  EXPECT_TRUE(has(policyError(Json::object()), "name is required"));
  EXPECT_TRUE(has(policyError({{"name", "Small"}}), "name must be"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"max_sessions", 1}}), "unknown field 'max_sessions'"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", Json::array()}}), "total_resource_slots must be"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"cpu", "-1"}}}}), "'cpu'"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"cpu", -1}}}}), "negative"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"mem", -5}}}}), "'mem'"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"mem", "1.5"}}}}), "'mem'"));  // half a byte
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"cpu", "0.0000001"}}}}), "'cpu'"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"cpu", true}}}}), "total_resource_slots.cpu"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"acme.device", "1"}}}}),
                  "total_resource_slots.acme.device: no agent"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"cuda.mem", "1"}}}}), "unified"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"total_resource_slots", {{"Bad Slot", "1"}}}}), "'Bad Slot'"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"default_for_unspecified", "limited"}}), "default_for_unspecified"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"max_concurrent_sessions", -1}}), "max_concurrent_sessions"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"max_concurrent_sessions", 1.5}}), "max_concurrent_sessions"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"max_concurrent_sessions", "3"}}), "max_concurrent_sessions"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"max_pending_session_count", 2147483648LL}}), "max_pending_session_count"));
  EXPECT_TRUE(has(policyError({{"name", "p"}, {"created_at_ms", 1}}), "unknown field 'created_at_ms'"));
}

TEST(AdminRecordsTest, ReadsAScalingGroupAndGivesItBack) {
  const Json doc = Json::parse(R"({
      "name": "gpu", "description": "A100 nodes", "sequencer": "drf", "selector": "dispersed",
      "options": {"selector": {"spread": 2}}, "slot_priority": ["cuda.device", "mem"],
      "hol_max_passes": 0, "hol_max_wait_ms": 60000, "active": false,
      "image_pull_policy": "always", "allowed_images": ["bai-test/*", "docker.io/library/python:3.*"]})");
  auto parsed = scalingGroupFromJson(doc);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->name, "gpu");
  EXPECT_EQ(parsed->description, "A100 nodes");
  EXPECT_EQ(parsed->sequencer, "drf");
  EXPECT_EQ(parsed->selector, "dispersed");
  EXPECT_EQ(Json::parse(parsed->optionsJson), doc["options"]);
  EXPECT_EQ(parsed->slotPriority, (std::vector<std::string>{"cuda.device", "mem"}));
  EXPECT_EQ(parsed->holMaxPasses, 0);
  EXPECT_EQ(parsed->holMaxWaitMillis, 60000);
  EXPECT_FALSE(parsed->active);
  EXPECT_EQ(parsed->imagePullPolicy, "always");
  EXPECT_EQ(parsed->allowedImages, (std::vector<std::string>{"bai-test/*", "docker.io/library/python:3.*"}));
  Json out = scalingGroupToJson(*parsed);
  EXPECT_EQ(out["created_at_ms"], 0);
  out.erase("created_at_ms");
  EXPECT_EQ(out, doc);

  auto defaults = scalingGroupFromJson(Json{{"name", "default"}});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->sequencer, "fifo");
  EXPECT_EQ(defaults->selector, "concentrated");
  EXPECT_EQ(defaults->optionsJson, "{}");
  EXPECT_TRUE(defaults->slotPriority.empty());
  EXPECT_EQ(defaults->holMaxPasses, 16);
  EXPECT_EQ(defaults->holMaxWaitMillis, 300000);
  EXPECT_TRUE(defaults->active);
}

TEST(AdminRecordsTest, RefusesBadScalingGroupsNamingTheField) {
  auto has = [](const std::string& message, const std::string& needle) {
    return message.find(needle) != std::string::npos ? ::testing::AssertionSuccess()
                                                     : ::testing::AssertionFailure() << message;
  };
  EXPECT_TRUE(has(groupError(Json::object()), "name is required"));
  EXPECT_TRUE(has(groupError({{"name", "-gpu"}}), "name must be"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"priority", 1}}), "unknown field 'priority'"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"sequencer", "FIFO"}}), "sequencer"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"selector", 1}}), "selector"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"description", std::string(1025, 'd')}}), "description"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"options", "fast"}}), "options must be"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"options", {{"placement", Json::object()}}}}), "options.placement"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"options", {{"selector", 2}}}}), "options.selector"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"slot_priority", "cpu"}}), "slot_priority"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"slot_priority", {"cpu", "CPU"}}}), "slot_priority"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"slot_priority", {"cpu", "cpu"}}}), "'cpu' twice"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"hol_max_passes", -1}}), "hol_max_passes"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"hol_max_wait_ms", 1.5}}), "hol_max_wait_ms"));
  EXPECT_TRUE(has(groupError({{"name", "g"}, {"active", "yes"}}), "active"));
}

}  // namespace
}  // namespace bai::manager
