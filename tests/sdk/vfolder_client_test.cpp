// libbai-client's virtual-folder calls against a scripted manager: the routes, bodies and
// signatures it sends, how it reads Vfolder documents, and errors with type and detail.
#include <bai/client.hpp>
#include <bai/request_signing.hpp>

#include "http_server.hpp"
#include "scripted_manager.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <mutex>

namespace bai::client {
namespace {

using Json = nlohmann::json;

constexpr const char* kAccessKey = "AKBAIVFOLDER0000001";
constexpr const char* kSecretKey = "vfolder-test-secret";

const char* kFolderDoc = R"({"id":"0123456789abcdef0123456789abcdef","name":"data","owner":"AKBAIVFOLDER0000001",
  "host":"local:default","quota_bytes":10737418240,"permission":"ro","access":"owner",
  "shared_with":[{"access_key":"AKOTHER","permission":"ro"}],"created_at":"2026-12-07T22:00:00Z",
  "used_bytes":4096,"file_count":3})";

class VfolderClientTest : public ::testing::Test {
 protected:
  void answer(int status, std::string body) { manager_.answer(status, std::move(body)); }
  http::Request last() { return manager_.last(); }
  Client client() const { return manager_.client(); }
  // The request was signed with the keypair over what was sent.
  static void expectSigned(const http::Request& sent) {
    EXPECT_EQ(sent.header("x-bai-content-sha256"), auth::sha256Hex(sent.body));
    const std::string signature = auth::hmacSha256Hex(
        kSecretKey, auth::stringToSign(sent.method, sent.target, sent.header("x-bai-date"), sent.header("x-bai-nonce"),
                                       sent.header("x-bai-content-sha256")));
    EXPECT_EQ(sent.header("authorization"),
              std::string("BAI-HMAC-SHA256 Credential=") + kAccessKey + ", Signature=" + signature);
  }

 private:
  testing::ScriptedManager manager_{kAccessKey, kSecretKey};
};

TEST_F(VfolderClientTest, CreateSendsTheFieldsGivenAndReadsTheFolder) {
  answer(201, kFolderDoc);
  auto folder = client().createVfolder({"data", "local:default", "10g", "ro"});
  ASSERT_TRUE(folder.ok()) << folder.error().message();
  const http::Request sent = last();
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.target, "/v1/vfolders");
  EXPECT_EQ(Json::parse(sent.body), Json::parse(R"({"name":"data","host":"local:default","quota":"10g","permission":"ro"})"));
  expectSigned(sent);
  EXPECT_EQ(folder->id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(folder->quotaBytes, std::optional<std::uint64_t>(10737418240ull));
  EXPECT_EQ(folder->access, "owner");
  ASSERT_EQ(folder->sharedWith.size(), 1u);
  EXPECT_EQ(folder->sharedWith[0].accessKey, "AKOTHER");
  EXPECT_EQ(folder->sharedWith[0].permission, "ro");
  EXPECT_EQ(folder->usedBytes, std::optional<std::uint64_t>(4096));
  EXPECT_EQ(folder->fileCount, std::optional<std::uint64_t>(3));
  EXPECT_EQ(Json::parse(folder->json), Json::parse(kFolderDoc));
}

TEST_F(VfolderClientTest, AByteQuotaIsSentAsANumberAndEmptyFieldsAreLeftOut) {
  answer(201, kFolderDoc);
  ASSERT_TRUE(client().createVfolder({"data", "", "1048576", ""}).ok());
  EXPECT_EQ(Json::parse(last().body), Json::parse(R"({"name":"data","quota":1048576})"));
}

TEST_F(VfolderClientTest, AFolderWithoutQuotaOrUsageReadsAsNone) {
  answer(200, R"({"vfolders":[{"id":"i1","name":"a","quota_bytes":null,"access":"rw","shared_with":[]}]})");
  auto folders = client().vfolders(true);
  ASSERT_TRUE(folders.ok()) << folders.error().message();
  EXPECT_EQ(last().target, "/v1/vfolders?all=1");
  ASSERT_EQ(folders->size(), 1u);
  EXPECT_FALSE((*folders)[0].quotaBytes.has_value());
  EXPECT_FALSE((*folders)[0].usedBytes.has_value());
  EXPECT_EQ((*folders)[0].access, "rw");
}

TEST_F(VfolderClientTest, EveryRouteGoesToItsPathWithItsBody) {
  const Client api = client();
  answer(200, kFolderDoc);
  ASSERT_TRUE(api.vfolder("my data").ok());
  EXPECT_EQ(last().method, "GET");
  EXPECT_EQ(last().target, "/v1/vfolders/my%20data");

  answer(204, "");
  ASSERT_TRUE(api.deleteVfolder("data").ok());
  EXPECT_EQ(last().method, "DELETE");
  EXPECT_EQ(last().target, "/v1/vfolders/data");
  expectSigned(last());

  answer(200, kFolderDoc);
  ASSERT_TRUE(api.shareVfolder("data", "AKOTHER", "ro").ok());
  EXPECT_EQ(last().target, "/v1/vfolders/data/shares");
  EXPECT_EQ(Json::parse(last().body), Json::parse(R"({"access_key":"AKOTHER","permission":"ro"})"));

  answer(204, "");
  ASSERT_TRUE(api.unshareVfolder("data", "AKOTHER").ok());
  EXPECT_EQ(last().method, "DELETE");
  EXPECT_EQ(last().target, "/v1/vfolders/data/shares/AKOTHER");

  ASSERT_TRUE(api.vfolderMkdir("data", "a/b", true).ok());
  EXPECT_EQ(last().target, "/v1/vfolders/data/mkdir");
  EXPECT_EQ(Json::parse(last().body), Json::parse(R"({"path":"a/b","parents":true})"));
  ASSERT_TRUE(api.vfolderDelete("data", "a", true).ok());
  EXPECT_EQ(last().target, "/v1/vfolders/data/delete");
  EXPECT_EQ(Json::parse(last().body), Json::parse(R"({"path":"a","recursive":true})"));
  ASSERT_TRUE(api.vfolderMove("data", "a", "b c").ok());
  EXPECT_EQ(last().target, "/v1/vfolders/data/move");
  EXPECT_EQ(Json::parse(last().body), Json::parse(R"({"from":"a","to":"b c"})"));
  expectSigned(last());
}

TEST_F(VfolderClientTest, AListingIsReadEntryByEntry) {
  answer(200, R"({"entries":[{"path":"a b/c.txt","type":"file","size":12,"mode":420,"modified_at_ms":1700},
                              {"path":"a b","type":"dir","size":0,"mode":493,"modified_at_ms":1600}]})");
  auto entries = client().vfolderFiles("data", "a b", true);
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  EXPECT_EQ(last().target, "/v1/vfolders/data/files?path=a%20b&recursive=1");
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].path, "a b/c.txt");
  EXPECT_EQ((*entries)[0].size, 12u);
  EXPECT_EQ((*entries)[0].mode, 420u);
  EXPECT_EQ((*entries)[0].modifiedAtMs, 1700);
  EXPECT_EQ((*entries)[1].type, "dir");
}

TEST_F(VfolderClientTest, HostsAndGrantsAreRead) {
  answer(200, R"({"hosts":[{"host":"local:default","backend":"vfs","kernel_quota":false,"total_bytes":1000,"free_bytes":400}]})");
  auto hosts = client().storageHosts();
  ASSERT_TRUE(hosts.ok()) << hosts.error().message();
  EXPECT_EQ(last().target, "/v1/storage/hosts");
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0].backend, "vfs");
  EXPECT_EQ((*hosts)[0].freeBytes, 400u);

  answer(200, R"({"url":"http://127.0.0.1:6022","grant":"tok","path":"in","expires_at":"2026-12-07T22:15:00Z"})");
  auto grant = client().vfolderGrant("data", TransferOperation::Upload, "in/");
  ASSERT_TRUE(grant.ok()) << grant.error().message();
  EXPECT_EQ(last().target, "/v1/vfolders/data/grants");
  EXPECT_EQ(Json::parse(last().body), Json::parse(R"({"operation":"upload","path":"in/"})"));
  EXPECT_EQ(grant->url, "http://127.0.0.1:6022");
  EXPECT_EQ(grant->token, "tok");
  EXPECT_EQ(grant->path, "in");
}

TEST_F(VfolderClientTest, RefusalsCarryTheirTypeAndDetail) {
  answer(403, R"({"type":"vfolder-read-only","title":"Read-only folder","detail":"data is shared with you read-only"})");
  auto grant = client().vfolderGrant("data", TransferOperation::Upload, "");
  ASSERT_FALSE(grant.ok());
  EXPECT_EQ(grant.error().status, 403);
  EXPECT_EQ(grant.error().type, "vfolder-read-only");
  EXPECT_EQ(grant.error().detail, "data is shared with you read-only");

  answer(409, R"({"type":"vfolder-in-use","title":"Folder in use","detail":"session s1 mounts it"})");
  auto deleted = client().deleteVfolder("data");
  ASSERT_FALSE(deleted.ok());
  EXPECT_EQ(deleted.error().type, "vfolder-in-use");
  EXPECT_EQ(deleted.error().message(), "Folder in use: session s1 mounts it");
}

TEST_F(VfolderClientTest, SessionMountsAreSentAndRead) {
  answer(201, R"({"id":"s1","status":"PENDING","mounts":[{"folder":"data","id":"f1","target":"/home/work/in","read_only":true}]})");
  SessionSpec spec;
  spec.command = {"true"};
  spec.mounts = {{"data", "/home/work/in", true}, {"out", "", false}};
  auto session = client().createSession(spec);
  ASSERT_TRUE(session.ok()) << session.error().message();
  EXPECT_EQ(Json::parse(last().body)["mounts"],
            Json::parse(R"([{"folder":"data","target":"/home/work/in","read_only":true},{"folder":"out","read_only":false}])"));
  ASSERT_EQ(session->mounts.size(), 1u);
  EXPECT_EQ(session->mounts[0].folder, "data");
  EXPECT_EQ(session->mounts[0].id, "f1");
  EXPECT_EQ(session->mounts[0].target, "/home/work/in");
  EXPECT_TRUE(session->mounts[0].readOnly);
}

TEST_F(VfolderClientTest, PoliciesReadTheirFolderLimits) {
  answer(200, R"({"name":"small","max_vfolder_count":3,"max_vfolder_size":1073741824})");
  auto policy = client().resourcePolicy("small");
  ASSERT_TRUE(policy.ok()) << policy.error().message();
  EXPECT_EQ(policy->maxVfolderCount, 3u);
  EXPECT_EQ(policy->maxVfolderSize, 1073741824u);
}

}  // namespace
}  // namespace bai::client
