// Sessions end to end on one node: a real bai-manager and a real bai-agent (cpu and mock
// plugins, one fractional mock GPU) started once from a temporary directory and reused by
// every benchmark of the run. Every session is `true` asking cpu=1, mem=64m and
// cuda.shares=0.1.
//
//   BM_SessionRoundTrip/client   createSession through libbai's Client in this process, then
//                                long polls until it has an exit code: p50_ms/p99_ms per
//                                round trip; queue_p50_ms, start_p50_ms and run_p50_ms split
//                                it by the manager's own timestamps (created -> scheduled ->
//                                started -> ended, whole ms)
//   BM_SessionRoundTrip/cli      `bai session run -r ... -- true` (posix_spawn of the CLI,
//                                exit code 0 checked): p50_ms/p99_ms; an untimed
//                                `bai --version` after each timed run gives version_p50_ms
//                                and ratio_vs_version from the same run
//   BM_CliStartup                `bai --version` alone: the CLI's bare start-up
//   BM_Throughput/queue:50       N sessions queued behind a blocker session that holds the
//   BM_Throughput_LARGE/queue:500  whole GPU; the blocker is destroyed and the clock runs
//                                until all N have ended: items_per_second is sessions
//                                completed/s with a standing queue of N (the "queue"
//                                workload of benchmarks/peers/slurm.sh). submit_per_s is the
//                                untimed queueing; manager_cpu_ms and agent_cpu_ms are CPU
//                                per session from submission to end (the agent's includes
//                                its session shims and the commands), which bound what two
//                                cores can complete per second
//   BM_Submit/threads:T          createSession calls/s from T threads (items_per_second),
//                                p50_us/p99_us per call, manager_cpu_us per call. The
//                                sessions queue behind the blocker, so this is the
//                                acceptance path (auth, checks, store insert, the scheduler
//                                pass each submission triggers) and not the cluster running
//                                them; each batch is cancelled untimed, so no queue builds
//                                up between iterations
//
// Tuning, all of it an admin's own config (written to the temporary directory):
//   [plugins.cpu] cpu_overcommit = 32   cores x 32 sessions of cpu=1 at once (64 here): the
//                                       binding limit of BM_Throughput's concurrency
//   [resource] reserved-cpu = 0         a benchmark node with 2 cores keeps none back
//   log-level = "warning"               no log line per session in either daemon
//   the mock GPU: 80 shares of quantum 0.01 (unit_mem 1g, unit_proc 1)
// Everything else (scheduler period, dispatch threads, API and RPC threads, heartbeat
// interval, store synchronous mode) keeps its default. The database and the agent's state
// live under $TMPDIR. Session limits use the real cgroup file system under a cgroup-parent
// of this run's own, removed at the end; $BAI_BENCH_CGROUP_ROOT points the agent elsewhere
// (a directory without cgroups: advisory limits, to see what cgroups cost).
//
// Binaries: $BAI_MANAGER, $BAI_AGENT, $BAI_SESSION_SHIM, $BAI_CLI, $BAI_CPU_PLUGIN_DIR,
// $BAI_MOCK_PLUGIN_DIR, $BAI_POLICY_DIR; each defaults to where meson built it. The daemons
// are stopped (SIGTERM, SIGKILL after 10 s) at exit and die with this process
// (PR_SET_PDEATHSIG). Any failed benchmark makes the exit status 1, so the smoke test fails.
//
// Run it in full with
//   ./build/benchmarks/bench_session --benchmark_min_time=2

#include <bai/client.hpp>

#include "http_client.hpp"
#include "secret_file.hpp"

#include "bench_process.hpp"
#include "bench_support.hpp"

#include <benchmark/benchmark.h>
#include <toml++/toml.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef BAI_MANAGER_BUILD_PATH
#define BAI_MANAGER_BUILD_PATH ""
#endif
#ifndef BAI_AGENT_BUILD_PATH
#define BAI_AGENT_BUILD_PATH ""
#endif
#ifndef BAI_SESSION_SHIM_BUILD_PATH
#define BAI_SESSION_SHIM_BUILD_PATH ""
#endif
#ifndef BAI_CLI_BUILD_PATH
#define BAI_CLI_BUILD_PATH ""
#endif
#ifndef BAI_CPU_PLUGIN_BUILD_DIR
#define BAI_CPU_PLUGIN_BUILD_DIR ""
#endif
#ifndef BAI_MOCK_PLUGIN_BUILD_DIR
#define BAI_MOCK_PLUGIN_BUILD_DIR ""
#endif
#ifndef BAI_POLICY_BUILD_DIR
#define BAI_POLICY_BUILD_DIR ""
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace bai::bench;  // bench_support.hpp, bench_process.hpp
using bai::client::Client;
using bai::client::Session;
using bai::client::SessionSpec;

constexpr int kCpuOvercommit = 32;
constexpr const char* kGpuShares = "80";  // the mock GPU's whole capacity (see mockConfig)

// ---- Small helpers ----------------------------------------------------------------------

std::string firstLine(const fs::path& file) {
  std::string line;
  std::ifstream in(file);
  std::getline(in, line);
  return line;
}

// Counters `<prefix>p50_ms` and so on: round trips are milliseconds long, where the
// suites' usual microsecond counters read badly.
void reportMillis(benchmark::State& state, const std::vector<std::int64_t>& samples, const std::string& prefix = "") {
  bai::bench::reportPercentiles(state, samples, prefix, bai::bench::TimeUnit::Milliseconds);
}

// A failed benchmark is reported by libbenchmark and also fails the process (main).
std::atomic<int> failedBenchmarks{0};
void fail(benchmark::State& state, const std::string& why) {
  ++failedBenchmarks;
  state.SkipWithError(why.c_str());
}

// Runs a short-lived program (the CLI, `bai-manager init`) with the given environment;
// stdout to /dev/null unless `out` names a file, stderr to `err`. Its exit status, or -1
// when it could not be started.
int runProgram(std::vector<std::string> args, std::vector<std::string>& environment, const fs::path& err,
               const fs::path& out = "/dev/null") {
  auto argv = pointers(args);
  auto envp = pointers(environment);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return exitStatus(status);
}

// Removes this run's cgroup parent from every v1 controller and the v2 root, children
// first (cgroup directories go with rmdir only, and only once empty).
void removeCgroupTree(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) removeCgroupTree(entry.path());
  }
  ::rmdir(dir.c_str());
}
void removeCgroupParent(const std::string& parent) {
  std::error_code ec;
  removeCgroupTree(fs::path("/sys/fs/cgroup") / parent);
  for (const auto& controller : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    if (controller.is_directory(ec) && fs::exists(controller.path() / parent, ec)) removeCgroupTree(controller.path() / parent);
  }
}

// ---- Worker threads -------------------------------------------------------------------------

// Threads kept for the whole run, so each keeps its one kept-alive connection to the
// manager (a Client connects once per calling thread).
class WorkerPool {
 public:
  explicit WorkerPool(std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  std::size_t size() const { return threads_.size(); }

  // job(worker) on the first `workers` threads at once; returns when all have finished.
  void run(std::size_t workers, const std::function<void(std::size_t)>& job) {
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = &job;
    active_ = std::min(workers, threads_.size());
    pending_ = active_;
    ++generation_;
    wake_.notify_all();
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(std::size_t index) {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (index >= active_) continue;
      const auto* job = job_;
      lock.unlock();
      (*job)(index);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t active_ = 0, pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

// ---- The cluster ---------------------------------------------------------------------------

struct Binaries {
  std::string manager = fromEnvOr("BAI_MANAGER", BAI_MANAGER_BUILD_PATH);
  std::string agent = fromEnvOr("BAI_AGENT", BAI_AGENT_BUILD_PATH);
  std::string shim = fromEnvOr("BAI_SESSION_SHIM", BAI_SESSION_SHIM_BUILD_PATH);
  std::string cli = fromEnvOr("BAI_CLI", BAI_CLI_BUILD_PATH);
  std::string cpuPluginDir = fromEnvOr("BAI_CPU_PLUGIN_DIR", BAI_CPU_PLUGIN_BUILD_DIR);
  std::string mockPluginDir = fromEnvOr("BAI_MOCK_PLUGIN_DIR", BAI_MOCK_PLUGIN_BUILD_DIR);
  std::string policyDir = fromEnvOr("BAI_POLICY_DIR", BAI_POLICY_BUILD_DIR);

  // Empty when everything is there, else what is missing.
  std::string missing() const {
    const std::pair<const char*, const std::string*> programs[] = {
        {"BAI_MANAGER", &manager}, {"BAI_AGENT", &agent}, {"BAI_SESSION_SHIM", &shim}, {"BAI_CLI", &cli}};
    for (const auto& [variable, path] : programs) {
      if (path->empty() || ::access(path->c_str(), X_OK) != 0) return std::string("no program at '") + *path + "' (set " + variable + ")";
    }
    const std::pair<const char*, fs::path> plugins[] = {{"BAI_CPU_PLUGIN_DIR", fs::path(cpuPluginDir) / "cpu.so"},
                                                        {"BAI_MOCK_PLUGIN_DIR", fs::path(mockPluginDir) / "mock.so"},
                                                        {"BAI_POLICY_DIR", fs::path(policyDir) / "fifo.so"}};
    for (const auto& [variable, file] : plugins) {
      if (!fs::exists(file)) return "no " + file.string() + " (set " + variable + ")";
    }
    return "";
  }
};

// The mock GPU: one A100-like device in fractional mode, 80 shares (min(80g / 1g, 108 / 1)).
std::string mockConfig() {
  return "key = \"cuda\"\nmode = \"fractional\"\nunit_mem = \"1g\"\nunit_proc = 1\nquantum_size = \"0.01\"\n"
         "[[devices]]\nuuid = \"GPU-bench0000-0000-4000-8000-000000000000\"\nmodel = \"NVIDIA A100-SXM4-80GB\"\n"
         "sm_count = 108\nmemory = \"80g\"\n";
}

SessionSpec trivialSession() {
  SessionSpec spec;
  spec.command = {"true"};
  spec.resources = {{"cpu", "1"}, {"mem", "64m"}, {"cuda.shares", "0.1"}};
  return spec;
}

// $BAI_BENCH_CGROUP_ROOT replaces the agent's runtime.cgroup-root: a directory without
// cgroups makes limits advisory, which shows what attaching each session to its cgroups
// costs. Empty: the default, the real cgroup file system.
std::string cgroupRootLine() {
  const char* root = std::getenv("BAI_BENCH_CGROUP_ROOT");
  return root != nullptr && *root != '\0' ? "cgroup-root = \"" + std::string(root) + "\"\n" : "";
}

// With an engine ($BAI_BENCH_ENGINE_SOCKET, else $BAI_TEST_ENGINE_SOCKET, which
// scripts/test.sh sets) and an image ($BAI_BENCH_IMAGE, else $BAI_TEST_IMAGE), the agent
// also runs containers, and the container benchmarks are registered.
std::string engineSocket() {
  std::string socket = fromEnvOr("BAI_BENCH_ENGINE_SOCKET", "");
  return socket.empty() ? fromEnvOr("BAI_TEST_ENGINE_SOCKET", "") : socket;
}
std::string containerImage() {
  std::string image = fromEnvOr("BAI_BENCH_IMAGE", "");
  return image.empty() ? fromEnvOr("BAI_TEST_IMAGE", "") : image;
}
bool containersConfigured() { return !engineSocket().empty() && !containerImage().empty(); }

// No network for the containers, as for the `podman run --network none` they are compared with.
std::string containerRuntimeLines() {
  if (!containersConfigured()) return "";
  return "kinds = [\"process\", \"container\"]\n[runtime.container]\nengine-socket = \"" + engineSocket() +
         "\"\nnetwork = \"none\"\nulimits = [\"nofile=4096:16384\", \"nproc=16384\"]\n";
}

// min over the slots of capacity / request.
std::size_t trivialSessionsThatFit(const bai::client::AgentInfo& agent) {
  std::size_t fit = SIZE_MAX;
  for (const auto& [slot, amount] : trivialSession().resources) {
    const auto it = agent.slots.find(slot);
    auto request = slot == "mem" ? bai::BinarySize::parse(amount).value().toQuantity() : bai::Quantity::parse(amount).value();
    if (it == agent.slots.end() || request.isZero()) return 0;
    std::size_t n = 0;
    for (bai::Quantity used = request; used <= it->second.capacity && n < 100000; used = used + request) ++n;
    fit = std::min(fit, n);
  }
  return fit;
}

// bai-manager and bai-agent in one temporary directory, an admin Client, and the CLI's
// environment (a config file with the endpoint and the admin keypair, mode 0600).
class Cluster {
 public:
  ~Cluster() { stop(); }

  // Empty on success, else why it did not start.
  std::string start() {
    if (std::string missing = binaries_.missing(); !missing.empty()) return missing;
    const fs::path dir = dir_.path();
    cgroupParent_ = "bai-bench-session-" + std::to_string(::getpid());

    // The database, the admin keypair and the cluster token, as an admin makes them.
    std::vector<std::string> initEnvironment = childEnvironment({});
    const int init = runProgram({binaries_.manager, "init", "--db", "sqlite://" + (dir / "manager.db").string(),
                                 "--admin-keypair-out", (dir / "admin.keypair").string(), "--cluster-token-out",
                                 (dir / "cluster-token").string()},
                                initEnvironment, dir / "init.err", dir / "init.out");
    if (init != 0) return "bai-manager init exited " + std::to_string(init) + ": " + lastLines(dir / "init.err");
    bai::client::Config config;
    try {
      const toml::table keypair = toml::parse_file((dir / "admin.keypair").string());
      config.accessKey = keypair["access-key"].value_or(std::string());
      config.secretKey = keypair["secret-key"].value_or(std::string());
    } catch (const toml::parse_error& e) {
      return std::string("the admin keypair file: ") + std::string(e.description());
    }

    std::ofstream(dir / "manager.toml") << "[manager]\n"
                                        << "listen = \"127.0.0.1:0\"\n"
                                        << "db = \"sqlite://" << (dir / "manager.db").string() << "\"\n"
                                        << "cluster-token-file = \"" << (dir / "cluster-token").string() << "\"\n"
                                        << "log-level = \"warning\"\n"
                                        << "[scheduler]\n"
                                        << "max-pending-per-keypair = 0\n"  // queues of thousands are measured
                                        << "policy-path = [\"" << binaries_.policyDir << "\"]\n";
    managerPid_ = spawnDaemon({binaries_.manager, "--config", (dir / "manager.toml").string(), "--ready-file",
                               (dir / "manager.ready").string()},
                              dir / "manager.log");
    if (std::string failed = waitReady(managerPid_, dir / "manager.ready", dir / "manager.log", "bai-manager"); !failed.empty()) {
      return failed;
    }
    config.endpoint = "http://" + firstLine(dir / "manager.ready");
    config.timeout = 30s;

    std::ofstream(dir / "mock-gpu.toml") << mockConfig();
    std::ofstream(dir / "agent.toml") << "[agent]\n"
                                      << "id = \"bench-agent\"\n"
                                      << "rpc-listen-addr = \"127.0.0.1:0\"\n"
                                      << "manager-url = \"" << config.endpoint << "\"\n"
                                      << "cluster-token-file = \"" << (dir / "cluster-token").string() << "\"\n"
                                      << "state-dir = \"" << (dir / "agent-state").string() << "\"\n"
                                      << "plugin-path = [\"" << binaries_.cpuPluginDir << "\", \"" << binaries_.mockPluginDir
                                      << "\"]\n"
                                      << "allow-plugins = [\"cpu\", \"mock\"]\n"
                                      << "log-level = \"warning\"\n"
                                      << "[resource]\n"
                                      << "reserved-cpu = 0\n"
                                      << "[runtime]\n"
                                      << "shim-path = \"" << binaries_.shim << "\"\n"
                                      << "destroy-grace = 1\n"
                                      << "cgroup-parent = \"" << cgroupParent_ << "\"\n"
                                      << cgroupRootLine()
                                      << containerRuntimeLines()
                                      << "[plugins.cpu]\n"
                                      << "cpu_overcommit = " << kCpuOvercommit << "\n"
                                      << "[plugins.mock]\n"
                                      << "config_file = \"" << (dir / "mock-gpu.toml").string() << "\"\n";
    agentPid_ = spawnDaemon({binaries_.agent, "--config", (dir / "agent.toml").string(), "--ready-file",
                             (dir / "agent.ready").string()},
                            dir / "agent.log");
    if (std::string failed = waitReady(agentPid_, dir / "agent.ready", dir / "agent.log", "bai-agent"); !failed.empty()) {
      return failed;
    }
    api_.emplace(config);
    const auto deadline = Clock::now() + 30s;
    while (true) {
      auto agents = api_->agents();
      if (agents && agents->size() == 1 && agents->front().status == "ALIVE") {
        concurrency_ = trivialSessionsThatFit(agents->front());
        break;
      }
      if (Clock::now() > deadline) return "the agent did not register within 30 s: " + lastLines(dir / "agent.log");
      if (std::string dead = health(); !dead.empty()) return dead;
      std::this_thread::sleep_for(20ms);
    }
    if (concurrency_ < 2) return "the agent fits " + std::to_string(concurrency_) + " trivial sessions at once; expected many";

    // The CLI reads the same keypair from its config file, as a user's would.
    const std::string cliConfig = "endpoint = \"" + config.endpoint + "\"\naccess-key = \"" + config.accessKey +
                                  "\"\nsecret-key = \"" + config.secretKey + "\"\n";
    if (auto written = bai::writeSecretFile(dir / "cli-config.toml", cliConfig); !written) return written.error().message;
    cliEnvironment_ = childEnvironment({"BAI_CONFIG=" + (dir / "cli-config.toml").string()});
    return "";
  }

  // Ends what still runs or waits, then the agent, then the manager.
  void stop() {
    if (api_ && managerPid_ > 0 && agentPid_ > 0) {
      for (const char* status : {"PENDING", "SCHEDULED", "PREPARING", "RUNNING"}) {
        if (auto sessions = api_->listSessions(status)) {
          for (const auto& session : *sessions) (void)api_->destroySession(session.id);
        }
      }
      const auto deadline = Clock::now() + 5s;
      while (Clock::now() < deadline) {
        auto running = api_->listSessions("TERMINATING");
        if (!running || running->empty()) break;
        std::this_thread::sleep_for(20ms);
      }
    }
    stopProcess(std::exchange(agentPid_, -1), "bai-agent");
    stopProcess(std::exchange(managerPid_, -1), "bai-manager");
    if (!cgroupParent_.empty()) removeCgroupParent(std::exchange(cgroupParent_, std::string()));
  }

  // Empty while both daemons run, else which one died and its log.
  std::string health() {
    const std::pair<pid_t*, const char*> daemons[] = {{&managerPid_, "manager"}, {&agentPid_, "agent"}};
    for (const auto& [pid, name] : daemons) {
      int status = 0;
      if (*pid > 0 && ::waitpid(*pid, &status, WNOHANG) == *pid) {
        *pid = -1;
        return std::string("bai-") + name + " exited (" + std::to_string(exitStatus(status)) + "): " +
               lastLines(dir_.path() / (std::string(name) + ".log"));
      }
    }
    return "";
  }

  const Client& api() const { return *api_; }
  double managerCpuSeconds() const { return processCpuSeconds(managerPid_); }
  double agentCpuSeconds() const { return processCpuSeconds(agentPid_); }
  const std::string& cli() const { return binaries_.cli; }
  std::vector<std::string>& cliEnvironment() { return cliEnvironment_; }
  fs::path file(const std::string& name) const { return dir_.path() / name; }
  WorkerPool& workers() { return workers_; }
  // How many trivial sessions the agent runs at once.
  std::size_t concurrency() const { return concurrency_; }

 private:
  std::string waitReady(pid_t pid, const fs::path& ready, const fs::path& log, const std::string& name) {
    if (pid < 0) return "cannot start " + name;
    const auto deadline = Clock::now() + 30s;
    while (!fs::exists(ready) || firstLine(ready).empty()) {
      if (std::string dead = health(); !dead.empty()) return dead;
      if (Clock::now() > deadline) return name + " not ready after 30 s: " + lastLines(log);
      std::this_thread::sleep_for(10ms);
    }
    return "";
  }

  TempDir dir_;
  Binaries binaries_;
  std::string cgroupParent_;
  pid_t managerPid_ = -1;
  pid_t agentPid_ = -1;
  std::optional<Client> api_;
  std::vector<std::string> cliEnvironment_;
  std::size_t concurrency_ = 0;
  WorkerPool workers_{8};
};

std::unique_ptr<Cluster>& currentCluster() {
  static std::unique_ptr<Cluster> cluster;
  return cluster;
}

// The run's cluster, started by the first benchmark that needs it (on the main thread).
Cluster* cluster(benchmark::State& state) {
  static std::string startFailure;
  auto& cluster = currentCluster();
  if (!startFailure.empty()) {
    fail(state, "the cluster did not start: " + startFailure);
    return nullptr;
  }
  if (!cluster) {
    auto fresh = std::make_unique<Cluster>();
    if (std::string failed = fresh->start(); !failed.empty()) {
      startFailure = failed;
      fail(state, "the cluster did not start: " + failed);
      return nullptr;
    }
    cluster = std::move(fresh);
  }
  if (std::string dead = cluster->health(); !dead.empty()) {
    fail(state, dead);
    return nullptr;
  }
  return cluster.get();
}

// ---- Session helpers -----------------------------------------------------------------------

// Long polls until the session ends; its last record, or why not.
bai::client::ClientResult<Session> waitFinal(const Client& api, Session session, std::chrono::seconds limit = 60s) {
  const auto deadline = Clock::now() + limit;
  while (!session.isFinal()) {
    if (Clock::now() > deadline) {
      return bai::Failure<bai::client::ApiError>{
          bai::client::ApiError{0, "timeout", "", "session " + session.id + " is still " + session.status}};
    }
    auto next = api.session(session.id, 10s);
    if (!next) return next;
    session = std::move(*next);
  }
  return session;
}

std::string describe(const Session& session) {
  return "session " + session.id + " ended " + session.status + (session.exitCode ? " with exit code " + std::to_string(*session.exitCode) : "") +
         (session.statusReason.empty() ? "" : ": " + session.statusReason);
}

// A session holding the whole mock GPU, so every trivial session queues behind it; empty
// when it runs, else why not.
std::string startBlocker(const Client& api, std::string& id) {
  SessionSpec spec;
  spec.name = "blocker";
  spec.command = {"sleep", "600"};  // bounded, should this process die before destroying it
  spec.resources = {{"cpu", "1"}, {"mem", "64m"}, {"cuda.shares", kGpuShares}};
  auto created = api.createSession(spec);
  if (!created) return "the blocker session: " + created.error().message();
  id = created->id;
  const auto deadline = Clock::now() + 30s;
  Session session = *created;
  while (session.status != "RUNNING") {
    if (session.isFinal()) return "the blocker " + describe(session);
    if (Clock::now() > deadline) return "the blocker session is still " + session.status;
    std::this_thread::sleep_for(5ms);
    auto next = api.session(id);
    if (!next) return "the blocker session: " + next.error().message();
    session = std::move(*next);
  }
  return "";
}

// Destroys `ids` from every worker; the first failure, or empty.
std::string destroyAll(Cluster& cluster, const std::vector<std::string>& ids) {
  std::mutex mutex;
  std::string failure;
  const std::size_t workers = cluster.workers().size();
  cluster.workers().run(workers, [&](std::size_t worker) {
    for (std::size_t i = worker; i < ids.size(); i += workers) {
      auto destroyed = cluster.api().destroySession(ids[i]);
      if (!destroyed && destroyed.error().status != 404) {
        std::lock_guard<std::mutex> lock(mutex);
        if (failure.empty()) failure = "destroying " + ids[i] + ": " + destroyed.error().message();
      }
    }
  });
  return failure;
}

// ---- Benchmarks ------------------------------------------------------------------------------

void BM_SessionRoundTripClient(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  const SessionSpec spec = trivialSession();
  std::vector<std::int64_t> samples, queued, starting, running;
  for (auto _ : state) {
    const auto start = Clock::now();
    auto created = c->api().createSession(spec);
    if (!created) return fail(state, "createSession: " + created.error().message());
    auto ended = waitFinal(c->api(), *created);
    const auto elapsed = Clock::now() - start;
    if (!ended) return fail(state, ended.error().message());
    if (ended->exitCode != 0) return fail(state, describe(*ended));
    state.SetIterationTime(seconds(elapsed));
    samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
    queued.push_back((ended->scheduledAtMs - ended->createdAtMs) * 1'000'000);
    starting.push_back((ended->startedAtMs - ended->scheduledAtMs) * 1'000'000);
    running.push_back((ended->endedAtMs - ended->startedAtMs) * 1'000'000);
  }
  reportMillis(state, samples);
  if (!queued.empty()) {
    state.counters["queue_p50_ms"] = bai::bench::histogramOf(queued).percentile(0.5) / 1e6;
    state.counters["start_p50_ms"] = bai::bench::histogramOf(starting).percentile(0.5) / 1e6;
    state.counters["run_p50_ms"] = bai::bench::histogramOf(running).percentile(0.5) / 1e6;
  }
}

// One run of the CLI; its wall time, or why it failed.
bai::Result<Clock::duration, std::string> runCli(Cluster& c, std::vector<std::string> args) {
  args.insert(args.begin(), c.cli());
  const auto start = Clock::now();
  const int status = runProgram(args, c.cliEnvironment(), c.file("cli.err"));
  const auto elapsed = Clock::now() - start;
  if (status != 0) return bai::Failure<std::string>{"bai " + args[1] + " exited " + std::to_string(status) + ": " + lastLines(c.file("cli.err"))};
  return elapsed;
}

const std::vector<std::string> kCliRun = {"session", "run", "-r", "cpu=1", "-r", "mem=64m", "-r", "cuda.shares=0.1", "--", "true"};

void BM_SessionRoundTripCli(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  std::vector<std::int64_t> samples, versions;
  for (auto _ : state) {
    auto elapsed = runCli(*c, kCliRun);
    if (!elapsed) return fail(state, elapsed.error());
    state.SetIterationTime(seconds(*elapsed));
    samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(*elapsed).count());
    // Untimed, alternating with the timed runs: the CLI's bare start-up under the same
    // conditions, for the ratio below.
    auto version = runCli(*c, {"--version"});
    if (!version) return fail(state, version.error());
    versions.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(*version).count());
  }
  reportMillis(state, samples);
  reportMillis(state, versions, "version_");
  if (!versions.empty()) state.counters["ratio_vs_version"] = state.counters["p50_ms"] / state.counters["version_p50_ms"];
}

void BM_CliStartup(benchmark::State& state) {
  Cluster* c = cluster(state);  // the same environment as the round trips
  if (c == nullptr) return;
  std::vector<std::int64_t> samples;
  for (auto _ : state) {
    auto elapsed = runCli(*c, {"--version"});
    if (!elapsed) return fail(state, elapsed.error());
    state.SetIterationTime(seconds(*elapsed));
    samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(*elapsed).count());
  }
  reportMillis(state, samples);
}

// Submits `count` trivial sessions from `threads` workers; their ids in submission order per
// worker, or why not. Latencies of each call go to `latencies` when given.
std::string submit(Cluster& c, std::size_t count, std::size_t threads, std::vector<std::string>& ids,
                   std::vector<std::int64_t>* latencies = nullptr) {
  const SessionSpec spec = trivialSession();
  std::vector<std::vector<std::string>> perWorker(threads);
  std::vector<std::vector<std::int64_t>> perWorkerLatency(threads);
  std::vector<std::string> failures(threads);
  c.workers().run(threads, [&](std::size_t worker) {
    for (std::size_t i = worker; i < count; i += threads) {
      const auto sent = Clock::now();
      auto created = c.api().createSession(spec);
      if (latencies != nullptr) {
        perWorkerLatency[worker].push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sent).count());
      }
      if (!created) {
        failures[worker] = "createSession: " + created.error().message();
        return;
      }
      perWorker[worker].push_back(created->id);
    }
  });
  for (std::size_t w = 0; w < threads; ++w) {
    ids.insert(ids.end(), perWorker[w].begin(), perWorker[w].end());
    if (latencies != nullptr) latencies->insert(latencies->end(), perWorkerLatency[w].begin(), perWorkerLatency[w].end());
  }
  for (const auto& failure : failures) {
    if (!failure.empty()) return failure;
  }
  return "";
}

// range(0): sessions in the queue. One iteration: queue them behind the blocker (untimed),
// destroy the blocker and time until every one has ended.
void BM_Throughput(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  const auto queue = static_cast<std::size_t>(state.range(0));
  const std::size_t threads = c->workers().size();
  std::size_t completed = 0;
  double submitSeconds = 0;
  const double managerCpuBefore = c->managerCpuSeconds(), agentCpuBefore = c->agentCpuSeconds();
  for (auto _ : state) {
    std::string blocker;
    if (std::string failed = startBlocker(c->api(), blocker); !failed.empty()) return fail(state, failed);
    std::vector<std::string> ids;
    const auto submitStart = Clock::now();
    std::string failed = submit(*c, queue, threads, ids);
    submitSeconds += seconds(Clock::now() - submitStart);
    if (!failed.empty()) {
      (void)destroyAll(*c, ids);
      (void)c->api().destroySession(blocker);
      return fail(state, failed);
    }

    const auto start = Clock::now();
    auto destroyed = c->api().destroySession(blocker);
    if (!destroyed) {
      (void)destroyAll(*c, ids);
      return fail(state, "destroying the blocker: " + destroyed.error().message());
    }
    std::vector<std::string> failures(threads);
    std::vector<Clock::time_point> lastEnd(threads, start);
    c->workers().run(threads, [&](std::size_t worker) {
      for (std::size_t i = worker; i < ids.size(); i += threads) {
        auto session = c->api().session(ids[i], 10s);
        if (session) session = waitFinal(c->api(), *session);
        if (!session) {
          failures[worker] = session.error().message();
          return;
        }
        if (session->exitCode != 0) {
          failures[worker] = describe(*session);
          return;
        }
        lastEnd[worker] = Clock::now();
      }
    });
    const auto elapsed = *std::max_element(lastEnd.begin(), lastEnd.end()) - start;
    for (const auto& failure : failures) {
      if (!failure.empty()) {
        (void)destroyAll(*c, ids);
        return fail(state, failure);
      }
    }
    state.SetIterationTime(seconds(elapsed));
    completed += queue;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(completed));
  if (completed != 0) {
    state.counters["submit_per_s"] = static_cast<double>(completed) / submitSeconds;
    // Per session, from submission to its end (10 ms ticks of /proc accounting).
    const double sessions = static_cast<double>(completed);
    state.counters["manager_cpu_ms"] = (c->managerCpuSeconds() - managerCpuBefore) * 1000 / sessions;
    state.counters["agent_cpu_ms"] = (c->agentCpuSeconds() - agentCpuBefore) * 1000 / sessions;
  }
  state.counters["max_concurrent"] = static_cast<double>(c->concurrency());
}

// range(0): client threads. One iteration: a batch of kSubmitBatch submissions (timed),
// then the batch cancelled (untimed). The blocker holds the GPU for the whole run.
constexpr std::size_t kSubmitBatch = 200;

void BM_Submit(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  const auto threads = static_cast<std::size_t>(state.range(0));
  std::string blocker;
  if (std::string failed = startBlocker(c->api(), blocker); !failed.empty()) return fail(state, failed);
  std::vector<std::int64_t> latencies;
  std::size_t accepted = 0;
  double managerCpu = 0;
  for (auto _ : state) {
    std::vector<std::string> ids;
    const double managerCpuBefore = c->managerCpuSeconds();
    const auto start = Clock::now();
    std::string failed = submit(*c, kSubmitBatch, threads, ids, &latencies);
    const auto elapsed = Clock::now() - start;
    managerCpu += c->managerCpuSeconds() - managerCpuBefore;
    std::string cancelled = destroyAll(*c, ids);
    if (!failed.empty() || !cancelled.empty()) {
      (void)c->api().destroySession(blocker);
      return fail(state, failed.empty() ? cancelled : failed);
    }
    state.SetIterationTime(seconds(elapsed));
    accepted += ids.size();
  }
  auto destroyed = c->api().destroySession(blocker);
  if (!destroyed) return fail(state, "destroying the blocker: " + destroyed.error().message());
  // Back to idle before the next benchmark: the blocker has ended and freed the GPU.
  if (auto ended = waitFinal(c->api(), *destroyed); !ended) return fail(state, ended.error().message());
  state.SetItemsProcessed(static_cast<std::int64_t>(accepted));
  if (accepted != 0) state.counters["manager_cpu_us"] = managerCpu * 1e6 / static_cast<double>(accepted);
  bai::bench::reportPercentiles(state, latencies);
}

// ---- Containers ------------------------------------------------------------------------------

SessionSpec containerSession() {
  SessionSpec spec;
  spec.command = {"true"};
  spec.image = containerImage();
  spec.resources = {{"cpu", "1"}, {"mem", "64m"}};
  return spec;
}

// `podman run --rm` of the same image and command, as the engine's own CLI runs it.
std::vector<std::string> podmanRun() {
  return {fromEnvOr("BAI_BENCH_PODMAN", "/usr/bin/podman"), "--runtime", "runc", "run", "--rm", "--network", "none",
          "--ulimit", "nofile=4096:16384", "--ulimit", "nproc=16384:16384", containerImage(), "true"};
}

// One container session through libbai: created, long-polled to its end; its duration.
bai::Result<Clock::duration, std::string> containerRoundTrip(Cluster& c, const SessionSpec& spec) {
  const auto start = Clock::now();
  auto created = c.api().createSession(spec);
  if (!created) return bai::Failure<std::string>{"createSession: " + created.error().message()};
  auto ended = waitFinal(c.api(), *created);
  const auto elapsed = Clock::now() - start;
  if (!ended) return bai::Failure<std::string>{ended.error().message()};
  if (ended->exitCode != 0) return bai::Failure<std::string>{describe(*ended)};
  return elapsed;
}

std::int64_t nanos(Clock::duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); }

// Side by side in each iteration: `podman run --rm IMAGE true`, a container session of the
// same through libbai and through `bai session run --image`, and a process session
// through libbai. Timed: the libbai container session; p50_ms of each and the ratios.
void BM_ContainerRoundTrip(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  const SessionSpec container = containerSession();
  SessionSpec process = container;
  process.image.clear();
  std::vector<std::string> cliRun = {"session", "run", "--image", containerImage(), "-r", "cpu=1", "-r", "mem=64m", "--", "true"};
  std::vector<std::int64_t> podman, client, cli, processes;
  std::vector<std::string> environment = childEnvironment({});
  for (auto _ : state) {
    const auto podmanStart = Clock::now();
    const int status = runProgram(podmanRun(), environment, c->file("podman.err"));
    if (status != 0) return fail(state, "podman run exited " + std::to_string(status) + ": " + lastLines(c->file("podman.err")));
    podman.push_back(nanos(Clock::now() - podmanStart));
    auto viaClient = containerRoundTrip(*c, container);
    if (!viaClient) return fail(state, viaClient.error());
    state.SetIterationTime(seconds(*viaClient));
    client.push_back(nanos(*viaClient));
    auto viaCli = runCli(*c, cliRun);
    if (!viaCli) return fail(state, viaCli.error());
    cli.push_back(nanos(*viaCli));
    auto asProcess = containerRoundTrip(*c, process);
    if (!asProcess) return fail(state, asProcess.error());
    processes.push_back(nanos(*asProcess));
  }
  reportMillis(state, client);
  reportMillis(state, podman, "podman_");
  reportMillis(state, cli, "cli_");
  reportMillis(state, processes, "process_");
  if (!podman.empty()) {
    state.counters["ratio_client_vs_podman"] = state.counters["p50_ms"] / state.counters["podman_p50_ms"];
    state.counters["ratio_cli_vs_podman"] = state.counters["cli_p50_ms"] / state.counters["podman_p50_ms"];
  }
}

// Container sessions started and reaped per second: `kInFlight` submitted at once, the
// clock runs until all have ended (items_per_second); podman_per_s is the same number of
// `podman run --rm` started at once, in the same iteration.
void BM_ContainerThroughput(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  constexpr std::size_t kInFlight = 16;
  const SessionSpec spec = containerSession();
  std::size_t completed = 0;
  double podmanSeconds = 0;
  for (auto _ : state) {
    std::vector<std::string> ids(kInFlight), failures(kInFlight);
    const auto start = Clock::now();
    const std::size_t workers = c->workers().size();
    c->workers().run(workers, [&](std::size_t worker) {
      std::vector<std::pair<std::size_t, Session>> mine;
      for (std::size_t i = worker; i < kInFlight; i += workers) {
        auto created = c->api().createSession(spec);
        if (!created) {
          failures[i] = "createSession: " + created.error().message();
          return;
        }
        ids[i] = created->id;
        mine.emplace_back(i, *created);
      }
      for (auto& [i, session] : mine) {
        auto ended = waitFinal(c->api(), session);
        if (!ended) failures[i] = ended.error().message();
        else if (ended->exitCode != 0) failures[i] = describe(*ended);
      }
    });
    const auto elapsed = Clock::now() - start;
    for (const auto& failure : failures) {
      if (!failure.empty()) {
        (void)destroyAll(*c, ids);
        return fail(state, failure);
      }
    }
    state.SetIterationTime(seconds(elapsed));
    completed += kInFlight;

    // Beside it, untimed: as many `podman run --rm` at once, the engine's own CLI.
    std::vector<std::thread> runs;
    std::atomic<int> podmanFailures{0};
    const auto podmanStart = Clock::now();
    for (std::size_t i = 0; i < kInFlight; ++i) {
      runs.emplace_back([&, i] {
        std::vector<std::string> environment = childEnvironment({});
        if (runProgram(podmanRun(), environment, c->file("podman-" + std::to_string(i) + ".err")) != 0) ++podmanFailures;
      });
    }
    for (auto& run : runs) run.join();
    if (podmanFailures != 0) return fail(state, "podman run failed: " + lastLines(c->file("podman-0.err")));
    podmanSeconds += seconds(Clock::now() - podmanStart);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(completed));
  if (podmanSeconds > 0) state.counters["podman_per_s"] = static_cast<double>(completed) / podmanSeconds;
}

// ---- Interactive streams: the manager's relay beside a direct path, in one run -------------

// A session for interactive benchmarks, RUNNING; its id, or why not.
bai::Result<std::string, std::string> runningSession(const Client& api, SessionSpec spec) {
  auto created = api.createSession(spec);
  if (!created) return bai::Failure<std::string>{"createSession: " + created.error().message()};
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    auto session = api.session(created->id);
    if (session && session->status == "RUNNING") return created->id;
    if (session && !session->exitCode.has_value() && session->status != "PENDING" && session->status != "SCHEDULED" &&
        session->status != "PREPARING") {
      return bai::Failure<std::string>{"session " + created->id + " is " + session->status};
    }
    std::this_thread::sleep_for(20ms);
  }
  return bai::Failure<std::string>{"session " + created->id + " did not run within 30 s"};
}

// Reads `stream` until `enough` says its Stdout so far is enough; false on its end.
bool receiveUntil(bai::client::SessionStream& stream, std::string& received, const std::function<bool(const std::string&)>& enough) {
  while (!enough(received)) {
    auto event = stream.receive(10s);
    if (event.kind != bai::client::StreamEvent::Kind::Stdout) return false;
    received += event.data;
  }
  return true;
}

// A local pseudo-terminal with `cat` on it: what a keystroke's echo costs with no network.
class LocalPty {
 public:
  LocalPty() {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0) return;
    const std::string slave = ::ptsname(master_);
    child_ = ::fork();
    if (child_ == 0) {
      ::setsid();
      const int fd = ::open(slave.c_str(), O_RDWR);
      ::dup2(fd, 0), ::dup2(fd, 1), ::dup2(fd, 2);
      ::execlp("cat", "cat", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~LocalPty() {
    if (child_ > 0) ::kill(child_, SIGKILL), ::waitpid(child_, nullptr, 0);
    if (master_ >= 0) ::close(master_);
  }
  bool ok() const { return master_ >= 0 && child_ > 0; }
  // One key and its echo.
  bool keystroke() {
    if (::write(master_, "x", 1) != 1) return false;
    char echo = 0;
    return ::read(master_, &echo, 1) == 1 && echo == 'x';
  }

 private:
  int master_ = -1;
  pid_t child_ = -1;
};

// A key typed into `cat` on a session's terminal and its echo back, through the manager
// and the agent (libbai-client's stream), beside the same on a local pseudo-terminal,
// alternating in one run: p50_us/p99_us (relay), local_p50_us/local_p99_us, added_p50_us.
void BM_KeystrokeRoundTrip(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  SessionSpec spec = trivialSession();
  spec.command = {"cat"};
  spec.tty = true;
  spec.openStdin = true;
  auto id = runningSession(c->api(), spec);
  if (!id) return fail(state, id.error());
  auto console = c->api().attachSession(*id, {24, 80});
  if (!console) return fail(state, "attachSession: " + console.error().message());
  LocalPty local;
  if (!local.ok()) return fail(state, "no local pseudo-terminal");
  std::vector<std::int64_t> relay, direct;
  for (auto _ : state) {
    const auto start = Clock::now();
    std::string echoed;
    if (!console->sendStdin("x") || !receiveUntil(*console, echoed, [](const std::string& got) { return !got.empty(); })) {
      return fail(state, "the keystroke's echo did not come back");
    }
    const auto elapsed = Clock::now() - start;
    state.SetIterationTime(seconds(elapsed));
    relay.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
    const auto localStart = Clock::now();
    if (!local.keystroke()) return fail(state, "the local echo did not come back");
    direct.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - localStart).count());
  }
  reportPercentiles(state, relay);
  reportPercentiles(state, direct, "local_");
  if (!relay.empty()) {
    state.counters["added_p50_us"] =
        (histogramOf(relay).percentile(0.5) - histogramOf(direct).percentile(0.5)) / 1e3;
  }
  console->close();
  (void)c->api().destroySession(*id);
}

// One HTTP/1.0 GET of `path` over `send`/`receive`; the body's bytes, or -1.
std::int64_t httpGet(const std::function<bool(const std::string&)>& send,
                     const std::function<std::optional<std::string>()>& receive, const std::string& path) {
  if (!send("GET " + path + " HTTP/1.0\r\n\r\n")) return -1;
  std::string head;
  std::int64_t bytes = 0;
  bool inBody = false;
  while (auto chunk = receive()) {
    if (inBody) {
      bytes += static_cast<std::int64_t>(chunk->size());
      continue;
    }
    head += *chunk;
    if (const auto end = head.find("\r\n\r\n"); end != std::string::npos) {
      if (head.compare(0, 12, "HTTP/1.0 200") != 0 && head.compare(0, 12, "HTTP/1.1 200") != 0) return -1;
      bytes = static_cast<std::int64_t>(head.size() - end - 4);
      inBody = true;
    }
  }
  return inBody ? bytes : -1;
}

constexpr std::int64_t kTunnelFileBytes = 64 << 20;

// A 64 MiB download from busybox httpd in a session through `bai session app`'s path (a
// stream per connection through the manager and the agent) beside the same GET on a
// direct loopback connection to the service's port, alternating in one run: MB_per_s and
// direct_MB_per_s, ratio_vs_direct.
void BM_TunnelThroughput(benchmark::State& state) {
  Cluster* c = cluster(state);
  if (c == nullptr) return;
  const char* busybox = "/bin/busybox";
  if (::access(busybox, X_OK) != 0) return fail(state, "no /bin/busybox (busybox-static) to serve the download");
  SessionSpec spec = trivialSession();
  spec.command = {"sh", "-c",
                  "head -c " + std::to_string(kTunnelFileBytes) + " /dev/zero > /home/work/data; echo port=$BAI_SERVICE_PORT_DATA; exec " +
                      busybox + " httpd -f -p 127.0.0.1:$BAI_SERVICE_PORT_DATA -h /home/work"};
  spec.servicePorts = {{"data", "http", 8080}};
  auto id = runningSession(c->api(), spec);
  if (!id) return fail(state, id.error());
  // The loopback port the agent gave the service, from the session's own output.
  int port = 0;
  for (const auto deadline = Clock::now() + 10s; port == 0 && Clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
    auto logs = c->api().sessionLogs(*id);
    if (logs && logs->find("port=") != std::string::npos) port = std::atoi(logs->c_str() + logs->find("port=") + 5);
  }
  if (port == 0) return fail(state, "the service did not say its port");
  std::this_thread::sleep_for(300ms);  // httpd binding
  double relaySeconds = 0, directSeconds = 0;
  std::int64_t relayBytes = 0, directBytes = 0;
  for (auto _ : state) {
    auto tunnel = c->api().connectService(*id, "data");
    if (!tunnel) return fail(state, "connectService: " + tunnel.error().message());
    const auto start = Clock::now();
    const std::int64_t got = httpGet([&](const std::string& text) { return tunnel->sendStdin(text); },
                                     [&]() -> std::optional<std::string> {
                                       auto event = tunnel->receive(10s);
                                       if (event.kind != bai::client::StreamEvent::Kind::Stdout) return std::nullopt;
                                       return std::move(event.data);
                                     },
                                     "/data");
    const auto elapsed = Clock::now() - start;
    if (got != kTunnelFileBytes) return fail(state, "the tunnel's download got " + std::to_string(got) + " bytes");
    state.SetIterationTime(seconds(elapsed));
    relaySeconds += seconds(elapsed);
    relayBytes += got;

    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto directStart = Clock::now();
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return fail(state, "connecting to the service directly failed");
    }
    std::string buffer(256 * 1024, '\0');
    const std::int64_t direct = httpGet(
        [&](const std::string& text) { return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()); },
        [&]() -> std::optional<std::string> {
          const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
          if (n <= 0) return std::nullopt;
          return buffer.substr(0, static_cast<std::size_t>(n));
        },
        "/data");
    directSeconds += seconds(Clock::now() - directStart);
    ::close(fd);
    if (direct != kTunnelFileBytes) return fail(state, "the direct download got " + std::to_string(direct) + " bytes");
    directBytes += direct;
  }
  if (relaySeconds > 0 && directSeconds > 0) {
    state.counters["MB_per_s"] = static_cast<double>(relayBytes) / relaySeconds / 1e6;
    state.counters["direct_MB_per_s"] = static_cast<double>(directBytes) / directSeconds / 1e6;
    state.counters["ratio_vs_direct"] = (static_cast<double>(relayBytes) / relaySeconds) / (static_cast<double>(directBytes) / directSeconds);
  }
  (void)c->api().destroySession(*id);
}

void registerBenchmarks() {
  benchmark::RegisterBenchmark("BM_SessionRoundTrip/client", BM_SessionRoundTripClient)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_SessionRoundTrip/cli", BM_SessionRoundTripCli)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_CliStartup", BM_CliStartup)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_Throughput", BM_Throughput)
      ->ArgName("queue")
      ->Arg(50)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_Throughput_LARGE", BM_Throughput)
      ->ArgName("queue")
      ->Arg(500)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_Submit", BM_Submit)
      ->ArgName("threads")
      ->Arg(1)
      ->Arg(4)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_KeystrokeRoundTrip", BM_KeystrokeRoundTrip)->UseManualTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_TunnelThroughput", BM_TunnelThroughput)->UseManualTime()->Unit(benchmark::kMillisecond);
  if (containersConfigured()) {
    benchmark::RegisterBenchmark("BM_ContainerRoundTrip", BM_ContainerRoundTrip)->UseManualTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_ContainerThroughput", BM_ContainerThroughput)->UseManualTime()->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (auto ready = bai::http::initialiseCurl(); !ready) {
    std::fprintf(stderr, "bench_session: %s\n", ready.error().message.c_str());
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  registerBenchmarks();
  if (!bai::bench::runSpecifiedBenchmarks(argc, argv)) return 1;
  currentCluster().reset();  // ends its sessions, stops the agent, then the manager
  return failedBenchmarks.load() == 0 ? 0 : 1;
}
