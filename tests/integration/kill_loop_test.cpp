// Kill loops (the reliability suite of issue 17): the real bai-manager SIGKILLed at random
// points of a burst of submissions, and a real bai-agent SIGKILLed under running
// sessions, loop after loop. After every loop: no acknowledged session is lost, none ran
// twice, every slot's used amount is back to 0 in the manager's view and the agent's,
// and no session cgroup is left behind.
//
// BAI_KILL_LOOPS sets the loops of each test (10; scripts/soak.sh runs 100). The loops
// are random but reproducible: the seed is printed first, and BAI_KILL_SEED replays it.
// BAI_KILL_KEEP=DIR keeps the daemons' logs and state dirs of a failed run under DIR.
#include "child_process.hpp"
#include "daemon_process.hpp"
#include "http_client.hpp"
#include "signed_client.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr int kAgents = 2;
constexpr int kBurst = 6;  // sessions submitted per loop
constexpr const char* kCgroupRoot = "/sys/fs/cgroup";

bool isFinal(const std::string& status) { return status == "TERMINATED" || status == "CANCELLED" || status == "ERROR"; }

int loopsWanted() {
  const std::string text = env("BAI_KILL_LOOPS");
  if (text.empty()) return 10;
  try {
    return std::max(1, std::stoi(text));
  } catch (const std::exception&) {
    ADD_FAILURE() << "BAI_KILL_LOOPS='" << text << "' is not a number";
    return 1;
  }
}

std::uint64_t seedWanted() {
  const std::string text = env("BAI_KILL_SEED");
  if (text.empty()) return std::random_device{}();
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    ADD_FAILURE() << "BAI_KILL_SEED='" << text << "' is not a number";
    return 0;
  }
}

std::size_t lineCount(const fs::path& file) {
  const std::string text = readFile(file);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// The last `lines` lines of a log, enough to see what went wrong after many loops.
std::string tail(const std::string& text, std::size_t lines = 150) {
  std::size_t at = text.size();
  for (std::size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n) at = text.rfind('\n', at - 1);
  return at == std::string::npos ? text : text.substr(at + 1);
}

// What one loop did, for the checks that follow it.
struct Loop {
  int number = 0;
  std::vector<std::string> acknowledged;  // answered 201 with an id
  int unacknowledged = 0;                 // the answer was lost: may exist, must not run twice
  std::set<std::string> runningAtKill;    // RUNNING when their agent was killed: must finish
  bool errorsAllowed = false;             // an agent killed mid-start may fail a session (with a reason)
};

// Figures over all loops, printed at the end.
struct Totals {
  int loops = 0, acknowledged = 0, unanswered = 0, unansweredCreated = 0, runningAtKill = 0, failed = 0;
  std::map<std::string, int> failures;  // reason -> sessions

  // `runs`: where each session's runs are counted.
  void add(const Loop& loop, const std::map<std::string, json>& all, const fs::path& runs) {
    ++loops;
    acknowledged += static_cast<int>(loop.acknowledged.size());
    unanswered += loop.unacknowledged;
    runningAtKill += static_cast<int>(loop.runningAtKill.size());
    for (const auto& id : loop.acknowledged) {
      auto it = all.find(id);
      if (it == all.end() || it->second.value("status", "") != "ERROR") continue;
      ++failed;
      const std::string reason = it->second.value("status_reason", "");
      const bool ran = fs::exists(runs / id);
      ++failures[reason.substr(0, reason.find(" (")) + (ran ? " [its command ran]" : " [its command never ran]")];
    }
  }

  std::string describe() const {
    std::string out = std::to_string(loops) + " loops, " + std::to_string(acknowledged) + " sessions acknowledged, " +
                      std::to_string(unanswered) + " unanswered (" + std::to_string(unansweredCreated) +
                      " created all the same), " +
                      (runningAtKill != 0 ? std::to_string(runningAtKill) + " running at a kill, " : "") +
                      std::to_string(failed) + " ended in ERROR";
    for (const auto& [reason, count] : failures) out += "\n  " + std::to_string(count) + " x " + reason;
    return out;
  }
};

struct AgentHandle {
  std::string id;
  fs::path dir;
  std::string rpcBase;  // from its ready file
  ChildProcess process;
};

class KillLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string missing = missingClusterVariable(); !missing.empty()) {
      GTEST_SKIP() << missing << " is not set (built without the manager, the agent or a plugin)";
    }
    temp_ = std::make_unique<test::TempDir>();
    dir_ = temp_->path();
    marker_ = dir_.string();
    token_ = "cluster-token-" + std::to_string(::getpid()) + "-8d1e4b7c02a9f356";
    writeSecret(dir_ / "cluster-token", token_);
    fs::create_directories(dir_ / "runs");
    cgroupParent_ = "bai-kill-loop-" + std::to_string(::getpid()) + "-" + dir_.filename().string();
    loops_ = loopsWanted();
    seed_ = seedWanted();
    rng_.seed(seed_);
    std::cout << "kill loops: seed " << seed_ << " (BAI_KILL_SEED=" << seed_ << " replays it), " << loops_
              << " loops (BAI_KILL_LOOPS)\n";
    listen_ = "127.0.0.1:" + std::to_string(freeLoopbackPort());
    ASSERT_TRUE(startManager());
    for (int i = 0; i < kAgents; ++i) ASSERT_TRUE(startAgent("agent-" + std::to_string(i)));
    for (auto& agent : agents_) ASSERT_TRUE(waitAgentAlive(agent->id)) << readFile(agent->dir / "agent.log");
    reportLimits();
  }

  void TearDown() override {
    if (!temp_) return;  // skipped
    killMarkedProcesses(marker_, [&] {
      for (auto& agent : agents_) agent->process.alive();
      manager_.alive();
    });
    for (auto& agent : agents_) agent->process.stop(SIGKILL);
    manager_.stop(SIGKILL);
    if (HasFailure()) {
      std::cerr << "kill loops failed with seed " << seed_ << ": BAI_KILL_SEED=" << seed_ << " replays it\n";
      std::cerr << "---- manager log (tail)\n" << tail(readFile(dir_ / "manager.log")) << "\n";
      for (auto& agent : agents_) {
        std::cerr << "---- agent " << agent->id << " log (tail)\n" << tail(readFile(agent->dir / "agent.log")) << "\n";
      }
    }
    removeCgroupParents();
    agents_.clear();
    if (HasFailure() && !env("BAI_KILL_KEEP").empty()) {
      const fs::path kept = fs::path(env("BAI_KILL_KEEP")) / dir_.filename();
      fs::create_directories(kept.parent_path());
      fs::copy(dir_, kept, fs::copy_options::recursive);
      std::cerr << "the logs and state dirs are kept in " << kept.string() << "\n";
    }
    temp_.reset();
  }

  std::string dbUrl() const { return "sqlite://" + (dir_ / "manager.db").string(); }

  // Starts the manager on its one address and database (initialized here the first time)
  // and waits until it serves.
  bool startManager() {
    if (!fs::exists(dir_ / "admin.keypair")) {
      ChildProcess init;
      if (!init.spawn({env("BAI_MANAGER"), "init", "--db", dbUrl(), "--admin-keypair-out", (dir_ / "admin.keypair").string()},
                      dir_ / "init.log", dir_ / "init.log", marker_) ||
          init.wait() != 0) {
        ADD_FAILURE() << "init failed: " << readFile(dir_ / "init.log");
        return false;
      }
      std::ofstream(dir_ / "manager.toml") << "[agents]\nheartbeat-timeout = 10\nrpc-timeout = 5\n"
                                           << "[scheduler]\nperiod = 0.2\n";
    }
    auto keypair = readKeypairFile(dir_ / "admin.keypair");
    if (!keypair) {
      ADD_FAILURE() << "no keypair in " << readFile(dir_ / "admin.keypair");
      return false;
    }
    fs::remove(dir_ / "manager.ready");
    if (!manager_.spawn({env("BAI_MANAGER"), "--config", (dir_ / "manager.toml").string(), "--listen", listen_, "--db",
                         dbUrl(), "--ready-file", (dir_ / "manager.ready").string(), "--cluster-token-file",
                         (dir_ / "cluster-token").string()},
                        dir_ / "manager.log", dir_ / "manager.log", marker_, dir_) ||
        !eventually([&] { return fs::exists(dir_ / "manager.ready") || !manager_.alive(); }) ||
        !fs::exists(dir_ / "manager.ready")) {
      ADD_FAILURE() << "the manager did not come up:\n" << tail(readFile(dir_ / "manager.log"));
      return false;
    }
    admin_ = std::make_unique<SignedClient>("http://" + listen_, *keypair);
    admin_->setTimeout(10s);  // a manager that stops answering fails the test, not the suite's timeout
    return true;
  }

  // The agent.toml of the other integration tests, with real cgroups under a parent of
  // this test's own where the machine lets us make them (advisory limits elsewhere).
  std::string agentConfig(const AgentHandle& agent) const {
    std::string toml = agentToml(agent.id, "http://" + listen_, dir_ / "cluster-token", agent.dir, 0.2, "mock-4xa100.toml");
    const std::string fake = "cgroup-root = \"" + (agent.dir / "no-cgroups").string() + "\"\n";
    const auto at = toml.find(fake);
    if (at != std::string::npos) {
      toml.replace(at, fake.size(),
                   std::string("cgroup-root = \"") + kCgroupRoot + "\"\ncgroup-parent = \"" + cgroupParent_ + "\"\n");
    }
    return toml + mockWritableMount(dir_ / "runs");  // where sessions count their runs
  }

  bool startAgent(const std::string& id) {
    auto agent = std::make_unique<AgentHandle>();
    agent->id = id;
    agent->dir = dir_ / id;
    fs::create_directories(agent->dir);
    std::ofstream(agent->dir / "agent.toml") << agentConfig(*agent);
    agents_.push_back(std::move(agent));
    return launchAgent(*agents_.back());
  }

  // (Re)starts an agent process with its config and state dir; waits for its RPC.
  bool launchAgent(AgentHandle& agent) {
    fs::remove(agent.dir / "ready");
    if (!agent.process.spawn({env("BAI_AGENT"), "--config", (agent.dir / "agent.toml").string(), "--ready-file",
                              (agent.dir / "ready").string()},
                             agent.dir / "agent.log", agent.dir / "agent.log", marker_) ||
        !eventually([&] { return fs::exists(agent.dir / "ready") || !agent.process.alive(); }) ||
        !fs::exists(agent.dir / "ready")) {
      ADD_FAILURE() << "agent " << agent.id << " did not come up:\n" << tail(readFile(agent.dir / "agent.log"));
      return false;
    }
    std::string address = readFile(agent.dir / "ready");
    address.erase(address.find_last_not_of("\n") + 1);
    agent.rpcBase = "http://" + address;
    return true;
  }

  json agentInfo(const std::string& id) {
    auto reply = admin_->get("/v1/agents/" + id);
    return reply.status == 200 && reply.json.is_object() ? reply.json : json::object();  // not yet registered: 404
  }

  bool waitAgentAlive(const std::string& id) {
    return eventually([&] { return agentInfo(id).value("status", "") == "ALIVE"; }, 10s);
  }

  json agentGet(const AgentHandle& agent, const std::string& path) {
    HttpClient client(agent.rpcBase, token_);
    return json::parse(client.get(path).body, nullptr, false);
  }

  // Whether the agents make real cgroups here: the cgroup check is empty otherwise.
  void reportLimits() {
    const json health = agentGet(*agents_.front(), "/v1/health");
    enforcing_ = health.is_object() && health.value("limits_enforced", false);
    std::cout << "kill loops: agents' limits: " << (health.is_object() ? health.value("limits", "?") : "?")
              << (enforcing_ ? "" : " (no cgroups to check for leftovers here)") << "\n";
  }

  // A session that appends a line to runs/<its id> each time it runs, then sleeps.
  json sessionBody(const std::string& name, int sleepMillis) {
    const std::string runs = (dir_ / "runs").string();
    json resources = {{"cuda.device", 1}};
    if (chance(0.5)) resources["cpu"] = 1;
    if (chance(0.5)) resources["mem"] = "64m";
    return json{{"name", name},
                {"command", {"sh", "-c", "echo ran >> " + runs + "/\"$BAI_SESSION_ID\"; sleep " + seconds(sleepMillis)}},
                {"env", {{kMarkerVariable, marker_}}},
                {"resources", resources}};
  }

  static std::string seconds(int millis) {
    return std::to_string(millis / 1000) + "." + std::to_string(1000 + millis % 1000).substr(1);
  }

  int uniform(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  // Every session the manager knows, by id; nothing when it did not answer.
  std::optional<std::map<std::string, json>> listSessions() {
    const ApiReply reply = admin_->get("/v1/sessions");
    if (reply.status != 200 || !reply.json.is_array()) return std::nullopt;
    std::map<std::string, json> out;
    for (const auto& entry : reply.json) out[entry.value("id", "")] = entry;
    return out;
  }

  // Every session the manager knows, once all have ended; what is still open fails.
  std::map<std::string, json> waitAllEnded(std::chrono::seconds limit) {
    std::optional<std::map<std::string, json>> all;
    const bool ended = eventually([&] {
      all = listSessions();
      return all && std::all_of(all->begin(), all->end(), [](const auto& s) { return isFinal(s.second.value("status", "")); });
    }, limit, 50ms);
    if (!all) {
      ADD_FAILURE() << "the manager does not list its sessions";
      return {};
    }
    if (!ended) {
      std::string open;
      for (const auto& [id, s] : *all) {
        if (!isFinal(s.value("status", ""))) open += " " + id + ":" + s.value("status", "") + "(" + s.value("status_reason", "") + ")";
      }
      ADD_FAILURE() << "sessions still open after " << limit.count() << " s:" << open;
    }
    return *all;
  }

  std::map<std::string, json> expectInvariants(const Loop& loop);
  void expectOutcomes(const Loop& loop, const std::map<std::string, json>& all);
  void expectEachOnOneAgent(const std::map<std::string, json>& all);
  void expectNothingHeld();
  void expectNoSessionCgroups();
  std::vector<fs::path> cgroupParents() const;
  void removeCgroupParents();

  void runManagerLoop(int number);
  void runAgentLoop(int number);

  std::unique_ptr<test::TempDir> temp_;
  fs::path dir_;
  std::string marker_;
  std::string token_;
  std::string listen_;
  std::string cgroupParent_;
  bool enforcing_ = false;
  int loops_ = 0;
  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  ChildProcess manager_;
  std::unique_ptr<SignedClient> admin_;
  std::vector<std::unique_ptr<AgentHandle>> agents_;
  Totals totals_;
};

std::map<std::string, json> KillLoopTest::expectInvariants(const Loop& loop) {
  const std::map<std::string, json> all = waitAllEnded(30s);
  for (const auto& id : loop.acknowledged) {
    EXPECT_EQ(all.count(id), 1u) << "loop " << loop.number << ": acknowledged session " << id << " is lost";
  }
  expectOutcomes(loop, all);
  // A run the manager does not know of at all: placed by a state it lost.
  for (const auto& entry : fs::directory_iterator(dir_ / "runs")) {
    const std::string id = entry.path().filename();
    EXPECT_EQ(all.count(id), 1u) << "loop " << loop.number << ": session " << id << " ran but the manager does not know it";
  }
  expectEachOnOneAgent(all);
  expectNothingHeld();
  expectNoSessionCgroups();
  return all;
}

// Each ran once and ended well; an agent killed mid-start may fail one, with a reason,
// that never ran.
void KillLoopTest::expectOutcomes(const Loop& loop, const std::map<std::string, json>& all) {
  for (const auto& [id, session] : all) {
    const std::string status = session.value("status", "");
    const std::size_t runs = lineCount(dir_ / "runs" / id);
    EXPECT_LE(runs, 1u) << "loop " << loop.number << ": session " << id << " ran " << runs << " times: " << session.dump();
    if (status == "TERMINATED") {
      EXPECT_EQ(runs, 1u) << "loop " << loop.number << ": " << session.dump();
      EXPECT_EQ(session["exit_code"], 0) << "loop " << loop.number << ": " << session.dump();
    } else if (status == "ERROR" && loop.errorsAllowed) {
      EXPECT_NE(session.value("status_reason", ""), "") << "loop " << loop.number << ": an error without a reason: " << session.dump();
      EXPECT_EQ(runs, 0u) << "loop " << loop.number << ": reported failed while its command ran: " << session.dump();
    } else {
      ADD_FAILURE() << "loop " << loop.number << ": session " << id << " ended " << status << ": " << session.dump();
    }
  }
  for (const auto& id : loop.runningAtKill) {
    EXPECT_EQ(all.count(id) ? all.at(id).value("status", "") : "", "TERMINATED")
        << "loop " << loop.number << ": session " << id << " ran when its agent was killed and did not finish";
  }
}

// Started on one agent only: a second placement would be a second run.
void KillLoopTest::expectEachOnOneAgent(const std::map<std::string, json>& all) {
  std::map<std::string, int> seen;
  for (const auto& agent : agents_) {
    const json listed = agentGet(*agent, "/v1/sessions");
    ASSERT_TRUE(listed.is_object()) << agent->id << ": " << listed.dump();
    for (const auto& info : listed["sessions"]) ++seen[info.value("id", "")];
  }
  for (const auto& [id, count] : seen) {
    EXPECT_EQ(count, 1) << "session " << id << " was created on " << count << " agents";
    EXPECT_EQ(all.count(id), 1u) << "an agent ran session " << id << ", which the manager does not know";
  }
}

// Every slot's used amount is 0 again, in the manager's view of each agent and in the
// agent's own allocation maps.
void KillLoopTest::expectNothingHeld() {
  for (const auto& agent : agents_) {
    json info;
    const bool free = eventually([&] {
      info = agentInfo(agent->id);
      if (!info.is_object() || info.value("status", "") != "ALIVE") return false;
      for (const auto& [slot, figures] : info["slots"].items()) {
        if (figures.value("used", "?") != "0") return false;
      }
      return true;
    }, 10s, 50ms);
    EXPECT_TRUE(free) << "the manager counts slots of " << agent->id << " as used: " << info.dump();
    const json map = agentGet(*agent, "/v1/alloc-map");
    ASSERT_TRUE(map.is_object()) << agent->id << ": " << map.dump();
    for (const auto& m : map["maps"]) {
      for (const auto& d : m["devices"]) {
        EXPECT_EQ(d.value("allocated", ""), "0") << agent->id << " " << m["slot"] << " " << d.dump();
        EXPECT_TRUE(d["sessions"].empty()) << agent->id << " " << m["slot"] << " " << d.dump();
      }
    }
  }
}

// Where this test's session cgroups are made: v2 (<root>/<parent>) or v1 (one per hierarchy).
std::vector<fs::path> KillLoopTest::cgroupParents() const {
  const fs::path root = kCgroupRoot;
  return {root / cgroupParent_, root / "memory" / cgroupParent_, root / "cpuset" / cgroupParent_,
          root / "pids" / cgroupParent_, root / "devices" / cgroupParent_};
}

void KillLoopTest::expectNoSessionCgroups() {
  std::vector<std::string> left;
  const bool none = eventually([&] {
    left.clear();
    std::error_code ec;
    for (const fs::path& parent : cgroupParents()) {
      for (const auto& entry : fs::directory_iterator(parent, ec)) {
        if (entry.is_directory(ec)) left.push_back(entry.path().string());
      }
    }
    return left.empty();
  }, 5s, 50ms);
  std::string names;
  for (const auto& path : left) names += " " + path;
  EXPECT_TRUE(none) << "session cgroups left behind:" << names;
}

void KillLoopTest::removeCgroupParents() {
  for (const fs::path& parent : cgroupParents()) {
    std::error_code ec;
    if (!fs::exists(parent, ec)) continue;
    eventually([&] {
      for (const auto& entry : fs::directory_iterator(parent, ec)) {
        if (entry.is_directory(ec)) ::rmdir(entry.path().c_str());
      }
      return ::rmdir(parent.c_str()) == 0;
    }, 5s, 20ms);
  }
}

// A burst of submissions with the manager SIGKILLed after a random number of them were
// sent plus a random delay (inside a request, between two, or during placement), a random
// pause, and a restart on the same address and database.
void KillLoopTest::runManagerLoop(int number) {
  Loop loop;
  loop.number = number;
  const std::string prefix = "m" + std::to_string(number) + "-";  // names of this loop's sessions
  const int killAfter = uniform(1, kBurst);
  const int delayMicros = uniform(0, 4000);
  std::atomic<int> sent{0};
  const pid_t pid = manager_.pid();
  std::thread killer([&] {
    while (sent.load() < killAfter) std::this_thread::sleep_for(100us);
    std::this_thread::sleep_for(std::chrono::microseconds(delayMicros));
    ::kill(pid, SIGKILL);
  });
  for (int i = 0; i < kBurst; ++i) {
    const json body = sessionBody(prefix + std::to_string(i), uniform(50, 400));
    ++sent;
    const ApiReply reply = admin_->post("/v1/sessions", body);
    if (reply.status == 201) {
      loop.acknowledged.push_back(reply.json.value("id", ""));
    } else {
      EXPECT_EQ(reply.status, 0) << "loop " << number << ": refused: " << reply.body;
      ++loop.unacknowledged;
      break;  // the manager is gone; the rest would be refused at the door
    }
  }
  sent = kBurst;  // lets the killer go even when the burst stopped early
  killer.join();
  manager_.wait();
  std::this_thread::sleep_for(std::chrono::milliseconds(uniform(0, 300)));
  ASSERT_TRUE(startManager()) << "loop " << number;
  const auto all = expectInvariants(loop);
  const auto answered = [&](const std::string& id) { return std::count(loop.acknowledged.begin(), loop.acknowledged.end(), id) != 0; };
  const int createdUnanswered = static_cast<int>(std::count_if(all.begin(), all.end(), [&](const auto& s) {
    return s.second.value("name", "").rfind(prefix, 0) == 0 && !answered(s.first);
  }));
  totals_.add(loop, all, dir_ / "runs");
  totals_.unansweredCreated += createdUnanswered;
  std::cout << "loop " << number << ": manager killed after " << killAfter << " submissions + " << delayMicros << " us; "
            << loop.acknowledged.size() << " acknowledged, " << loop.unacknowledged << " unanswered ("
            << createdUnanswered << " created all the same)" << std::endl;  // flushed: soak runs are long
}

// A burst of sessions with an agent SIGKILLed under them one to three times at random
// points (sessions running, starting, ending or queued), each time restarted on its
// state dir after a random pause.
void KillLoopTest::runAgentLoop(int number) {
  Loop loop;
  loop.number = number;
  loop.errorsAllowed = true;
  for (int i = 0; i < kBurst; ++i) {
    const ApiReply reply = admin_->post("/v1/sessions", sessionBody("a" + std::to_string(number) + "-" + std::to_string(i),
                                                                    uniform(50, 1000)));
    ASSERT_EQ(reply.status, 201) << "loop " << number << ": " << reply.body;
    loop.acknowledged.push_back(reply.json.value("id", ""));
  }
  std::string kills;
  for (int kill = uniform(1, 3); kill > 0; --kill) {
    const int waitMillis = chance(0.5) ? uniform(0, 40) : uniform(0, 500);  // half of them while sessions start
    std::this_thread::sleep_for(std::chrono::milliseconds(waitMillis));
    AgentHandle& victim = *agents_[static_cast<std::size_t>(uniform(0, kAgents - 1))];
    for (const auto& [id, session] : listSessions().value_or(std::map<std::string, json>{})) {
      if (session.value("status", "") == "RUNNING" && session.value("agent", "") == victim.id) loop.runningAtKill.insert(id);
    }
    victim.process.signal(SIGKILL);
    victim.process.wait();
    const int downMillis = uniform(0, 400);
    std::this_thread::sleep_for(std::chrono::milliseconds(downMillis));
    ASSERT_TRUE(launchAgent(victim)) << "loop " << number;
    kills += " " + victim.id + " (after " + std::to_string(waitMillis) + " ms, down " + std::to_string(downMillis) + " ms)";
  }
  totals_.add(loop, expectInvariants(loop), dir_ / "runs");
  std::cout << "loop " << number << ": killed" << kills << "; " << loop.runningAtKill.size() << " sessions ran there"
            << std::endl;
}

TEST_F(KillLoopTest, AManagerKilledDuringSubmissionsLosesAndRepeatsNothing) {
  for (int number = 1; number <= loops_ && !HasFailure(); ++number) runManagerLoop(number);
  std::cout << "manager kill loops: " << totals_.describe() << "\n";
}

TEST_F(KillLoopTest, AnAgentKilledUnderRunningSessionsLosesAndRepeatsNothing) {
  for (int number = 1; number <= loops_ && !HasFailure(); ++number) runAgentLoop(number);
  std::cout << "agent kill loops: " << totals_.describe() << "\n";
}

}  // namespace
}  // namespace bai::testing
