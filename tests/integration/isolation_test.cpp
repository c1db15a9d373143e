// Session isolation end to end: the real bai-agent (cpu and mock plugins, real cgroups)
// and the real bai-session-shim, two tenants. Every check is a command inside a session
// whose failure is asserted from its output; the host side checks uids and cgroups.
#include "daemon_process.hpp"
#include "http_client.hpp"
#include "wait.hpp"

#include <bai/protocol.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <regex>

namespace bai::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using protocol::SessionOwner;

const SessionOwner kTenantA{200001, 200001, "tenant-a"};
const SessionOwner kTenantB{200002, 200002, "tenant-b"};
constexpr const char* kCgroupRoot = "/sys/fs/cgroup";

struct NodeNumbers {
  unsigned major, minor;
};

// Whether `uid` may open a node with these numbers outside any fence (O_WRONLY: kmsg
// lets anyone open it so, and only then is an EPERM in a session the fence's doing).
bool openableAs(uid_t uid, const fs::path& node) {
  pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(2);
    int fd = ::open(node.c_str(), O_WRONLY | O_CLOEXEC);
    ::_exit(fd >= 0 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "sandboxes, uids and cgroups need root";
    for (const char* name : {"BAI_AGENT", "BAI_SESSION_SHIM", "BAI_CPU_PLUGIN_DIR", "BAI_MOCK_PLUGIN_DIR"}) {
      if (env(name).empty()) GTEST_SKIP() << name << " is not set";
    }
    if (!fs::exists(fs::path(kCgroupRoot) / "devices/devices.allow") &&
        !fs::exists(fs::path(kCgroupRoot) / "cgroup.controllers")) {
      GTEST_SKIP() << "no cgroup device controller to fence with";
    }
    const std::string tag = std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::temp_directory_path() / ("bai-iso-" + tag);
    // Device nodes must lie in the host's view of a session (not its private /tmp).
    nodes_ = fs::path("/var/tmp") / ("bai-iso-nodes-" + tag);
    cgroupParent_ = "bai-iso-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "secret");
    fs::create_directories(nodes_);
    std::ofstream(dir_ / "token") << token_ << "\n";
    ::chmod((dir_ / "token").c_str(), 0600);
    std::ofstream(dir_ / "secret/admin.keypair") << "admin-secret-key\n";
  }

  void TearDown() override {
    stopAgent();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    fs::remove_all(nodes_, ignored);
    for (const char* hierarchy : {"", "memory", "cpuset", "pids", "devices"}) {
      fs::path parent = fs::path(kCgroupRoot) / hierarchy / cgroupParent_;
      if (fs::exists(parent)) ::rmdir(parent.c_str());
    }
  }

  // Three mock GPUs whose nodes carry the numbers of real devices; false (skipped) when
  // this machine has too few that a tenant can open.
  bool makeNodes() {
    const std::vector<NodeNumbers> candidates{{1, 11} /* kmsg */, {10, 200} /* tun */, {10, 229} /* fuse */};
    for (const NodeNumbers& numbers : candidates) {
      const fs::path node = nodes_ / ("gpu" + std::to_string(nodeNumbers_.size()));
      if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(numbers.major, numbers.minor)) != 0) continue;
      ::chmod(node.c_str(), 0666);
      if (openableAs(kTenantA.uid, node)) {
        nodeNumbers_.push_back(numbers);
      } else {
        fs::remove(node);
      }
    }
    return nodeNumbers_.size() == 3;
  }

  fs::path node(int index) const { return nodes_ / ("gpu" + std::to_string(index)); }

  // The mock's config: three GPUs with `device_node`s, and `extra` (e.g. session_extra).
  void writeMockConfig(const std::string& extra = "") {
    std::ofstream mock(dir_ / "mock.toml");
    mock << "key = \"cuda\"\nmode = \"discrete\"\n" << extra << "\n";
    for (int i = 0; i < 3; ++i) {
      mock << "[[devices]]\nuuid = \"GPU-iso-" << i << "\"\nmodel = \"mock\"\nsm_count = 8\nmemory = \"8g\"\n";
      if (fs::exists(node(i))) mock << "device_node = \"" << node(i).string() << "\"\n";
    }
  }

  bool startAgent(const std::string& runtimeExtra = "") {
    if (!fs::exists(dir_ / "mock.toml")) writeMockConfig();
    std::ofstream(dir_ / "agent.toml")
        << "[agent]\nid = \"iso-agent\"\nrpc-listen-addr = \"127.0.0.1:0\"\nmanager-url = \"http://127.0.0.1:9\"\n"
        << "cluster-token-file = \"" << (dir_ / "token").string() << "\"\n"
        << "state-dir = \"" << (dir_ / "state").string() << "\"\n"
        << "plugin-path = [\"" << env("BAI_CPU_PLUGIN_DIR") << "\", \"" << env("BAI_MOCK_PLUGIN_DIR") << "\"]\n"
        << "heartbeat-interval = 60\n"
        << "[runtime]\nshim-path = \"" << env("BAI_SESSION_SHIM") << "\"\ndestroy-grace = 1\n"
        << "cgroup-root = \"" << kCgroupRoot << "\"\ncgroup-parent = \"" << cgroupParent_ << "\"\n"
        << "hidden-paths = [\"" << (dir_ / "secret").string() << "\"]\n"
        << runtimeExtra << "[plugins.mock]\nconfig_file = \"" << (dir_ / "mock.toml").string() << "\"\n";
    fs::remove(dir_ / "ready");
    agent_ = spawnLogged({env("BAI_AGENT"), "--config", (dir_ / "agent.toml").string(), "--ready-file",
                          (dir_ / "ready").string()},
                         dir_ / "agent.log", dir_ / "agent.log");
    if (!eventually([&] { return fs::exists(dir_ / "ready") || ::waitpid(agent_, nullptr, WNOHANG) == agent_; })) {
      return false;
    }
    if (!fs::exists(dir_ / "ready")) return false;
    std::string address = readFile(dir_ / "ready");
    address.erase(address.find_last_not_of("\n") + 1);
    client_ = std::make_unique<HttpClient>("http://" + address, token_);
    return true;
  }

  void stopAgent() {
    if (client_) {
      const json listed = json::parse(client_->get("/v1/sessions").body, nullptr, false);
      if (listed.is_object()) {
        for (const auto& info : listed["sessions"]) {
          if (info["state"] == "running") client_->del("/v1/sessions/" + info["id"].get<std::string>());
        }
        for (const auto& info : listed["sessions"]) waitForEnd(info["id"]);
      }
    }
    if (agent_ > 0) {
      ::kill(agent_, SIGTERM);
      ::waitpid(agent_, nullptr, 0);
      agent_ = 0;
    }
    client_.reset();
  }

  HttpReply create(const std::string& id, std::vector<std::string> command, ResourceSlot slots,
                   std::optional<SessionOwner> owner, std::map<std::string, std::string> env = {}) {
    protocol::CreateSessionRequest request{id, std::move(command), std::move(env), std::move(slots), std::move(owner)};
    return client_->post("/v1/sessions", request.toJson());
  }

  protocol::SessionInfo waitForEnd(const std::string& id) {
    protocol::SessionInfo info;
    eventually([&] {
      auto parsed = protocol::SessionInfo::fromJson(client_->get("/v1/sessions/" + id).body);
      if (!parsed) return false;
      info = *parsed;
      return info.state != protocol::SessionState::Running && info.state != protocol::SessionState::Preparing;
    }, std::chrono::seconds(20));
    return info;
  }

  // Runs a script as `owner` and returns its stdout once it ended with exit 0.
  std::string run(const std::string& id, const std::string& script, const SessionOwner& owner,
                  ResourceSlot slots = {{SlotName::of("cpu"), 1}}) {
    auto reply = create(id, {"sh", "-c", script}, std::move(slots), owner);
    EXPECT_EQ(reply.status, 201) << reply.body;
    protocol::SessionInfo ended = waitForEnd(id);
    EXPECT_EQ(ended.exitCode, 0) << ended.reason << "\n" << log(id, "stderr");
    return log(id, "stdout");
  }

  std::string log(const std::string& id, const std::string& stream) {
    return client_->get("/v1/sessions/" + id + "/logs?stream=" + stream).body;
  }

  fs::path sessionDir(const std::string& id) const { return dir_ / "state/sessions" / id; }
  fs::path devicesCgroup(const std::string& id) const {
    return fs::path(kCgroupRoot) / "devices" / cgroupParent_ / ("bai-" + id);  // cgroup_common.cpp
  }

  fs::path dir_, nodes_;
  std::string cgroupParent_;
  std::string token_ = "iso-token-0123456789abcdef";
  pid_t agent_ = 0;
  std::unique_ptr<HttpClient> client_;
  std::vector<NodeNumbers> nodeNumbers_;
};

// What a hostile tenant tried: another tenant's environment, files, work dir and
// processes, and the agent's state, config, token and the admin's keypair file.
TEST_F(IsolationTest, ATenantReachesNothingOfAnotherTenantNorOfTheAgent) {
  ASSERT_TRUE(startAgent()) << readFile(dir_ / "agent.log");
  ASSERT_EQ(create("b", {"sh", "-c", "echo b-private > $HOME/notes; exec sleep 60"}, {{SlotName::of("cpu"), 1}},
                   kTenantB, {{"API_TOKEN", "tenant-b-token"}})
                .status,
            201);
  ASSERT_TRUE(eventually([&] { return fs::exists(sessionDir("b") / "work/notes"); }));
  const std::string commandIds = readFile(sessionDir("b") / "command.pid");
  const pid_t groupB = std::stoi(commandIds.substr(commandIds.find(' ') + 1));
  // B's command (its init's child) runs as B's uid on the host.
  const std::string children = readFile("/proc/" + std::to_string(groupB) + "/task/" + std::to_string(groupB) + "/children");
  ASSERT_FALSE(children.empty());
  const std::string statusB = readFile("/proc/" + std::to_string(std::stoi(children)) + "/status");
  EXPECT_NE(statusB.find("Uid:\t200002\t200002\t200002\t200002"), std::string::npos) << statusB;

  const std::string b = sessionDir("b").string();
  const std::string script =
      "id -u; id -g; id -G; echo home=$HOME user=$USER cwd=$(pwd) whoami=$(whoami);"
      "kill -0 " + std::to_string(groupB) + " 2>/dev/null; echo kill=$?;"
      "kill -TERM -" + std::to_string(groupB) + " 2>/dev/null; echo killgroup=$?;"
      "cat /proc/" + std::to_string(groupB) + "/environ 2>/dev/null; echo environ=$?;"
      "echo maxpid=$(ls /proc | grep '^[0-9]' | sort -n | tail -1); cat /proc/1/cmdline | tr '\\0' ' '; echo;"
      "cat " + b + "/work/notes 2>/dev/null; echo notes=$?;"
      "ls " + b + "/work 2>/dev/null | wc -l | sed 's/^/workdir-entries=/';"
      "cat " + (dir_ / "token").string() + " 2>/dev/null | wc -c | sed 's/^/token-bytes=/';"
      "cat " + (dir_ / "agent.toml").string() + " 2>/dev/null | wc -c | sed 's/^/config-bytes=/';"
      "cat " + (dir_ / "secret/admin.keypair").string() + " 2>/dev/null; echo keypair=$?;"
      "ls " + (dir_ / "state").string() + " | wc -l | sed 's/^/state-entries=/';"
      "touch /usr/bai-iso-probe 2>/dev/null; echo host-write=$?;"
      "echo mine > $HOME/a && cat $HOME/a; echo tmp > /tmp/x && cat /tmp/x;"
      "grep -E '^(NoNewPrivs|CapEff|CapBnd)' /proc/self/status";
  const std::string out = run("a", script, kTenantA);
  EXPECT_EQ(out.rfind("200001\n200001\n200001\n", 0), 0u) << "its own uid and gid, no other group:\n" << out;
  EXPECT_NE(out.find("home=/home/work user=tenant-a cwd=/home/work whoami=tenant-a"), std::string::npos) << out;
  EXPECT_NE(out.find("kill=1"), std::string::npos) << "B's processes cannot be signalled:\n" << out;
  EXPECT_NE(out.find("killgroup=1"), std::string::npos) << out;
  EXPECT_NE(out.find("environ=1"), std::string::npos) << out;
  EXPECT_EQ(out.find("tenant-b-token"), std::string::npos) << "B's environment leaked:\n" << out;
  const std::smatch maxPid = [&] {
    std::smatch m;
    std::regex_search(out, m, std::regex("maxpid=([0-9]+)"));
    return m;
  }();
  ASSERT_FALSE(maxPid.empty()) << out;
  EXPECT_LT(std::stoi(maxPid[1]), 20) << "a PID namespace of its own: nothing of the node is listed\n" << out;
  EXPECT_NE(out.find("bai-session-shim"), std::string::npos) << "its pid 1 is the session's init:\n" << out;
  EXPECT_NE(out.find("notes=1"), std::string::npos) << out;
  EXPECT_EQ(out.find("b-private"), std::string::npos) << "B's work dir leaked:\n" << out;
  EXPECT_NE(out.find("workdir-entries=0"), std::string::npos) << out;
  EXPECT_NE(out.find("token-bytes=0"), std::string::npos) << "the cluster token leaked:\n" << out;
  EXPECT_NE(out.find("config-bytes=0"), std::string::npos) << out;
  EXPECT_NE(out.find("keypair=1"), std::string::npos) << out;
  EXPECT_EQ(out.find("admin-secret-key"), std::string::npos) << out;
  EXPECT_NE(out.find("state-entries=0"), std::string::npos) << "the agent's state dir is masked:\n" << out;
  EXPECT_NE(out.find("host-write=1"), std::string::npos) << out;
  EXPECT_NE(out.find("mine\ntmp\n"), std::string::npos) << "its home and /tmp are writable:\n" << out;
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
  EXPECT_NE(out.find("CapEff:\t0000000000000000"), std::string::npos) << out;
  EXPECT_NE(out.find("CapBnd:\t0000000000000000"), std::string::npos) << out;

  // B is untouched by all this, and its work dir goes when it ends.
  EXPECT_EQ(::kill(groupB, 0), 0) << "B still runs";
  ASSERT_EQ(client_->del("/v1/sessions/b").status, 202);
  waitForEnd("b");
  EXPECT_FALSE(fs::exists(sessionDir("b") / "work")) << "the work dir is removed at the end";
}

TEST_F(IsolationTest, ASessionOpensOnlyTheDevicesItWasGranted) {
  if (!makeNodes()) GTEST_SKIP() << "this machine lacks three device numbers an unprivileged user can open";
  writeMockConfig();
  ASSERT_TRUE(startAgent()) << readFile(dir_ / "agent.log");
  std::string tries;
  for (int i = 0; i < 3; ++i) {
    // The shell's own message ("cannot create PATH: Operation not permitted") names errno.
    tries += "if (: > " + node(i).string() + ") 2>/dev/null; then echo n" + std::to_string(i) + "=ok; else (: > " +
             node(i).string() + ") 2>&1 | sed 's/.*: /n" + std::to_string(i) + "=/'; fi;";
  }
  // Held open while the test reads the cgroup's device list.
  ASSERT_EQ(create("gpu", {"sh", "-c", tries + "exec sleep 30"}, {{SlotName::of("cuda.device"), 1}}, kTenantA).status,
            201);
  ASSERT_TRUE(eventually([&] { return !log("gpu", "stdout").empty() && log("gpu", "stdout").find("n2=") != std::string::npos; }))
      << log("gpu", "stderr");
  auto info = protocol::SessionInfo::fromJson(client_->get("/v1/sessions/gpu").body);
  ASSERT_TRUE(info.ok());
  const auto& granted = info->allocation.at("cuda.device");
  ASSERT_EQ(granted.size(), 1u);
  const int mine = std::stoi(granted.begin()->first);
  const std::string out = log("gpu", "stdout");
  for (int i = 0; i < 3; ++i) {
    const std::string expected = "n" + std::to_string(i) + (i == mine ? "=ok" : "=Operation not permitted");
    EXPECT_NE(out.find(expected), std::string::npos) << "granted device " << mine << ":\n" << out;
  }
  const std::string list = readFile(devicesCgroup("gpu") / "devices.list");
  for (int i = 0; i < 3; ++i) {
    const std::string rule =
        "c " + std::to_string(nodeNumbers_[i].major) + ":" + std::to_string(nodeNumbers_[i].minor) + " rw";
    EXPECT_EQ(list.find(rule) != std::string::npos, i == mine) << "rule " << rule << " in:\n" << list;
  }
  EXPECT_NE(list.find("c 1:3 rw"), std::string::npos) << "the base set: /dev/null\n" << list;
  EXPECT_EQ(list.find("a *:* rwm"), std::string::npos) << "not everything\n" << list;

  const std::string none = run("none", tries, kTenantA);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(none.find("n" + std::to_string(i) + "=Operation not permitted"), std::string::npos) << none;
  }
}

// Each bad payload fails the start naming the plugin and what was wrong, and leaves
// nothing behind: the devices free, no cgroup, no work dir.
TEST_F(IsolationTest, APayloadTheAgentCannotApplyFailsTheStartAndLeaksNothing) {
  struct Case {
    std::string extra;
    std::string reason;
  };
  const std::vector<Case> cases{
      {"session_extra = { limits = { swappiness = \"0\" } }", "unexpected member \"swappiness\""},
      {"session_extra = { mounts = [ { source = \"/nonexistent/bai-iso\", target = \"/data\" } ] }",
       "mount source /nonexistent/bai-iso: No such file or directory"},
      {"session_extra = { devices = [ \"/dev/bai-iso-missing-node\" ] }",
       "device /dev/bai-iso-missing-node: No such file or directory"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.extra);
    writeMockConfig(c.extra);
    ASSERT_TRUE(startAgent()) << readFile(dir_ / "agent.log");
    auto reply = create("bad", {"true"}, {{SlotName::of("cuda.device"), 1}, {SlotName::of("cpu"), 1}}, kTenantA);
    EXPECT_EQ(reply.status, 500) << reply.body;
    const std::string detail = json::parse(reply.body, nullptr, false).value("detail", "");
    EXPECT_EQ(detail.rfind("plugin mock: ", 0), 0u) << reply.body;
    EXPECT_NE(detail.find(c.reason), std::string::npos) << reply.body;
    const json map = json::parse(client_->get("/v1/alloc-map").body);
    for (const auto& m : map["maps"]) {
      for (const auto& d : m["devices"]) EXPECT_EQ(d["allocated"], "0") << m["slot"] << " stayed held";
    }
    EXPECT_FALSE(fs::exists(devicesCgroup("bad"))) << "its cgroup is left";
    EXPECT_FALSE(fs::exists(sessionDir("bad") / "work")) << "its work dir is left";
    // The next, good session gets the same devices.
    stopAgent();
    fs::remove_all(dir_ / "state");
  }
}

TEST_F(IsolationTest, OnlyIdentitiesInTheAgentsRangesAreRun) {
  ASSERT_TRUE(startAgent()) << readFile(dir_ / "agent.log");
  struct Case {
    std::optional<SessionOwner> owner;
    std::string reason;
  };
  const std::vector<Case> cases{{SessionOwner{0, 0, "root"}, "uid/gid 0 (root) is refused"},
                                {SessionOwner{1000, 200001, "x"}, "uid 1000 is outside"},
                                {SessionOwner{200001, 27, "x"}, "gid 27 is outside"},
                                {std::nullopt, "names no owner"}};
  int n = 0;
  for (const Case& c : cases) {
    auto reply = create("refused" + std::to_string(n++), {"true"}, {{SlotName::of("cpu"), 1}}, c.owner);
    EXPECT_EQ(reply.status, 403) << reply.body;
    EXPECT_NE(reply.body.find("identity-refused"), std::string::npos) << reply.body;
    EXPECT_NE(reply.body.find(c.reason), std::string::npos) << reply.body;
  }
  EXPECT_EQ(readFile(dir_ / "agent.log").find("allow-root-sessions is on"), std::string::npos);
}

TEST_F(IsolationTest, RootSessionsOnlyWithTheAgentOptionWhichWarns) {
  ASSERT_TRUE(startAgent("allow-root-sessions = true\n")) << readFile(dir_ / "agent.log");
  EXPECT_NE(readFile(dir_ / "agent.log").find("runtime.allow-root-sessions is on"), std::string::npos);
  const std::string out = run("root", "id -u; grep -E '^CapEff' /proc/self/status; touch /usr/x 2>/dev/null; echo w=$?",
                              SessionOwner{0, 0, "root"});
  EXPECT_EQ(out.rfind("0\n", 0), 0u) << out;
  EXPECT_NE(out.find("CapEff:\t0000000000000000"), std::string::npos) << "root without capabilities:\n" << out;
  EXPECT_NE(out.find("w=1"), std::string::npos) << "the host stays read-only:\n" << out;
}

// Storage folders in a real sandbox: the owner's folder read-write, another read-only by the
// kernel (EROFS, not a permission the tenant could change), and the volume's root with the
// other folders out of sight.
TEST_F(IsolationTest, FoldersAreBoundReadWriteOrReadOnlyAndTheVolumeStaysHidden) {
  const fs::path volume = nodes_ / "volume";  // in the host's view, like the device nodes
  for (const char* folder : {"rw", "ro", "other"}) {
    fs::create_directories(volume / "vfolders" / folder);
    ASSERT_EQ(::chown((volume / "vfolders" / folder).c_str(), kTenantA.uid, kTenantA.gid), 0);
    ::chmod((volume / "vfolders" / folder).c_str(), 0700);
  }
  std::ofstream(volume / "vfolders/ro/in.txt") << "dataset\n";
  ASSERT_EQ(::chown((volume / "vfolders/ro/in.txt").c_str(), kTenantA.uid, kTenantA.gid), 0);
  ASSERT_TRUE(startAgent("[storage]\nmount-roots = [\"" + volume.string() + "\"]\n")) << readFile(dir_ / "agent.log");

  protocol::CreateSessionRequest request{"folders", {"sh", "-c",
      "cat /home/work/in/in.txt && echo result > /home/work/out/result.txt && "
      "touch /home/work/in/x 2>/tmp/err; cat /tmp/err; ls -A " + volume.string() + " | wc -l"},
      {}, {{SlotName::of("cpu"), 1}}, kTenantA};
  request.mounts = {{std::string(32, 'a'), (volume / "vfolders/rw").string(), "/home/work/out", false},
                    {std::string(32, 'b'), (volume / "vfolders/ro").string(), "/home/work/in", true}};
  auto reply = client_->post("/v1/sessions", request.toJson());
  ASSERT_EQ(reply.status, 201) << reply.body;
  protocol::SessionInfo ended = waitForEnd("folders");
  EXPECT_EQ(ended.exitCode, 0) << ended.reason << "\n" << log("folders", "stderr");
  const std::string out = log("folders", "stdout");
  EXPECT_NE(out.find("dataset"), std::string::npos) << out;
  EXPECT_NE(out.find("Read-only file system"), std::string::npos) << "the kernel refuses the write:\n" << out;
  EXPECT_NE(out.find("\n0\n"), std::string::npos) << "the volume's root shows nothing:\n" << out;
  EXPECT_EQ(readFile(volume / "vfolders/rw/result.txt"), "result\n");
  EXPECT_FALSE(fs::exists(volume / "vfolders/ro/x"));
}

TEST_F(IsolationTest, AFolderOutsideTheMountRootsIsNeverBound) {
  ASSERT_TRUE(startAgent("[storage]\nmount-roots = [\"" + (nodes_ / "volume").string() + "\"]\n"))
      << readFile(dir_ / "agent.log");
  protocol::CreateSessionRequest request{"etc", {"cat", "/home/work/etc/shadow"}, {}, {{SlotName::of("cpu"), 1}}, kTenantA};
  request.mounts = {{std::string(32, 'c'), "/etc", "/home/work/etc", false}};
  auto reply = client_->post("/v1/sessions", request.toJson());
  EXPECT_NE(reply.body.find("not below any of this agent's [storage] mount-roots"), std::string::npos) << reply.body;
  EXPECT_EQ(log("etc", "stdout"), "");
}

}  // namespace
}  // namespace bai::testing
