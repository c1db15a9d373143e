// The real bai-storage-proxy on ephemeral loopback ports: its manager API end to end, and
// its refusals at start.
#include "child_process.hpp"
#include "http_client.hpp"
#include "secret_file.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <sys/xattr.h>

#include <fstream>
#include <sstream>

namespace bai::storage {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ChildProcess;
using testing::HttpClient;

const std::string kToken = "storage-token-for-tests-0123456789";
const std::string kId = "00112233445566778899aabbccddeeff";

std::string errorType(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  return parsed.is_object() ? parsed.value("type", "") : "";
}

class ProxyDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the proxy chowns folders to their owners: run as root";
    volume_ = dir_.path() / "volume";
    fs::create_directory(volume_);
    tokenFile_ = dir_.path() / "token";
    ASSERT_TRUE(writeSecretFile(tokenFile_, kToken + "\n").ok());
    std::ofstream(dir_.path() / "proxy.toml") << "[api]\nmanager-listen = \"127.0.0.1:0\"\nclient-listen = \"127.0.0.1:0\"\n"
                                              << "token-file = \"" << tokenFile_.string() << "\"\nthreads = 2\n"
                                              << "[volumes.default]\nbackend = \"vfs\"\npath = \"" << volume_.string() << "\"\n";
  }

  // Starts the proxy; its manager API's base URL, or "" when it did not come up.
  std::string start() {
    const auto ready = dir_.path() / "ready";
    fs::remove(ready);
    const auto log = dir_.path() / "proxy.log";
    EXPECT_TRUE(proxy_.spawn({std::getenv("BAI_STORAGE_PROXY"), "--config", (dir_.path() / "proxy.toml").string(), "--ready-file",
                              ready.string()},
                             log, log, "storage-proxy-test"));
    if (!testing::eventually([&] { return fs::exists(ready) || !proxy_.alive(); }) || !fs::exists(ready)) return "";
    std::ifstream in(ready);
    std::string managerAddress;
    std::getline(in, managerAddress);
    return "http://" + managerAddress;
  }

  std::string logText() {
    std::ifstream in(dir_.path() / "proxy.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  test::TempDir dir_;
  fs::path volume_, tokenFile_;
  ChildProcess proxy_;
};

TEST_F(ProxyDaemonTest, ManagerApiEndToEnd) {
  const std::string base = start();
  ASSERT_FALSE(base.empty()) << logText();

  HttpClient anonymous(base);
  auto unauthorized = anonymous.get("/v1/volumes");
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_EQ(errorType(unauthorized.body), "unauthorized");
  HttpClient wrong(base, "not-the-token");
  EXPECT_EQ(wrong.get("/v1/volumes").status, 401);

  HttpClient manager(base, kToken);
  auto volumes = manager.get("/v1/volumes");
  ASSERT_EQ(volumes.status, 200) << volumes.body;
  const json volumeList = json::parse(volumes.body);
  ASSERT_EQ(volumeList["volumes"].size(), 1u);
  EXPECT_EQ(volumeList["volumes"][0]["name"], "default");
  EXPECT_EQ(volumeList["volumes"][0]["path"], volume_.string());

  const std::string create = json{{"volume", "default"}, {"folder_id", kId}, {"uid", 4242}, {"gid", 4242}, {"quota_bytes", nullptr}}.dump();
  auto created = manager.post("/v1/folders", create);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(json::parse(created.body)["host_path"], (volume_ / "vfolders" / kId).string());
  EXPECT_EQ(manager.post("/v1/folders", create).status, 200);
  auto otherOwner = manager.post("/v1/folders", json{{"volume", "default"}, {"folder_id", kId}, {"uid", 4243}, {"gid", 4243}}.dump());
  EXPECT_EQ(otherOwner.status, 409);
  EXPECT_EQ(errorType(otherOwner.body), "folder-exists");
  auto noVolume = manager.post("/v1/folders", json{{"volume", "nope"}, {"folder_id", kId}, {"uid", 4242}, {"gid", 4242}}.dump());
  EXPECT_EQ(noVolume.status, 404);
  EXPECT_EQ(errorType(noVolume.body), "no-such-volume");
  auto malformed = manager.post("/v1/folders", "{\"volume\":");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(errorType(malformed.body), "invalid-request");

  std::ofstream(volume_ / "vfolders" / kId / "f") << std::string(321, 'x');
  const std::string folder = "/v1/folders/default/" + kId;
  auto info = manager.get(folder);
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(json::parse(info.body)["used_bytes"], 321);
  EXPECT_EQ(json::parse(info.body)["file_count"], 1);

  auto quota = manager.request("PUT", folder + "/quota", "{\"quota_bytes\": 12345}");
  ASSERT_EQ(quota.status, 200) << quota.body;
  EXPECT_EQ(json::parse(quota.body)["quota_bytes"], 12345);

  auto shared = manager.request("PUT", folder + "/access/5151", "{\"permission\": \"ro\"}");
  EXPECT_EQ(shared.status, 204) << shared.body;
  EXPECT_GT(::getxattr((volume_ / "vfolders" / kId / "f").c_str(), "system.posix_acl_access", nullptr, 0), 0);
  EXPECT_EQ(manager.request("PUT", folder + "/access/0", "{\"permission\": \"ro\"}").status, 400);
  EXPECT_EQ(manager.request("PUT", folder + "/access/5151", "{\"permission\": \"all\"}").status, 400);
  EXPECT_EQ(manager.request("DELETE", folder + "/access/5151").status, 204);
  EXPECT_LT(::getxattr((volume_ / "vfolders" / kId / "f").c_str(), "system.posix_acl_access", nullptr, 0), 0);

  auto noFolderFiles = manager.get("/v1/folders/default/ffffffffffffffffffffffffffffffff/files?path=");
  EXPECT_EQ(noFolderFiles.status, 404);
  EXPECT_EQ(errorType(noFolderFiles.body), "no-such-folder");

  EXPECT_EQ(manager.del(folder).status, 204);
  EXPECT_FALSE(fs::exists(volume_ / "vfolders" / kId));
  auto gone = manager.get(folder);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(errorType(gone.body), "no-such-folder");

  EXPECT_EQ(logText().find(kToken), std::string::npos);  // the token is never logged
  EXPECT_EQ(proxy_.stop(SIGTERM), 0);
}

TEST_F(ProxyDaemonTest, RefusesATokenFileOthersCanRead) {
  ::chmod(tokenFile_.c_str(), 0644);
  EXPECT_TRUE(start().empty());
  EXPECT_EQ(proxy_.wait(), 2);
  EXPECT_NE(logText().find("api.token-file"), std::string::npos) << logText();
  EXPECT_EQ(logText().find(kToken), std::string::npos);
}

TEST_F(ProxyDaemonTest, RefusesAVolumeWritableByOthers) {
  ::chmod(volume_.c_str(), 0777);
  EXPECT_TRUE(start().empty());
  EXPECT_EQ(proxy_.wait(), 2);
  EXPECT_NE(logText().find("writable by others"), std::string::npos) << logText();
}

}  // namespace
}  // namespace bai::storage
