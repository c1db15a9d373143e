// Virtual folders through a real Manager and its HTTP API: signed requests from keypairs,
// a fake storage proxy (its manager API answered from memory) and a fake agent that
// records the sessions it is asked to create, so that mounts are seen as agents get them.
#include "fake_storage_proxy.hpp"
#include "http_client.hpp"
#include "http_server.hpp"
#include "manager.hpp"
#include "manager_api.hpp"
#include "manager_test_support.hpp"

#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"

#include <bai/request_signing.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace bai::manager {
namespace {

using namespace std::chrono_literals;
using bai::testing::eventually;
using Json = nlohmann::json;
using test_support::FakeStorageProxy;

constexpr const char* kStorageToken = "storage-token-for-tests";
constexpr const char* kClientUrl = "http://storage.example:6022";

// An agent's RPC that runs every session it is asked to and records the requests.
class FakeAgent {
 public:
  FakeAgent() : server_({"127.0.0.1", 0, 2, 1 << 20, "", ""}, [this](const http::Request& r) { return handle(r); }) {
    EXPECT_TRUE(server_.start().ok());
  }
  ~FakeAgent() { server_.stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  std::optional<protocol::CreateSessionRequest> createOf(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = creates_.find(id);
    return it == creates_.end() ? std::nullopt : std::optional(it->second);
  }

 private:
  http::Response handle(const http::Request& request) {
    protocol::SessionInfo info;
    info.startedAtMillis = 1;
    if (request.method == "POST" && request.path == "/v1/sessions") {
      auto create = protocol::CreateSessionRequest::fromJson(request.body);
      EXPECT_TRUE(create.ok()) << request.body;
      info.id = create->sessionId;
      info.state = protocol::SessionState::Running;
      std::lock_guard<std::mutex> lock(mutex_);
      creates_[create->sessionId] = *create;
      return {201, "application/json", info.toJson(), {}};
    }
    if (request.path.rfind("/v1/sessions/", 0) == 0) {
      info.id = request.path.substr(std::string("/v1/sessions/").size());
      info.state = request.method == "DELETE" ? protocol::SessionState::Destroyed : protocol::SessionState::Running;
      info.endedAtMillis = request.method == "DELETE" ? 2 : 0;
      return {200, "application/json", info.toJson(), {}};
    }
    return {404, "application/json", protocol::ApiError{"not-found", "No", request.path}.toJson(), {}};
  }

  http::Server server_;
  mutable std::mutex mutex_;
  std::map<std::string, protocol::CreateSessionRequest> creates_;
};

class VfolderTest : public ::testing::Test {
 protected:
  void SetUp() override { startManager(proxy_.url()); }
  void TearDown() override { stopManager(); }

  void stopManager() {
    if (manager_) manager_->shutdown();
    if (api_) api_->stop();
    api_.reset();
    manager_.reset();
  }

  // `proxyUrl` empty: no storage proxy configured.
  void startManager(const std::string& proxyUrl) {
    ManagerSettings settings;
    if (const char* dir = std::getenv("BAI_POLICY_DIR")) settings.policyPath.push_back(dir);
    settings.schedulerPeriod = 50ms;
    settings.agentRpcTimeout = 2s;
    settings.dispatchThreads = 2;
    if (!proxyUrl.empty()) {
      settings.storage.proxies = {{"local", proxyUrl, kClientUrl, "/unused", kStorageToken}};
      settings.storage.defaultHost = "local:default";
    }
    settings.storage.grantTtl = 900s;
    auto store = openStore("sqlite://" + (dir_.path() / "m.db").string());
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto manager = Manager::start(settings, std::move(*store), "token", LogSink());
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    manager_ = std::move(*manager);
    if (admin_.accessKey.empty()) {
      for (auto* key : {&admin_, &owner_, &other_, &third_}) *key = newKeypair(key == &admin_);
    }
    api_ = std::make_unique<http::Server>(http::ServerOptions{}, managerApi(*manager_, "token"));
    ASSERT_TRUE(api_->start().ok());
    auto state = test_support::nodeState(agent_.url(), {{"cpu", "8"}, {"mem", "8589934592"}});
    ASSERT_TRUE(manager_->heartbeat("a1", {"a1", ++digest_, state}).ok());
  }

  auth::SigningKey newKeypair(bool admin, const std::string& policy = "") {
    auto created = manager_->admin().createKeypair(admin, policy);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().detail);
    return {created->accessKey, created->secretKey};
  }
  std::uint32_t uidOf(const auth::SigningKey& key) { return manager_->admin().keypair(key.accessKey)->uid; }

  using Reply = test_support::SignedReply;
  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             const auth::SigningKey* key = nullptr) {
    return test_support::signedCall(api_->port(), key ? *key : owner_, method, target, body);
  }
  Reply as(const auth::SigningKey& key, const std::string& method, const std::string& target, const std::string& body = "") {
    return call(method, target, body, &key);
  }
  // A folder of `key`'s: its id.
  std::string createFolder(const std::string& name, const auth::SigningKey& key, const std::string& extra = "") {
    auto created = as(key, "POST", "/v1/vfolders", R"({"name": ")" + name + "\"" + extra + "}");
    EXPECT_EQ(created.status, 201) << created.body.dump();
    return created.body.value("id", "");
  }
  Reply share(const std::string& ref, const auth::SigningKey& with, const std::string& permission) {
    return call("POST", "/v1/vfolders/" + ref + "/shares",
                Json{{"access_key", with.accessKey}, {"permission", permission}}.dump());
  }
  // A session of `key` mounting `mounts`; its JSON once RUNNING.
  Json runningSession(const auth::SigningKey& key, const Json& mounts) {
    auto created = as(key, "POST", "/v1/sessions", Json{{"command", {"sh"}}, {"resources", {{"cpu", 1}}}, {"mounts", mounts}}.dump());
    EXPECT_EQ(created.status, 201) << created.body.dump();
    const std::string id = created.body.value("id", "");
    Json session;
    EXPECT_TRUE(eventually([&] {
      session = as(key, "GET", "/v1/sessions/" + id).body;
      return session.value("status", "") == "RUNNING";
    })) << session.dump();
    return session;
  }
  static std::string typeOf(const Reply& reply) { return reply.body.is_object() ? reply.body.value("type", "") : ""; }

  test::TempDir dir_;
  FakeStorageProxy proxy_{kStorageToken};
  FakeAgent agent_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<http::Server> api_;
  auth::SigningKey admin_, owner_, other_, third_;
  std::uint64_t digest_ = 0;
};

TEST_F(VfolderTest, CreateListInfoAndDeleteGoThroughTheProxy) {
  auto created = call("POST", "/v1/vfolders", R"({"name": "data", "quota": "1g"})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const std::string id = created.body["id"];
  EXPECT_TRUE(storage_protocol::isFolderId(id)) << id;
  EXPECT_EQ(created.body["name"], "data");
  EXPECT_EQ(created.body["owner"], owner_.accessKey);
  EXPECT_EQ(created.body["host"], "local:default");
  EXPECT_EQ(created.body["quota_bytes"], 1u << 30);
  EXPECT_EQ(created.body["permission"], "rw");
  EXPECT_EQ(created.body["access"], "owner");
  EXPECT_EQ(created.body["shared_with"], Json::array());
  EXPECT_TRUE(auth::parseRfc3339Utc(created.body.value("created_at", "")).ok()) << created.body.dump();
  auto onProxy = proxy_.folder(id);
  ASSERT_TRUE(onProxy.has_value());
  EXPECT_EQ(onProxy->info.uid, uidOf(owner_));
  EXPECT_EQ(onProxy->info.quotaBytes, std::optional<std::uint64_t>(1u << 30));

  auto listed = call("GET", "/v1/vfolders");
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.body["vfolders"].size(), 1u);
  EXPECT_EQ(listed.body["vfolders"][0]["id"], id);
  EXPECT_FALSE(listed.body["vfolders"][0].contains("used_bytes"));

  proxy_.setUsage(id, 12345, 3);
  auto info = call("GET", "/v1/vfolders/data");
  ASSERT_EQ(info.status, 200) << info.body.dump();
  EXPECT_EQ(info.body["used_bytes"], 12345);
  EXPECT_EQ(info.body["file_count"], 3);
  EXPECT_EQ(call("GET", "/v1/vfolders/" + id).body["name"], "data") << "a folder is also named by its id";

  EXPECT_EQ(call("DELETE", "/v1/vfolders/data").status, 204);
  EXPECT_FALSE(proxy_.folder(id).has_value());
  EXPECT_EQ(typeOf(call("GET", "/v1/vfolders/data")), "no-such-vfolder");
  EXPECT_EQ(call("GET", "/v1/vfolders").body["vfolders"], Json::array());
  EXPECT_EQ(proxy_.unauthorizedCalls(), 0) << "every call carried the storage token";
}

TEST_F(VfolderTest, NamesFollowTheRulesAndAreUniquePerOwner) {
  for (const std::string& name : std::vector<std::string>{"", ".hidden", "a/b", "sp ace", "é", std::string(65, 'a')}) {
    auto refused = call("POST", "/v1/vfolders", Json{{"name", name}}.dump());
    EXPECT_EQ(refused.status, 400) << name;
    EXPECT_EQ(refused.body.value("field", ""), "name") << name;
  }
  EXPECT_EQ(call("POST", "/v1/vfolders", R"({"quota": "1g"})").status, 400) << "a name is required";
  EXPECT_EQ(call("POST", "/v1/vfolders", R"({"name": "x", "colour": "red"})").body.value("field", ""), "colour");
  EXPECT_EQ(call("POST", "/v1/vfolders", R"({"name": "x", "quota": "lots"})").body.value("field", ""), "quota");
  EXPECT_EQ(call("POST", "/v1/vfolders", R"({"name": "x", "permission": "rwx"})").body.value("field", ""), "permission");
  createFolder("My-Data_1.0", owner_);
  auto again = call("POST", "/v1/vfolders", R"({"name": "My-Data_1.0"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(typeOf(again), "vfolder-exists");
  createFolder("My-Data_1.0", other_);  // another owner's namespace
  EXPECT_EQ(proxy_.folderCount(), 2u);
  auto unknownHost = call("POST", "/v1/vfolders", R"({"name": "y", "host": "elsewhere:default"})");
  EXPECT_EQ(unknownHost.status, 400);
  EXPECT_EQ(unknownHost.body.value("field", ""), "host");
  auto unknownVolume = call("POST", "/v1/vfolders", R"({"name": "y", "host": "local:nope"})");
  EXPECT_EQ(unknownVolume.status, 502) << unknownVolume.body.dump();
  EXPECT_EQ(call("GET", "/v1/vfolders").body["vfolders"].size(), 1u) << "a refused create leaves no row";
}

TEST_F(VfolderTest, AnUnsharedFolderIsInvisibleToOthersUntilShared) {
  const std::string id = createFolder("data", owner_);
  for (const std::string& ref : std::vector<std::string>{"data", id}) {
    EXPECT_EQ(typeOf(as(other_, "GET", "/v1/vfolders/" + ref)), "no-such-vfolder") << ref;
    EXPECT_EQ(typeOf(as(other_, "DELETE", "/v1/vfolders/" + ref)), "no-such-vfolder") << ref;
    EXPECT_EQ(typeOf(as(other_, "GET", "/v1/vfolders/" + ref + "/files")), "no-such-vfolder") << ref;
    EXPECT_EQ(typeOf(as(other_, "POST", "/v1/vfolders/" + ref + "/grants", R"({"operation": "download", "path": ""})")),
              "no-such-vfolder")
        << ref;
    EXPECT_EQ(typeOf(as(other_, "POST", "/v1/sessions", Json{{"command", {"sh"}}, {"mounts", {{{"folder", ref}}}}}.dump())),
              "no-such-vfolder")
        << ref;
  }
  EXPECT_EQ(as(other_, "GET", "/v1/vfolders").body["vfolders"], Json::array());
  EXPECT_TRUE(proxy_.folder(id)->access.empty());

  auto shared = share("data", other_, "rw");
  ASSERT_EQ(shared.status, 200) << shared.body.dump();
  EXPECT_EQ(shared.body["shared_with"], (Json::array({{{"access_key", other_.accessKey}, {"permission", "rw"}}})));
  EXPECT_EQ(proxy_.folder(id)->access, (std::map<std::uint32_t, storage_protocol::Permission>{
                                           {uidOf(other_), storage_protocol::Permission::ReadWrite}}));
  auto seen = as(other_, "GET", "/v1/vfolders/data");
  ASSERT_EQ(seen.status, 200) << seen.body.dump();
  EXPECT_EQ(seen.body["access"], "rw");
  EXPECT_EQ(seen.body["shared_with"], Json::array()) << "only the owner sees who it is shared with";
  EXPECT_EQ(as(other_, "GET", "/v1/vfolders").body["vfolders"].size(), 1u);
  EXPECT_EQ(as(other_, "POST", "/v1/vfolders/data/grants", R"({"operation": "upload", "path": "in"})").status, 200);
  EXPECT_EQ(typeOf(as(other_, "DELETE", "/v1/vfolders/data")), "vfolder-not-owner");
  EXPECT_EQ(typeOf(as(other_, "POST", "/v1/vfolders/data/shares", Json{{"access_key", third_.accessKey}}.dump())),
            "vfolder-not-owner");
  EXPECT_EQ(typeOf(as(third_, "GET", "/v1/vfolders/" + id)), "no-such-vfolder");

  EXPECT_EQ(call("DELETE", "/v1/vfolders/data/shares/" + other_.accessKey).status, 204);
  EXPECT_TRUE(proxy_.folder(id)->access.empty());
  EXPECT_EQ(typeOf(as(other_, "GET", "/v1/vfolders/data")), "no-such-vfolder");
  EXPECT_EQ(call("DELETE", "/v1/vfolders/data/shares/" + other_.accessKey).status, 404);
  EXPECT_EQ(share("data", owner_, "rw").status, 400) << "the owner cannot share with itself";
  EXPECT_EQ(typeOf(call("POST", "/v1/vfolders/data/shares", R"({"access_key": "AKNOBODY"})")), "unknown-keypair");
  auto adminView = as(admin_, "GET", "/v1/vfolders?all=1");
  ASSERT_EQ(adminView.status, 200);
  EXPECT_EQ(adminView.body["vfolders"].size(), 1u) << "admins see every folder";
  EXPECT_EQ(call("GET", "/v1/vfolders?all=1").status, 403);
}

TEST_F(VfolderTest, AReadOnlyShareRefusesWritesAndMountsReadOnly) {
  const std::string id = createFolder("data", owner_, R"(, "permission": "ro")");
  // The folder's permission is what a share names none of.
  ASSERT_EQ(call("POST", "/v1/vfolders/data/shares", Json{{"access_key", other_.accessKey}}.dump()).status, 200);
  EXPECT_EQ(proxy_.folder(id)->access.at(uidOf(other_)), storage_protocol::Permission::ReadOnly);
  EXPECT_EQ(as(other_, "GET", "/v1/vfolders/data").body["access"], "ro");
  auto upload = as(other_, "POST", "/v1/vfolders/data/grants", R"({"operation": "upload", "path": "x"})");
  EXPECT_EQ(upload.status, 403);
  EXPECT_EQ(typeOf(upload), "vfolder-read-only");
  EXPECT_EQ(as(other_, "POST", "/v1/vfolders/data/grants", R"({"operation": "download", "path": "x"})").status, 200);
  EXPECT_EQ(typeOf(as(other_, "POST", "/v1/vfolders/data/mkdir", R"({"path": "d"})")), "vfolder-read-only");
  EXPECT_TRUE(proxy_.operationBodies().empty()) << "nothing reached the proxy";

  const Json session = runningSession(other_, {{{"folder", "data"}, {"read_only", false}}});
  ASSERT_EQ(session["mounts"].size(), 1u);
  EXPECT_EQ(session["mounts"][0]["read_only"], true);
  auto request = agent_.createOf(session["id"]);
  ASSERT_TRUE(request.has_value());
  ASSERT_EQ(request->mounts.size(), 1u);
  EXPECT_TRUE(request->mounts[0].readOnly) << "a read-only share mounts read-only whatever the request says";
}

TEST_F(VfolderTest, SessionMountsReachTheAgentWithTheFoldersHostPath) {
  const std::string data = createFolder("data", owner_);
  const std::string models = createFolder("models", owner_);
  const Json session = runningSession(owner_, {{{"folder", "data"}}, {{"folder", models}, {"target", "/home/work/m/"}, {"read_only", true}}});
  auto request = agent_.createOf(session["id"]);
  ASSERT_TRUE(request.has_value());
  const std::vector<protocol::FolderMount> expected = {
      {data, proxy_.folder(data)->info.hostPath, "/home/work/data", false},
      {models, proxy_.folder(models)->info.hostPath, "/home/work/m", true}};
  EXPECT_EQ(request->mounts, expected);
  EXPECT_EQ(session["mounts"], Json::parse(R"([{"folder": "data", "id": ")" + data +
                                           R"(", "target": "/home/work/data", "read_only": false}, {"folder": "models", "id": ")" +
                                           models + R"(", "target": "/home/work/m", "read_only": true}])"));
  // Shown the same after a restart: the mounts are stored with the session.
  EXPECT_EQ(call("GET", "/v1/sessions?status=RUNNING").body[0]["mounts"], session["mounts"]);

  auto submit = [&](const Json& mounts) {
    return call("POST", "/v1/sessions", Json{{"command", {"sh"}}, {"mounts", mounts}}.dump());
  };
  for (const std::string target : {"/etc", "/home/work", "/home/work/../etc", "home/work/x"}) {
    auto refused = submit({{{"folder", "data"}, {"target", target}}});
    EXPECT_EQ(refused.status, 400) << target;
    EXPECT_EQ(refused.body.value("field", ""), "mounts") << target;
  }
  EXPECT_EQ(submit({{{"folder", "data"}}, {{"folder", "models"}, {"target", "/home/work/data"}}}).status, 400) << "targets are unique";
  Json many = Json::array();
  for (std::size_t i = 0; i <= protocol::kMaxFolderMounts; ++i) many.push_back({{"folder", "data"}, {"target", "/home/work/d" + std::to_string(i)}});
  EXPECT_EQ(submit(many).status, 400);
  EXPECT_EQ(submit({{{"folder", "data"}, {"mode", "x"}}}).status, 400);
  EXPECT_EQ(submit(Json{{"folder", "data"}}).status, 400) << "mounts is a list";
}

TEST_F(VfolderTest, AFolderMountedByAnActiveSessionIsNotDeleted) {
  const std::string id = createFolder("data", owner_);
  const Json session = runningSession(owner_, {{{"folder", "data"}}});
  auto refused = call("DELETE", "/v1/vfolders/data");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(typeOf(refused), "vfolder-in-use");
  EXPECT_TRUE(proxy_.folder(id).has_value());
  ASSERT_EQ(call("DELETE", "/v1/sessions/" + session["id"].get<std::string>()).status, 200);
  ASSERT_TRUE(eventually([&] { return call("DELETE", "/v1/vfolders/data").status == 204; }));
  EXPECT_FALSE(proxy_.folder(id).has_value());
}

TEST_F(VfolderTest, PolicyLimitsTheCountAndSizeOfFolders) {
  auto policy = as(admin_, "POST", "/v1/resource-policies", R"({"name": "small", "max_vfolder_count": 2, "max_vfolder_size": "1g"})");
  ASSERT_EQ(policy.status, 201) << policy.body.dump();
  EXPECT_EQ(policy.body["max_vfolder_count"], 2);
  EXPECT_EQ(policy.body["max_vfolder_size"], 1u << 30);
  EXPECT_EQ(as(admin_, "POST", "/v1/resource-policies", R"({"name": "bad", "max_vfolder_size": -1})").status, 400);
  const auth::SigningKey limited = newKeypair(false, "small");
  auto tooBig = as(limited, "POST", "/v1/vfolders", R"({"name": "big", "quota": "2g"})");
  EXPECT_EQ(tooBig.status, 403);
  EXPECT_EQ(typeOf(tooBig), "vfolder-limit");
  auto unlimited = as(limited, "POST", "/v1/vfolders", R"({"name": "a"})");
  ASSERT_EQ(unlimited.status, 201);
  EXPECT_EQ(unlimited.body["quota_bytes"], 1u << 30) << "a folder without a quota gets the policy's largest";
  EXPECT_EQ(as(limited, "POST", "/v1/vfolders", R"({"name": "b", "quota": 1048576})").status, 201);
  auto third = as(limited, "POST", "/v1/vfolders", R"({"name": "c", "quota": "1m"})");
  EXPECT_EQ(third.status, 403);
  EXPECT_EQ(typeOf(third), "vfolder-limit");
  EXPECT_EQ(proxy_.folderCount(), 2u) << "a refused folder is never made on the proxy";
}

TEST_F(VfolderTest, GrantsVerifyWithTheProxysKeyAndCoverExactlyTheirPath) {
  const std::string id = createFolder("data", owner_);
  const auto before = nowMillis();
  auto issued = call("POST", "/v1/vfolders/data/grants", R"({"operation": "download", "path": "runs/r1/"})");
  ASSERT_EQ(issued.status, 200) << issued.body.dump();
  EXPECT_EQ(issued.body["url"], kClientUrl);
  EXPECT_EQ(issued.body["path"], "runs/r1");
  auto grant = storage_protocol::verifyGrant(issued.body.value("grant", ""), storage_protocol::grantKey(kStorageToken), nowMillis());
  ASSERT_TRUE(grant.ok()) << grant.error().message;
  EXPECT_EQ(grant->operation, storage_protocol::GrantOperation::Download);
  EXPECT_EQ(grant->volume, "default");
  EXPECT_EQ(grant->folderId, id);
  EXPECT_EQ(grant->path, "runs/r1");
  EXPECT_EQ(grant->subject, owner_.accessKey);
  EXPECT_GE(grant->expiresAtMillis, before + 900000);
  EXPECT_LE(grant->expiresAtMillis, nowMillis() + 900000);
  auto expiresAt = auth::parseRfc3339Utc(issued.body.value("expires_at", ""));
  ASSERT_TRUE(expiresAt.ok());
  EXPECT_NEAR(std::chrono::duration_cast<std::chrono::milliseconds>(expiresAt->time_since_epoch()).count(),
              grant->expiresAtMillis, 1000);
  EXPECT_TRUE(storage_protocol::pathWithin("runs/r1/out.txt", grant->path));
  EXPECT_FALSE(storage_protocol::pathWithin("runs/r10", grant->path));
  EXPECT_FALSE(storage_protocol::verifyGrant(issued.body.value("grant", ""), storage_protocol::grantKey("another"), nowMillis()).ok());
  EXPECT_FALSE(storage_protocol::verifyGrant(issued.body.value("grant", ""), storage_protocol::grantKey(kStorageToken),
                                             grant->expiresAtMillis + 1)
                   .ok());

  auto upload = call("POST", "/v1/vfolders/data/grants", R"({"operation": "upload"})");
  ASSERT_EQ(upload.status, 200);
  EXPECT_EQ(upload.body["path"], "");
  EXPECT_EQ(storage_protocol::verifyGrant(upload.body.value("grant", ""), storage_protocol::grantKey(kStorageToken), nowMillis())
                ->operation,
            storage_protocol::GrantOperation::Upload);
  for (const std::string path : {"../etc", "/abs", "a//b", "a/./b"}) {
    auto refused = call("POST", "/v1/vfolders/data/grants", Json{{"operation", "download"}, {"path", path}}.dump());
    EXPECT_EQ(refused.status, 400) << path;
    EXPECT_EQ(typeOf(refused), "invalid-path") << path;
  }
  EXPECT_EQ(call("POST", "/v1/vfolders/data/grants", R"({"operation": "delete", "path": ""})").status, 400);
}

TEST_F(VfolderTest, TwoSharedFoldersOfOneNameAreAmbiguousUntilNamedByIdAndOwnComesFirst) {
  const std::string mine = createFolder("data", owner_);
  const std::string theirs = createFolder("data", other_);
  ASSERT_EQ(share("data", third_, "rw").status, 200);
  ASSERT_EQ(as(other_, "POST", "/v1/vfolders/data/shares", Json{{"access_key", third_.accessKey}}.dump()).status, 200);
  auto ambiguous = as(third_, "GET", "/v1/vfolders/data");
  EXPECT_EQ(ambiguous.status, 409);
  EXPECT_EQ(typeOf(ambiguous), "ambiguous-vfolder");
  const std::string detail = ambiguous.body.value("detail", "");
  EXPECT_NE(detail.find(mine), std::string::npos) << detail;
  EXPECT_NE(detail.find(theirs), std::string::npos) << detail;
  EXPECT_EQ(as(third_, "GET", "/v1/vfolders/" + theirs).body["owner"], other_.accessKey);
  const std::string own = createFolder("data", third_);
  EXPECT_EQ(as(third_, "GET", "/v1/vfolders/data").body["id"], own) << "the caller's own folder comes first";
}

TEST_F(VfolderTest, FileOperationsAreRelayedWithNormalisedPathsAndTheProxysErrorsPassThrough) {
  const std::string id = createFolder("data", owner_);
  proxy_.addFile(id, {"a", "dir", 0, 0755, 1});
  proxy_.addFile(id, {"a/x.txt", "file", 5, 0644, 2});
  proxy_.addFile(id, {"a/b/y.txt", "file", 7, 0644, 3});
  auto top = call("GET", "/v1/vfolders/data/files?path=a");
  ASSERT_EQ(top.status, 200) << top.body.dump();
  EXPECT_EQ(top.body["entries"].size(), 1u);
  EXPECT_EQ(call("GET", "/v1/vfolders/data/files?path=a&recursive=1").body["entries"].size(), 2u);
  EXPECT_EQ(typeOf(call("GET", "/v1/vfolders/data/files?path=nope")), "no-such-file");
  EXPECT_EQ(typeOf(call("GET", "/v1/vfolders/data/files?path=..%2Fx")), "invalid-path");
  EXPECT_EQ(call("GET", "/v1/vfolders/data/files?recursive=yes").status, 400);

  EXPECT_EQ(call("POST", "/v1/vfolders/data/mkdir", R"({"path": "new/dir/", "parents": true})").status, 201);
  EXPECT_EQ(call("POST", "/v1/vfolders/data/move", R"({"from": "a/x.txt", "to": "moved.txt"})").status, 204);
  EXPECT_EQ(call("POST", "/v1/vfolders/data/delete", R"({"path": "a", "recursive": true})").status, 204);
  EXPECT_EQ(proxy_.operationBodies(),
            (std::vector<std::string>{R"({"parents":true,"path":"new/dir"})", R"({"from":"a/x.txt","to":"moved.txt"})",
                                      R"({"path":"a","recursive":true})"}));
  EXPECT_EQ(typeOf(call("POST", "/v1/vfolders/data/delete", R"({"path": ""})")), "invalid-path") << "never the root";
  EXPECT_EQ(typeOf(call("POST", "/v1/vfolders/data/move", R"({"from": "../a", "to": "b"})")), "invalid-path");
  EXPECT_EQ(call("POST", "/v1/vfolders/data/mkdir", R"({"path": "d", "mode": 7})").status, 400);
  EXPECT_EQ(call("POST", "/v1/vfolders/data/move", R"({"from": "a"})").status, 400);

  proxy_.failNext(413, "quota-exceeded", "folder is full");
  auto full = call("POST", "/v1/vfolders/data/mkdir", R"({"path": "z"})");
  EXPECT_EQ(full.status, 413);
  EXPECT_EQ(typeOf(full), "quota-exceeded");
  EXPECT_EQ(full.body.value("detail", ""), "folder is full");
  proxy_.failNext(507, "insufficient-storage");
  EXPECT_EQ(call("POST", "/v1/vfolders/data/mkdir", R"({"path": "z"})").status, 507);
}

TEST_F(VfolderTest, ACreateThatLosesTheRaceForItsNameDeletesTheFolderItMadeOnTheProxy) {
  const std::string winner = "0123456789abcdef0123456789abcdef";
  // While the create waits for the proxy, a folder of the same name is recorded.
  proxy_.beforeNextCreate([&] {
    auto won = manager_->store().write([&](StoreTransaction& tx) {
      return tx.insertVfolder(VfolderRecord{winner, "data", owner_.accessKey, "local:default", "/srv/w", std::nullopt,
                                            storage_protocol::Permission::ReadWrite, 1});
    });
    ASSERT_TRUE(won.ok()) << won.error().message;
  });
  auto lost = call("POST", "/v1/vfolders", R"({"name": "data"})");
  EXPECT_EQ(lost.status, 409) << lost.body.dump();
  EXPECT_EQ(typeOf(lost), "vfolder-exists");
  EXPECT_EQ(proxy_.folderCount(), 0u) << "the folder made for the lost create is gone from the proxy";
  const auto calls = proxy_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], "POST /v1/folders");
  EXPECT_EQ(calls[1].rfind("DELETE /v1/folders/default/", 0), 0u) << calls[1];
  auto listed = call("GET", "/v1/vfolders");
  ASSERT_EQ(listed.body["vfolders"].size(), 1u);
  EXPECT_EQ(listed.body["vfolders"][0]["id"], winner);
}

TEST_F(VfolderTest, StorageHostsListTheProxysVolumes) {
  proxy_.addVolume("scratch");
  auto hosts = call("GET", "/v1/storage/hosts");
  ASSERT_EQ(hosts.status, 200) << hosts.body.dump();
  ASSERT_EQ(hosts.body["hosts"].size(), 2u);
  EXPECT_EQ(hosts.body["hosts"][0], Json::parse(R"({"host": "local:default", "backend": "vfs", "kernel_quota": false,
                                                   "total_bytes": 1000000, "free_bytes": 600000})"));
  EXPECT_EQ(hosts.body["hosts"][1]["host"], "local:scratch");
}

TEST_F(VfolderTest, AProxyThatIsDownIsUnavailableAndLeavesNoRow) {
  stopManager();
  startManager("http://127.0.0.1:1");  // nothing listens there
  auto created = call("POST", "/v1/vfolders", R"({"name": "data"})");
  EXPECT_EQ(created.status, 503);
  EXPECT_EQ(typeOf(created), "storage-unavailable");
  EXPECT_EQ(created.body.value("detail", "").find(kStorageToken), std::string::npos) << "the token is never shown";
  EXPECT_EQ(call("GET", "/v1/vfolders").body["vfolders"], Json::array());
  EXPECT_EQ(call("GET", "/v1/storage/hosts").status, 503);
}

TEST_F(VfolderTest, WithoutAProxyEveryFolderRouteSaysHowToConfigureOne) {
  stopManager();
  startManager("");
  for (auto [method, target] : {std::pair{"POST", "/v1/vfolders"}, std::pair{"GET", "/v1/vfolders"},
                                std::pair{"GET", "/v1/vfolders/data"}, std::pair{"GET", "/v1/storage/hosts"}}) {
    auto reply = call(method, target, std::string(method) == "POST" ? R"({"name": "data"})" : "");
    EXPECT_EQ(reply.status, 503) << target;
    EXPECT_EQ(reply.body.value("detail", ""), "no storage proxy is configured ([storage-proxies.NAME] in manager.toml)");
  }
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"command": ["sh"]})").status, 201) << "sessions without mounts still run";
}

TEST(VfolderConfig, StorageProxiesAndTheDefaultHostAreReadAndChecked) {
  auto config = managerConfigSchema().parse(R"([storage]
default-host = "local:fast"
grant-ttl = 60
[storage-proxies.local]
manager-url = "http://127.0.0.1:6021/"
client-url = "https://storage.example:6022"
token-file = "/etc/bai/storage-token"
)", "m.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto settings = managerSettings(*config);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  ASSERT_EQ(settings->storage.proxies.size(), 1u);
  EXPECT_EQ(settings->storage.proxies[0].name, "local");
  EXPECT_EQ(settings->storage.proxies[0].managerUrl, "http://127.0.0.1:6021");
  EXPECT_EQ(settings->storage.proxies[0].clientUrl, "https://storage.example:6022");
  EXPECT_EQ(settings->storage.proxies[0].tokenFile, "/etc/bai/storage-token");
  EXPECT_EQ(settings->storage.defaultHost, "local:fast");
  EXPECT_EQ(settings->storage.grantTtl, 60s);

  auto refused = [](const std::string& toml) {
    auto parsed = managerConfigSchema().parse(toml, "m.toml");
    if (!parsed.ok()) return parsed.error().message;
    auto resolved = managerSettings(*parsed);
    return resolved.ok() ? std::string() : resolved.error().message;
  };
  const std::string proxy = "[storage-proxies.local]\nmanager-url = \"http://a:1\"\nclient-url = \"http://a:2\"\ntoken-file = \"t\"\n";
  EXPECT_NE(refused("[storage]\ndefault-host = \"other:default\"\n" + proxy).find("no [storage-proxies.other]"), std::string::npos);
  EXPECT_NE(refused("[storage]\ndefault-host = \"local\"\n" + proxy).find("PROXY:VOLUME"), std::string::npos);
  EXPECT_NE(refused("[storage-proxies.Bad]\nmanager-url = \"http://a:1\"\nclient-url = \"http://a:2\"\ntoken-file = \"t\"\n")
                .find("storage-proxies.Bad"),
            std::string::npos);
  EXPECT_NE(refused("[storage-proxies.local]\nmanager-url = \"http://a:1\"\ntoken-file = \"t\"\n").find("client-url is required"),
            std::string::npos);
  EXPECT_NE(refused(proxy + "colour = \"red\"\n").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(refused("[storage]\ngrant-ttl = 1\n").find("grant-ttl"), std::string::npos);
  auto defaults = managerSettings(*managerConfigSchema().parse(proxy, "m.toml"));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->storage.defaultHost, "local:default");
  EXPECT_EQ(defaults->storage.grantTtl, 900s);
}

TEST(VfolderConfig, AProxysTokenIsReadOnlyFromAFileNoOneElseCanRead) {
  test::TempDir dir;
  StorageSettings storage;
  storage.proxies = {{"local", "http://a:1", "http://a:2", (dir.path() / "token").string()}};
  {
    std::ofstream(dir.path() / "token") << "s3cret\n";
  }
  std::filesystem::permissions(dir.path() / "token", std::filesystem::perms::owner_read | std::filesystem::perms::group_read);
  auto open = readStorageTokens(storage);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().message.find("storage-proxies.local.token-file"), std::string::npos) << open.error().message;
  std::filesystem::permissions(dir.path() / "token", std::filesystem::perms::owner_read);
  ASSERT_TRUE(readStorageTokens(storage).ok());
  EXPECT_EQ(storage.proxies[0].token, "s3cret");
}

}  // namespace
}  // namespace bai::manager
