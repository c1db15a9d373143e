// Attacks on the real bai-manager that once worked: a request replayed across a restart,
// a second manager on the same database, undecodable paths, scraping /metrics with the
// agents' token, and a database it may not write. Agents are not needed.
#include "child_process.hpp"
#include "daemon_process.hpp"
#include "signed_client.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <bai/request_signing.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace bai::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr uid_t kNobody = 65534;

// A daemon or `bai-manager init`, its output in one log file; killed when dropped.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill(SIGKILL); }

  bool spawn(const std::vector<std::string>& args, const fs::path& log) {
    pid_ = spawnLogged(args, log, log);
    return pid_ > 0;
  }
  // As `uid` (root only): a daemon that may not write what root may.
  bool spawnAs(uid_t uid, const std::vector<std::string>& args, const fs::path& log) {
    pid_ = ::fork();
    if (pid_ != 0) return pid_ > 0;
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(126);
    if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(126);
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // The exit code (-signal when killed), or -1000 while it still runs after `limit`.
  int waitExit(std::chrono::milliseconds limit = 10s) {
    if (pid_ <= 0) return status_;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        return status_;
      }
      std::this_thread::sleep_for(20ms);
    }
    return -1000;
  }
  void kill(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    waitExit(10s);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
  int status_ = -1;
};

class ManagerSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("BAI_MANAGER").empty()) GTEST_SKIP() << "BAI_MANAGER is not set";
    temp_ = std::make_unique<test::TempDir>();
    dir_ = temp_->path();
    ::chmod(dir_.c_str(), 0755);  // so that a manager run as nobody may look inside
    token_ = "cluster-token-" + std::to_string(::getpid()) + "-7d1e4c90a2b3f568";
    writeSecret(dir_ / "cluster-token", token_);
  }

  std::string dbUrl() const { return "sqlite://" + (dir_ / "manager.db").string(); }

  bool init() {
    Child init;
    if (!init.spawn({env("BAI_MANAGER"), "init", "--db", dbUrl(), "--admin-keypair-out", (dir_ / "admin.keypair").string()},
                    dir_ / "init.log")) {
      return false;
    }
    return init.waitExit() == 0;
  }

  std::vector<std::string> managerArgs(const std::string& listen, const std::string& readyName) const {
    return {env("BAI_MANAGER"), "--config", (dir_ / "manager.toml").string(), "--listen", listen, "--db", dbUrl(),
            "--cluster-token-file", (dir_ / "cluster-token").string(), "--ready-file", (dir_ / readyName).string()};
  }

  // Starts `manager` with `toml` (after init, done here once); its signed admin client.
  std::unique_ptr<SignedClient> start(Child& manager, const std::string& toml = "", const std::string& listen = "127.0.0.1:0") {
    if (!fs::exists(dir_ / "admin.keypair") && !init()) {
      ADD_FAILURE() << "init failed: " << readFile(dir_ / "init.log");
      return nullptr;
    }
    std::ofstream(dir_ / "manager.toml") << toml;
    fs::remove(dir_ / "manager.ready");
    if (!manager.spawn(managerArgs(listen, "manager.ready"), dir_ / "manager.log") ||
        !eventually([&] { return fs::exists(dir_ / "manager.ready"); }, 10s)) {
      ADD_FAILURE() << "the manager did not come up:\n" << readFile(dir_ / "manager.log");
      return nullptr;
    }
    std::string address = readFile(dir_ / "manager.ready");
    address.erase(address.find_last_not_of('\n') + 1);
    auto client = std::make_unique<SignedClient>("http://" + address, *readKeypairFile(dir_ / "admin.keypair"));
    client->setTimeout(10s);
    return client;
  }

  void TearDown() override {
    if (HasFailure() && temp_) std::cerr << "---- manager log\n" << readFile(dir_ / "manager.log") << "\n";
  }

  std::unique_ptr<test::TempDir> temp_;
  fs::path dir_;
  std::string token_;
};


// Killed, not stopped: the nonce must be kept before the answer goes out.
TEST_F(ManagerSecurityTest, ARequestAcceptedBeforeARestartIsRefusedAfterIt) {
  Child manager;
  auto admin = start(manager);
  ASSERT_TRUE(admin);
  const std::string body = json{{"admin", false}}.dump();
  const auth::SigningKey key{admin->keypair().accessKey, admin->keypair().secretKey};
  const auto headers = auth::signRequest(key, "POST", "/v1/keypairs", body, std::chrono::system_clock::now());
  auto created = admin->send("POST", "/v1/keypairs", body, headers);
  ASSERT_EQ(created.status, 201) << created.body;
  manager.kill(SIGKILL);

  Child restarted;
  auto again = start(restarted);
  ASSERT_TRUE(again);
  auto replay = again->send("POST", "/v1/keypairs", body, headers);
  EXPECT_EQ(replay.status, 401) << replay.body;
  EXPECT_EQ(replay.errorType(), "replayed-nonce") << replay.body;
  auto keypairs = again->get("/v1/keypairs");
  EXPECT_EQ(keypairs.json.size(), 2u) << "the admin's and the one user's: " << keypairs.body;
}

TEST_F(ManagerSecurityTest, ASecondManagerOnTheSameDatabaseIsRefused) {
  Child first;
  auto admin = start(first);
  ASSERT_TRUE(admin);
  Child second;
  ASSERT_TRUE(second.spawn(managerArgs("127.0.0.1:0", "second.ready"), dir_ / "second.log"));
  EXPECT_EQ(second.waitExit(10s), 2) << "a second manager is serving the same database";
  const std::string said = readFile(dir_ / "second.log");
  EXPECT_NE(said.find("is in use by another bai-manager (pid " + std::to_string(first.pid()) + ","), std::string::npos)
      << said;
  EXPECT_FALSE(fs::exists(dir_ / "second.ready"));
  EXPECT_EQ(admin->get("/v1/sessions").status, 200) << "the first one serves on";

  first.kill(SIGKILL);
  Child third;
  EXPECT_TRUE(start(third)) << "the lock of a killed manager is released";
}

TEST_F(ManagerSecurityTest, PathsAndQueriesThatAreNotUtf8AreBadRequests) {
  Child manager;
  auto admin = start(manager);
  ASSERT_TRUE(admin);
  for (const char* target : {"/v1/sessions/%ff", "/v1/sessions?status=%ff", "/v1/scaling-groups/%c3%28",
                             "/v1/sessions/%ff/logs"}) {
    auto reply = admin->get(target);
    EXPECT_EQ(reply.status, 400) << target << ": " << reply.body;
    EXPECT_EQ(reply.errorType(), "invalid-request") << reply.body;
  }
  EXPECT_EQ(admin->del("/v1/sessions/%ff").status, 400);
  Tampering notAscii;
  notAscii.headers["Authorization"] = "BAI-HMAC-SHA256 Credential=AK\xff, Signature=" + std::string(64, '0');
  auto refused = admin->request("GET", "/v1/sessions", "", notAscii);
  EXPECT_EQ(refused.status, 401) << refused.body;
  EXPECT_EQ(refused.errorType(), "malformed-authorization") << refused.body;
  EXPECT_EQ(admin->get("/v1/sessions").status, 200) << "the manager serves on";
}

TEST_F(ManagerSecurityTest, MetricsAreScrapedWithTheirOwnTokenNeverTheClusterToken) {
  const std::string metricsToken = "metrics-token-" + std::to_string(::getpid()) + "-c2a17e";
  writeSecret(dir_ / "metrics-token", metricsToken);
  Child manager;
  auto admin = start(manager, "[metrics]\ntoken-file = \"" + (dir_ / "metrics-token").string() + "\"\n");
  ASSERT_TRUE(admin);
  auto bearer = [&](const std::string& token, const std::string& method, const std::string& target) {
    return admin->send(method, target, method == "POST" ? "{}" : "", {{"Authorization", "Bearer " + token}});
  };
  auto scraped = bearer(metricsToken, "GET", "/metrics");
  EXPECT_EQ(scraped.status, 200) << scraped.body;
  EXPECT_NE(scraped.body.find("bai_manager_http_descriptors_exhausted_total 0\n"), std::string::npos) << scraped.body;
  auto withClusterToken = bearer(token_, "GET", "/metrics");
  EXPECT_EQ(withClusterToken.status, 401) << withClusterToken.body;
  EXPECT_EQ(withClusterToken.errorType(), "bad-metrics-token") << withClusterToken.body;
  // The scraper's token opens nothing else.
  EXPECT_EQ(bearer(metricsToken, "POST", "/v1/agents/agent-1/heartbeat").errorType(), "bad-cluster-token");
  EXPECT_EQ(bearer(metricsToken, "GET", "/v1/sessions").status, 401);
  EXPECT_EQ(admin->get("/metrics").status, 200) << "an admin's signed request still reads them";
  manager.kill(SIGTERM);

  // The cluster token is refused as a metrics token, so that no one reuses it there.
  writeSecret(dir_ / "metrics-token", token_);
  Child refused;
  ASSERT_TRUE(refused.spawn(managerArgs("127.0.0.1:0", "refused.ready"), dir_ / "refused.log"));
  EXPECT_EQ(refused.waitExit(10s), 2);
  EXPECT_NE(readFile(dir_ / "refused.log").find("metrics.token-file: holds the cluster token"), std::string::npos)
      << readFile(dir_ / "refused.log");
}

// Root may write anything: the manager then runs as nobody, which may not.
TEST_F(ManagerSecurityTest, ADatabaseItMayNotWriteIsNamedAtStart) {
  ASSERT_TRUE(init()) << readFile(dir_ / "init.log");
  std::ofstream(dir_ / "manager.toml") << "";
  const bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::chown((dir_ / "cluster-token").c_str(), kNobody, kNobody), 0);
  }
  auto startAndFail = [&](const std::string& logName) {
    Child manager;
    const auto args = managerArgs("127.0.0.1:0", "manager.ready");
    EXPECT_TRUE(root ? manager.spawnAs(kNobody, args, dir_ / logName) : manager.spawn(args, dir_ / logName));
    EXPECT_EQ(manager.waitExit(10s), 2);
    return readFile(dir_ / logName);
  };
  if (!root) ::chmod(dir_.c_str(), 0555);
  const std::string folder = startAndFail("folder.log");
  EXPECT_NE(folder.find("the folder '" + dir_.string() + "' is not writable"), std::string::npos) << folder;

  ::chmod(dir_.c_str(), 0777);
  ::chmod((dir_ / "manager.db").c_str(), 0444);
  const std::string file = startAndFail("file.log");
  EXPECT_NE(file.find("the database file '" + (dir_ / "manager.db").string() + "' is not writable"), std::string::npos)
      << file;
  ::chmod(dir_.c_str(), 0755);
}

}  // namespace
}  // namespace bai::testing
