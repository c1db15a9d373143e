// Scaling groups, keypair resource policies and their checks at enqueue, through the
// Manager's methods and its HTTP API, on a real SQLite file that outlives a restart.
#include "http_client.hpp"
#include "http_server.hpp"
#include "admin_records.hpp"
#include "manager.hpp"
#include "manager_api.hpp"
#include "manager_test_support.hpp"

#include "../support/temp_dir.hpp"

#include <bai/request_signing.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace bai::manager {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// Never called: nothing here fits it.
protocol::AgentState nodeState(std::map<std::string, std::string> capacity) {
  return test_support::nodeState("http://127.0.0.1:1", std::move(capacity));
}

class AdminTest : public ::testing::Test {
 protected:
  void startManager(const StoreOptions& storeOptions = {}) {
    ManagerSettings settings;
    settings.schedulerPeriod = 50ms;
    settings.dispatchThreads = 1;
    if (const char* dir = std::getenv("BAI_POLICY_DIR")) settings.policyPath.push_back(dir);  // what groups may name
    auto store = openStore("sqlite://" + (dir_.path() / "m.db").string(), storeOptions);
    ASSERT_TRUE(store.ok()) << store.error().message;
    LogSink keep = [this](LogLevel, const std::string& source, const std::string& message) {
      std::lock_guard<std::mutex> lock(logMutex_);
      logLines_.push_back(source + ": " + message);
    };
    auto manager = Manager::start(settings, std::move(*store), "token", keep);
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    manager_ = std::move(*manager);
  }

  void restart() {
    manager_.reset();
    startManager();
  }

  // One agent offering 1 cpu and 1 GiB: sessions asking 2 cpu are served but never fit,
  // so they stay PENDING.
  void addAgent() {
    auto reply = manager_->heartbeat("a", {"a", 1, nodeState({{"cpu", "1"}, {"mem", "1073741824"}})});
    ASSERT_TRUE(reply.ok()) << reply.error().detail;
  }

  Outcome<SessionRecord> submit(const Caller& caller, const std::string& group = "default") {
    NewSession request;
    request.command = {"true"};
    request.resources = {{"cpu", "2"}};
    request.scalingGroup = group;
    return manager_->createSession(caller, request);
  }

  static Json doc(const char* text) { return Json::parse(text); }

  bool logged(const std::string& text) {
    std::lock_guard<std::mutex> lock(logMutex_);
    for (const auto& line : logLines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  test::TempDir dir_;
  std::unique_ptr<Manager> manager_;
  std::mutex logMutex_;
  std::vector<std::string> logLines_;
};

TEST_F(AdminTest, AFullUidRangeRefusesANewKeypairButNotOneGivenAUid) {
  StoreOptions tiny;
  tiny.identity.firstUid = 250000;
  tiny.identity.lastUid = 250001;
  startManager(tiny);
  ASSERT_TRUE(manager_->admin().createKeypair(false).ok());
  auto second = manager_->admin().createKeypair(false);
  ASSERT_TRUE(second.ok()) << second.error().detail;
  EXPECT_EQ(second->uid, 250001u);
  auto full = manager_->admin().createKeypair(false);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().kind, ErrorKind::UidRangeExhausted);
  EXPECT_EQ(full.error().field, "uid");
  EXPECT_NE(full.error().detail.find("250000-250001"), std::string::npos) << full.error().detail;
  EXPECT_EQ(httpStatusOf(ErrorKind::UidRangeExhausted), 409);
  EXPECT_EQ(apiErrorOf(full.error()).type, "uid-range-exhausted");
  EXPECT_EQ(manager_->admin().keypairs().size(), 2u) << "nothing half-made";
  auto given = manager_->admin().createKeypair(false, "", KeypairIdentity{1500000, 0});
  ASSERT_TRUE(given.ok()) << given.error().detail;
  EXPECT_EQ(given->gid, 1500000u);
}

TEST_F(AdminTest, ScalingGroupsAreCreatedPatchedAndKeptAcrossARestart) {
  startManager();
  auto created = manager_->admin().createScalingGroup(scalingGroupCreate(doc(R"({"name": "gpu", "sequencer": "drf", "slot_priority": ["cuda.device"]})")));
  ASSERT_TRUE(created.ok()) << created.error().detail;
  EXPECT_GT(created->createdAtMillis, 0);
  EXPECT_EQ(created->selector, "concentrated") << "a default";

  auto again = manager_->admin().createScalingGroup(scalingGroupCreate(doc(R"({"name": "gpu"})")));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::ScalingGroupExists);
  auto bad = manager_->admin().createScalingGroup(scalingGroupCreate(doc(R"({"name": "gpu2", "hol_max_passes": -1})")));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::InvalidRequest);
  EXPECT_NE(bad.error().detail.find("hol_max_passes"), std::string::npos) << bad.error().detail;

  // A patch changes only the fields it names.
  auto patched = manager_->admin().patchScalingGroup("gpu", scalingGroupPatch(doc(R"({"active": false, "hol_max_passes": 3})")));
  ASSERT_TRUE(patched.ok()) << patched.error().detail;
  EXPECT_FALSE(patched->active);
  EXPECT_EQ(patched->holMaxPasses, 3);
  EXPECT_EQ(patched->sequencer, "drf");
  EXPECT_EQ(patched->slotPriority, std::vector<std::string>{"cuda.device"});
  EXPECT_EQ(patched->createdAtMillis, created->createdAtMillis);
  EXPECT_EQ(manager_->admin().patchScalingGroup("gpu", scalingGroupPatch(doc(R"({"name": "cpu"})"))).error().kind, ErrorKind::InvalidRequest);
  EXPECT_EQ(manager_->admin().patchScalingGroup("gpu", scalingGroupPatch(doc(R"({"colour": "red"})"))).error().kind, ErrorKind::InvalidRequest);
  EXPECT_EQ(manager_->admin().patchScalingGroup("none", scalingGroupPatch(doc("{}"))).error().kind, ErrorKind::UnknownScalingGroup);
  EXPECT_FALSE(manager_->admin().scalingGroup("gpu")->active) << "a refused patch changes nothing";

  restart();
  auto kept = manager_->admin().scalingGroup("gpu");
  ASSERT_TRUE(kept.has_value());
  EXPECT_FALSE(kept->active);
  EXPECT_EQ(kept->holMaxPasses, 3);
  EXPECT_EQ(kept->sequencer, "drf");
  EXPECT_EQ(kept->createdAtMillis, created->createdAtMillis);
  EXPECT_EQ(manager_->admin().scalingGroups().size(), 2u) << "gpu and default";
}

TEST_F(AdminTest, ResourcePoliciesAreCreatedPatchedAndKeptAcrossARestart) {
  startManager();
  auto early = manager_->admin().createResourcePolicy(resourcePolicyCreate(doc(R"({"name": "small", "total_resource_slots": {"cpu": "2"}})")));
  ASSERT_FALSE(early.ok()) << "no agent has offered cpu yet";
  EXPECT_NE(early.error().detail.find("total_resource_slots.cpu"), std::string::npos) << early.error().detail;
  addAgent();
  auto created = manager_->admin().createResourcePolicy(resourcePolicyCreate(doc(R"({"name": "small",
      "total_resource_slots": {"cpu": "2.5", "mem": "4g"}, "default_for_unspecified": "LIMITED",
      "max_pending_session_count": 1})")));
  ASSERT_TRUE(created.ok()) << created.error().detail;
  EXPECT_EQ(created->totalResourceSlots.get("mem"), Quantity(4LL << 30));
  EXPECT_EQ(manager_->admin().createResourcePolicy(resourcePolicyCreate(doc(R"({"name": "small"})"))).error().kind, ErrorKind::ResourcePolicyExists);

  auto patched = manager_->admin().patchResourcePolicy("small", resourcePolicyPatch(doc(R"({"max_concurrent_sessions": 2})")));
  ASSERT_TRUE(patched.ok()) << patched.error().detail;
  EXPECT_EQ(patched->maxConcurrentSessions, 2);
  EXPECT_EQ(patched->maxPendingSessions, 1);
  EXPECT_EQ(patched->totalResourceSlots.get("cpu"), *Quantity::parse("2.5")) << "kept exactly";
  EXPECT_FALSE(patched->defaultUnlimited);
  auto negative = manager_->admin().patchResourcePolicy("small", resourcePolicyPatch(doc(R"({"total_resource_slots": {"cpu": -1}})")));
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().kind, ErrorKind::InvalidRequest);
  EXPECT_EQ(manager_->admin().patchResourcePolicy("none", resourcePolicyPatch(doc("{}"))).error().kind, ErrorKind::UnknownResourcePolicy);

  restart();
  auto kept = manager_->admin().resourcePolicy("small");
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->totalResourceSlots, patched->totalResourceSlots);
  EXPECT_EQ(kept->maxConcurrentSessions, 2);
  EXPECT_EQ(kept->createdAtMillis, created->createdAtMillis);
}

TEST_F(AdminTest, AKeypairTakesOnlyAKnownPolicy) {
  startManager();
  ASSERT_TRUE(manager_->admin().upsertResourcePolicy({"small", {}, true, 0, 1, 0}).ok());
  auto unknown = manager_->admin().createKeypair(false, "huge");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, ErrorKind::UnknownResourcePolicy);
  EXPECT_NE(unknown.error().detail.find("'huge'"), std::string::npos);
  EXPECT_EQ(manager_->admin().keypairs().size(), 0u) << "nothing created";

  auto user = manager_->admin().createKeypair(false, "small");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(manager_->admin().keypair(user->accessKey)->resourcePolicy, "small");
  auto plain = manager_->admin().createKeypair(false);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->resourcePolicy, "");

  EXPECT_EQ(manager_->admin().setKeypairResourcePolicy("AKGHOST", "small").error().kind, ErrorKind::UnknownKeypair);
  auto badPolicy = manager_->admin().setKeypairResourcePolicy(plain->accessKey, "huge");
  ASSERT_FALSE(badPolicy.ok());
  EXPECT_EQ(badPolicy.error().kind, ErrorKind::UnknownResourcePolicy);
  EXPECT_EQ(badPolicy.error().detail, "no resource policy 'huge'");
  ASSERT_TRUE(manager_->admin().setKeypairResourcePolicy(plain->accessKey, "small").ok());
  ASSERT_TRUE(manager_->admin().setKeypairResourcePolicy(user->accessKey, "").ok());

  restart();
  EXPECT_EQ(manager_->admin().keypair(plain->accessKey)->resourcePolicy, "small");
  EXPECT_EQ(manager_->admin().keypair(user->accessKey)->resourcePolicy, "");
}

TEST_F(AdminTest, EnqueueRefusesPastTheOwnersMaxPending) {
  startManager();
  addAgent();
  ASSERT_TRUE(manager_->admin().upsertResourcePolicy({"two-pending", {}, true, 0, 2, 0}).ok());
  auto key = manager_->admin().createKeypair(false, "two-pending");
  ASSERT_TRUE(key.ok());
  const Caller user{key->accessKey, false};
  auto first = submit(user);
  ASSERT_TRUE(first.ok()) << first.error().detail;
  ASSERT_TRUE(submit(user).ok());  // 1 pending + this one = 2: allowed
  auto third = submit(user);       // 2 pending + this one = 3 > 2
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().kind, ErrorKind::TooManyPending);
  EXPECT_EQ(third.error().kind, ErrorKind::TooManyPending);
  EXPECT_EQ(third.error().detail, "keypair policy 'two-pending' allows 2 pending sessions; 2 pending");
  EXPECT_TRUE(submit(Caller{"AKADMIN", true}).ok()) << "a keypair without a policy is not limited";

  ASSERT_TRUE(manager_->destroySession(user, first->id).ok());  // cancelled: no longer pending
  EXPECT_TRUE(submit(user).ok());
  ASSERT_TRUE(manager_->admin().patchResourcePolicy("two-pending", resourcePolicyPatch(doc(R"({"max_pending_session_count": 0})"))).ok());
  EXPECT_TRUE(submit(user).ok()) << "0 is no limit";
}

TEST_F(AdminTest, EnqueueRefusesAnInactiveScalingGroup) {
  startManager();
  addAgent();
  ScalingGroupRecord group;
  group.name = "default";
  group.active = false;
  ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  auto refused = submit(Caller{"AKADMIN", true});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::InactiveScalingGroup);
  EXPECT_EQ(refused.error().kind, ErrorKind::InactiveScalingGroup);
  EXPECT_NE(refused.error().detail.find("'default'"), std::string::npos);
  // A group with neither a record nor an agent does not exist.
  EXPECT_EQ(submit(Caller{"AKADMIN", true}, "other").error().kind, ErrorKind::UnknownScalingGroup);
  ASSERT_TRUE(manager_->admin().patchScalingGroup("default", scalingGroupPatch(doc(R"({"active": true})"))).ok());
  EXPECT_TRUE(submit(Caller{"AKADMIN", true}).ok());
}

// ---- Over HTTP -----------------------------------------------------------------------

class AdminApiTest : public AdminTest {
 protected:
  void SetUp() override {
    startManager();
    auto admin = manager_->admin().createKeypair(true);
    ASSERT_TRUE(admin.ok());
    admin_ = {admin->accessKey, admin->secretKey};
    auto user = manager_->admin().createKeypair(false);
    ASSERT_TRUE(user.ok());
    user_ = {user->accessKey, user->secretKey};
    server_ = std::make_unique<http::Server>(http::ServerOptions{}, managerApi(*manager_, "token"));
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override {
    if (manager_) manager_->shutdown();
    if (server_) server_->stop();
  }

  struct Reply {
    int status = 0;
    Json body;
  };
  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             const auth::SigningKey* key = nullptr, const std::string& idempotencyKey = "") {
    http::ClientRequest request;
    request.method = method;
    request.url = "http://127.0.0.1:" + std::to_string(server_->port()) + target;
    request.headers = auth::signRequest(key ? *key : admin_, method, target, body, std::chrono::system_clock::now());
    if (!body.empty()) request.headers.emplace("Content-Type", "application/json");
    if (!idempotencyKey.empty()) request.headers.emplace("Idempotency-Key", idempotencyKey);
    request.body = body;
    auto response = http::send(request);
    if (!response) return {0, response.error().message};
    return {response->status, Json::parse(response->body, nullptr, false)};
  }

  auth::SigningKey admin_;
  auth::SigningKey user_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(AdminApiTest, ScalingGroupRoutes) {
  auto refused = call("POST", "/v1/scaling-groups", R"({"name": "gpu", "options": {"selector": {"spread": 2}}})");
  EXPECT_EQ(refused.status, 400) << "concentrated takes no 'spread': " << refused.body.dump();
  auto created = call("POST", "/v1/scaling-groups", R"({"name": "gpu", "options": {"selector": {"prefer_shared": true}}})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["options"]["selector"]["prefer_shared"], true);
  EXPECT_EQ(call("POST", "/v1/scaling-groups", R"({"name": "gpu"})").status, 409);
  auto invalid = call("POST", "/v1/scaling-groups", R"({"name": "g", "selector": 7})");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(invalid.body["type"], "invalid-request");
  EXPECT_NE(invalid.body["detail"].get<std::string>().find("selector"), std::string::npos);
  EXPECT_EQ(call("POST", "/v1/scaling-groups", "[1]").status, 400);

  auto patched = call("PATCH", "/v1/scaling-groups/gpu", R"({"description": "A100s"})");
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["description"], "A100s");
  EXPECT_EQ(patched.body["options"]["selector"]["prefer_shared"], true) << "kept";
  auto got = call("GET", "/v1/scaling-groups/gpu");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body, patched.body);
  auto list = call("GET", "/v1/scaling-groups");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body.size(), 2u);
  EXPECT_EQ(list.body[0]["name"], "default") << "made at the first start";
  EXPECT_EQ(list.body[1]["name"], "gpu");
  EXPECT_EQ(call("GET", "/v1/scaling-groups/none").body["type"], "unknown-scaling-group");
  EXPECT_EQ(call("DELETE", "/v1/scaling-groups/gpu").status, 405);
  EXPECT_EQ(call("GET", "/v1/scaling-groups/gpu/extra").status, 404);
  EXPECT_EQ(call("GET", "/v1/scaling-groups", "", &user_).status, 403) << "admins only";
}

TEST_F(AdminApiTest, ResourcePolicyAndKeypairRoutes) {
  addAgent();
  auto created = call("POST", "/v1/resource-policies",
                      R"({"name": "small", "total_resource_slots": {"mem": "4g", "cpu": 2}, "max_pending_session_count": 1})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["total_resource_slots"], Json({{"cpu", "2"}, {"mem", "4294967296"}})) << "exact strings";
  EXPECT_EQ(created.body["default_for_unspecified"], "UNLIMITED");
  auto patched = call("PATCH", "/v1/resource-policies/small", R"({"default_for_unspecified": "LIMITED"})");
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["max_pending_session_count"], 1);
  EXPECT_EQ(call("GET", "/v1/resource-policies/small").body, patched.body);
  EXPECT_EQ(call("GET", "/v1/resource-policies").body.size(), 1u);

  const std::string target = "/v1/keypairs/" + user_.accessKey;
  auto unknown = call("PATCH", target, R"({"resource_policy": "huge"})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body["detail"], "no resource policy 'huge'");
  EXPECT_EQ(call("PATCH", target, R"({"resource_policy": 1})").status, 400);
  EXPECT_EQ(call("PATCH", target, R"({"admin": true})").status, 400);
  EXPECT_EQ(call("PATCH", "/v1/keypairs/AKGHOST", R"({"resource_policy": ""})").status, 404);
  auto set = call("PATCH", target, R"({"resource_policy": "small"})");
  ASSERT_EQ(set.status, 200) << set.body.dump();
  EXPECT_EQ(set.body["resource_policy"], "small");
  EXPECT_FALSE(set.body.contains("secret_key"));
  EXPECT_EQ(call("PATCH", target, R"({"resource_policy": ""})", &user_).status, 403) << "a user cannot lift its own";

  auto key = call("POST", "/v1/keypairs", R"({"resource_policy": "small"})");
  ASSERT_EQ(key.status, 201) << key.body.dump();
  EXPECT_EQ(key.body["resource_policy"], "small");
  EXPECT_EQ(call("POST", "/v1/keypairs", R"({"resource_policy": "huge"})").status, 404);
  bool listed = false;
  for (const auto& entry : call("GET", "/v1/keypairs").body) {
    if (entry["access_key"] == user_.accessKey) listed = entry["resource_policy"] == "small";
  }
  EXPECT_TRUE(listed);

  // The user's policy allows 1 pending session: the second is refused with 429.
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"command": ["true"], "resources": {"cpu": "2"}})", &user_).status, 201);
  auto refused = call("POST", "/v1/sessions", R"({"command": ["true"], "resources": {"cpu": "2"}})", &user_);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body["type"], "too-many-pending");
}

TEST_F(AdminApiTest, KeypairIdentitiesAreAllocatedSetKeptAndAudited) {
  // SetUp made the admin's keypair, then the user's: the first two uids of the range.
  auto user = call("GET", "/v1/keypairs/" + user_.accessKey);
  ASSERT_EQ(user.status, 200) << user.body.dump();
  EXPECT_EQ(user.body["uid"], 200001);
  EXPECT_EQ(user.body["gid"], 200001);
  EXPECT_FALSE(user.body.contains("secret_key"));
  EXPECT_EQ(call("GET", "/v1/keypairs/AKGHOST").body["type"], "unknown-keypair");

  auto ldap = call("POST", "/v1/keypairs", R"({"uid": 5000, "gid": 100})");
  ASSERT_EQ(ldap.status, 201) << ldap.body.dump();
  EXPECT_EQ(ldap.body["uid"], 5000) << "outside the range: the agents' ranges are the last guard";
  EXPECT_EQ(ldap.body["gid"], 100);
  auto groupOnly = call("POST", "/v1/keypairs", R"({"gid": 300})");
  ASSERT_EQ(groupOnly.status, 201) << groupOnly.body.dump();
  EXPECT_EQ(groupOnly.body["uid"], 200002) << "the uid allocated, the gid as given";
  EXPECT_EQ(groupOnly.body["gid"], 300);
  auto held = call("POST", "/v1/keypairs", R"({"uid": 5000})");
  EXPECT_EQ(held.status, 409) << held.body.dump();
  EXPECT_EQ(held.body["type"], "uid-in-use");
  EXPECT_EQ(held.body["field"], "uid");
  EXPECT_EQ(call("GET", "/v1/keypairs").body.size(), 4u) << "a refused create makes nothing";

  const std::string target = "/v1/keypairs/" + user_.accessKey + "/identity";
  auto moved = call("PUT", target, R"({"uid": 7000})");
  ASSERT_EQ(moved.status, 200) << moved.body.dump();
  EXPECT_EQ(moved.body["uid"], 7000);
  EXPECT_EQ(moved.body["gid"], 7000) << "a gid left out is identity.session-gid's: the uid";
  EXPECT_TRUE(logged("admin " + admin_.accessKey + ": keypair " + user_.accessKey + " now runs sessions as uid 7000, gid 7000"));
  auto regrouped = call("PUT", target, R"({"uid": 7000, "gid": 8})");
  ASSERT_EQ(regrouped.status, 200) << regrouped.body.dump();
  EXPECT_EQ(regrouped.body["gid"], 8);
  auto taken = call("PUT", target, R"({"uid": 5000})");
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(taken.body["type"], "uid-in-use");
  EXPECT_EQ(taken.body["field"], "uid");
  EXPECT_EQ(call("PUT", "/v1/keypairs/AKGHOST/identity", R"({"uid": 7100})").status, 404);
  EXPECT_EQ(call("PUT", target, R"({"uid": 7100})", &user_).status, 403) << "admins only";
  auto missing = call("PUT", target, "{}");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["field"], "uid");
  auto stray = call("PUT", target, R"({"uid": 7100, "shell": "/bin/sh"})");
  EXPECT_EQ(stray.status, 400);
  EXPECT_EQ(stray.body["field"], "shell");

  restart();
  server_ = std::make_unique<http::Server>(http::ServerOptions{}, managerApi(*manager_, "token"));
  ASSERT_TRUE(server_->start().ok());
  auto kept = call("GET", "/v1/keypairs/" + user_.accessKey);
  EXPECT_EQ(kept.body["uid"], 7000) << "kept across a restart";
  EXPECT_EQ(kept.body["gid"], 8);
}

TEST_F(AdminApiTest, AUidOrGidThatNoSessionCanRunAsIsRefusedNamingTheField) {
  const std::string target = "/v1/keypairs/" + user_.accessKey + "/identity";
  for (const char* field : {"uid", "gid"}) {
    for (const char* value : {"0", "-1", "1.5", "\"5000\"", "true", "null", "4294967295", "99999999999"}) {
      const std::string other = std::string(field) == "uid" ? "" : R"("uid": 6000, )";
      const std::string body = "{" + other + "\"" + field + "\": " + value + "}";
      for (const auto& [method, path] : {std::pair{"POST", std::string("/v1/keypairs")}, std::pair{"PUT", target}}) {
        auto refused = call(method, path, body);
        EXPECT_EQ(refused.status, 400) << method << " " << body << ": " << refused.body.dump();
        EXPECT_EQ(refused.body["type"], "invalid-request") << body;
        EXPECT_EQ(refused.body["field"], field) << method << " " << body << ": " << refused.body.dump();
      }
    }
  }
  EXPECT_EQ(call("GET", "/v1/keypairs").body.size(), 2u) << "no refused create made a keypair";
  EXPECT_EQ(call("GET", "/v1/keypairs/" + user_.accessKey).body["uid"], 200001) << "no refused change changed it";
  auto highest = call("PUT", target, R"({"uid": 4294967294, "gid": 4294967294})");
  EXPECT_EQ(highest.status, 200) << highest.body.dump();
}

// A client whose answer was lost sends the same POST again with the same key: it gets the
// session the first one created, never a second one.
TEST_F(AdminApiTest, ARetryWithItsIdempotencyKeyGetsTheSameSession) {
  addAgent();
  const std::string body = R"({"command": ["true"], "resources": {"cpu": 1}})";
  auto first = call("POST", "/v1/sessions", body, nullptr, "key-1");
  ASSERT_EQ(first.status, 201) << first.body.dump();
  auto retried = call("POST", "/v1/sessions", R"({"resources": {"cpu": "1"}, "command": ["true"]})", nullptr, "key-1");
  EXPECT_EQ(retried.status, 201) << retried.body.dump();
  EXPECT_EQ(retried.body["id"], first.body["id"]) << "the same request, written differently";

  auto changed = call("POST", "/v1/sessions", R"({"command": ["false"], "resources": {"cpu": 1}})", nullptr, "key-1");
  EXPECT_EQ(changed.status, 409);
  EXPECT_EQ(changed.body["type"], "idempotency-key-reused");
  EXPECT_NE(changed.body.value("detail", "").find("'key-1'"), std::string::npos) << changed.body.dump();

  auto otherOwner = call("POST", "/v1/sessions", body, &user_, "key-1");
  EXPECT_EQ(otherOwner.status, 201) << "keys are per keypair";
  EXPECT_NE(otherOwner.body["id"], first.body["id"]);

  EXPECT_NE(call("POST", "/v1/sessions", body).body["id"], call("POST", "/v1/sessions", body).body["id"])
      << "without a key every POST is a new session";
  auto badKey = call("POST", "/v1/sessions", body, nullptr, "two words");
  EXPECT_EQ(badKey.status, 400);
  EXPECT_NE(badKey.body.value("detail", "").find("Idempotency-Key"), std::string::npos) << badKey.body.dump();
  EXPECT_EQ(call("GET", "/v1/sessions").body.size(), 4u) << "key-1 twice, the user's, two without a key";
}

// ---- Images, runtimes, pull policy and allow-list ------------------------------------

// The state of an agent in `group` running `runtimes`, its engine holding `images`.
protocol::AgentState containerNode(const std::string& rpcUrl, std::vector<protocol::RuntimeReport> runtimes,
                                   std::vector<protocol::ImageSummary> images = {}, const std::string& group = "default") {
  protocol::AgentState state = test_support::nodeState(rpcUrl, {{"cpu", "1"}, {"mem", "1073741824"}}, {}, group);
  state.runtimes = std::move(runtimes);
  state.images = std::move(images);
  return state;
}

const protocol::RuntimeReport kProcess{"process", true, ""};
const protocol::RuntimeReport kContainer{"container", true, ""};
const protocol::RuntimeReport kEngineDown{"container", false, "engine /run/podman/podman.sock: connection refused"};

TEST_F(AdminApiTest, ScalingGroupsTakeAPullPolicyAndAnAllowListAndRefuseBadOnesNamingTheField) {
  auto created = call("POST", "/v1/scaling-groups",
                      R"({"name": "gpu", "image_pull_policy": "if-missing", "allowed_images": ["bai-test/*", "*/pytorch:*"]})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["image_pull_policy"], "if-missing");
  EXPECT_EQ(created.body["allowed_images"], Json({"bai-test/*", "*/pytorch:*"}));
  auto fresh = call("POST", "/v1/scaling-groups", R"({"name": "cpu"})");
  EXPECT_EQ(fresh.body["image_pull_policy"], "never") << "offline clusters pull nothing by default";
  EXPECT_EQ(fresh.body["allowed_images"], Json::array()) << "empty: every image";

  auto patched = call("PATCH", "/v1/scaling-groups/gpu", R"({"image_pull_policy": "always"})");
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["image_pull_policy"], "always");
  EXPECT_EQ(patched.body["allowed_images"], Json({"bai-test/*", "*/pytorch:*"})) << "kept";
  restart();
  server_ = std::make_unique<http::Server>(http::ServerOptions{}, managerApi(*manager_, "token"));
  ASSERT_TRUE(server_->start().ok());
  auto kept = call("GET", "/v1/scaling-groups/gpu");
  EXPECT_EQ(kept.body["image_pull_policy"], "always") << "kept across a restart";
  EXPECT_EQ(kept.body["allowed_images"], Json({"bai-test/*", "*/pytorch:*"}));
  EXPECT_EQ(call("PATCH", "/v1/scaling-groups/gpu", R"({"allowed_images": []})").body["allowed_images"], Json::array());

  for (const char* bad : {R"({"image_pull_policy": "sometimes"})", R"({"image_pull_policy": 1})"}) {
    auto refused = call("PATCH", "/v1/scaling-groups/gpu", bad);
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_NE(refused.body.value("detail", "").find("image_pull_policy"), std::string::npos) << refused.body.dump();
  }
  const std::string tooLong(256, 'a');
  for (const std::string& bad : {std::string(R"({"allowed_images": [""]})"), R"({"allowed_images": [")" + tooLong + R"("]})",
                                 std::string(R"({"allowed_images": "bai-test/*"})"), std::string(R"({"allowed_images": [3]})")}) {
    auto refused = call("PATCH", "/v1/scaling-groups/gpu", bad);
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_NE(refused.body.value("detail", "").find("allowed_images"), std::string::npos) << refused.body.dump();
  }
  const std::string longest(255, 'a');
  EXPECT_EQ(call("PATCH", "/v1/scaling-groups/gpu", R"({"allowed_images": [")" + longest + R"("]})").status, 200);
}

TEST_F(AdminApiTest, AnImageSessionIsRefusedAtOnceWhenItsImageOrRuntimeCannotBeServed) {
  ASSERT_TRUE(manager_->heartbeat("a", {"a", 1, containerNode("http://127.0.0.1:1", {kProcess, kEngineDown})}).ok());
  // An agent of another group that has the runtime does not count.
  ASSERT_TRUE(manager_->heartbeat("b", {"b", 1, containerNode("http://127.0.0.1:1", {kContainer}, {}, "other")}).ok());

  auto badReference = call("POST", "/v1/sessions", R"({"image": "Not An Image!"})");
  EXPECT_EQ(badReference.status, 400) << badReference.body.dump();
  EXPECT_EQ(badReference.body.value("field", ""), "image");
  auto noCommand = call("POST", "/v1/sessions", R"({"command": []})");
  EXPECT_EQ(noCommand.status, 400) << noCommand.body.dump();
  EXPECT_EQ(noCommand.body.value("field", ""), "command");
  EXPECT_NE(noCommand.body.value("detail", "").find("only a session with an image"), std::string::npos);

  auto noRuntime = call("POST", "/v1/sessions", R"({"image": "bai-test/busybox:1", "resources": {"cpu": 1}})");
  EXPECT_EQ(noRuntime.status, 409) << noRuntime.body.dump();
  EXPECT_EQ(noRuntime.body["type"], "no-runtime");
  const std::string detail = noRuntime.body.value("detail", "");
  EXPECT_NE(detail.find("no agent in scaling group 'default' offers the container runtime"), std::string::npos) << detail;
  EXPECT_NE(detail.find("agent a: engine /run/podman/podman.sock: connection refused"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("agent b"), std::string::npos) << detail;

  ASSERT_EQ(call("PATCH", "/v1/scaling-groups/default", R"({"allowed_images": ["bai-test/*", "*/pytorch:*"]})").status, 200);
  auto notAllowed = call("POST", "/v1/sessions", R"({"image": "docker.io/library/ubuntu:22.04"})");
  EXPECT_EQ(notAllowed.status, 403) << notAllowed.body.dump();
  EXPECT_EQ(notAllowed.body["type"], "image-not-allowed");
  EXPECT_EQ(notAllowed.body.value("detail", ""),
            "image 'docker.io/library/ubuntu:22.04' is not allowed in scaling group 'default' (allowed: 'bai-test/*', "
            "'*/pytorch:*')");

  // The engine is back: an allowed image is queued, without a command, and shows its image.
  ASSERT_TRUE(manager_->heartbeat("a", {"a", 2, containerNode("http://127.0.0.1:1", {kProcess, kContainer})}).ok());
  auto queued = call("POST", "/v1/sessions", R"({"image": "localhost/bai-test/busybox:1", "resources": {"cpu": 1}})");
  ASSERT_EQ(queued.status, 201) << queued.body.dump();
  EXPECT_EQ(queued.body["image"], "localhost/bai-test/busybox:1");
  EXPECT_EQ(queued.body["command"], Json::array());
  auto process = call("POST", "/v1/sessions", R"({"command": ["true"], "resources": {"cpu": 1}})");
  ASSERT_EQ(process.status, 201) << process.body.dump();
  EXPECT_TRUE(process.body["image"].is_null()) << "a host process has no image";

  // An agent that runs containers only: a process session has nowhere to run.
  ASSERT_TRUE(manager_->heartbeat("a", {"a", 3, containerNode("http://127.0.0.1:1", {kContainer})}).ok());
  auto noProcess = call("POST", "/v1/sessions", R"({"command": ["true"], "resources": {"cpu": 1}})");
  EXPECT_EQ(noProcess.status, 409) << noProcess.body.dump();
  EXPECT_NE(noProcess.body.value("detail", "").find("offers the process runtime"), std::string::npos) << noProcess.body.dump();
}

TEST_F(AdminApiTest, AgentsShowTheirRuntimesAndImagesWhichARefreshReadsAgainFromTheAgent) {
  // The agent's RPC: answers a refresh with what its engine has now.
  std::atomic<int> refreshes{0};
  http::Server agentRpc(http::ServerOptions{}, [&](const http::Request& request) -> http::Response {
    if (request.header("authorization") != "Bearer token") return {401, "application/json", "{}", {}};
    if (request.method != "POST" || request.path != "/v1/images/refresh") return {404, "application/json", "{}", {}};
    ++refreshes;
    protocol::RuntimeInventory inventory{{kProcess, kContainer},
                                         {{"localhost/bai-test/busybox:1", "sha256:0123456789abcdef", 1200000},
                                          {"docker.io/library/python:3.12", "sha256:fedcba", 1000000000}}};
    return {200, "application/json", inventory.toJson(), {}};
  });
  ASSERT_TRUE(agentRpc.start().ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(agentRpc.port());
  ASSERT_TRUE(manager_->heartbeat("a", {"a", 1, containerNode(url, {kProcess, kEngineDown})}).ok());
  ASSERT_TRUE(manager_->heartbeat("old", {"old", 1, test_support::nodeState(url, {{"cpu", "1"}})}).ok());

  auto agent = call("GET", "/v1/agents/a");
  ASSERT_EQ(agent.status, 200) << agent.body.dump();
  EXPECT_EQ(agent.body["runtimes"], Json::parse(R"([{"kind": "process", "available": true},
      {"kind": "container", "available": false, "reason": "engine /run/podman/podman.sock: connection refused"}])"));
  EXPECT_EQ(agent.body["image_count"], 0);
  EXPECT_EQ(call("GET", "/v1/agents/old").body["runtimes"], Json::parse(R"([{"kind": "process", "available": true}])"))
      << "an agent that reports no runtimes runs host processes";

  auto refreshed = call("POST", "/v1/agents/a/images/refresh");
  ASSERT_EQ(refreshed.status, 200) << refreshed.body.dump();
  EXPECT_EQ(refreshes.load(), 1);
  EXPECT_EQ(refreshed.body["agent"], "a");
  EXPECT_EQ(refreshed.body["runtimes"][1]["available"], true);
  ASSERT_EQ(refreshed.body["images"].size(), 2u);
  EXPECT_EQ(refreshed.body["images"][0],
            Json::parse(R"({"name": "localhost/bai-test/busybox:1", "id": "sha256:0123456789abcdef", "size": 1200000})"));
  EXPECT_EQ(call("POST", "/v1/agents/a/images/refresh", "", &user_).status, 403) << "admins only";
  EXPECT_EQ(call("POST", "/v1/agents/none/images/refresh").body["type"], "unknown-agent");

  // Stored: a restarted manager lists them before the agent reports again.
  restart();
  server_ = std::make_unique<http::Server>(http::ServerOptions{}, managerApi(*manager_, "token"));
  ASSERT_TRUE(server_->start().ok());
  auto images = call("GET", "/v1/images?agent=a");
  ASSERT_EQ(images.status, 200) << images.body.dump();
  ASSERT_EQ(images.body.size(), 1u);
  EXPECT_EQ(images.body[0]["images"], refreshed.body["images"]);
  EXPECT_EQ(call("GET", "/v1/agents/a").body["image_count"], 2);
  auto all = call("GET", "/v1/images");
  ASSERT_EQ(all.body.size(), 2u);
  EXPECT_EQ(all.body[1]["agent"], "old");
  EXPECT_EQ(all.body[1]["images"], Json::array());
  EXPECT_EQ(call("GET", "/v1/images?agent=none").status, 404);

  // An agent that does not answer: the refresh says so and changes nothing.
  agentRpc.stop();
  auto unreachable = call("POST", "/v1/agents/a/images/refresh");
  EXPECT_EQ(unreachable.status, 502) << unreachable.body.dump();
  EXPECT_EQ(unreachable.body["type"], "agent-unreachable");
  EXPECT_EQ(call("GET", "/v1/agents/a").body["image_count"], 2);
}

}  // namespace
}  // namespace bai::manager
