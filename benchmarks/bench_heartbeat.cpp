// Heartbeat throughput of a real bai-manager process: many simulated agents on loopback,
// each registered once with its full state (~2 KB, like a real GPU node's report), then
// sending heartbeats over kept-alive connections (one libcurl easy handle per connection,
// one thread per connection).
//
//   BM_Heartbeat/digest/...      digest-only heartbeats: the manager only notes liveness
//   BM_Heartbeat/full_state/...  every heartbeat carries the full state with a new digest:
//                                the worst case, every heartbeat is a store write
//   BM_Heartbeat/mixed_10pct_full/...  one agent in ten sends a changed full state; also
//                                reports digest_p50_us/digest_p99_us, the latency of the
//                                digest-only heartbeats among them
// each at store.synchronous = normal and full (written to the manager.toml of a temporary
// directory under $TMPDIR, which also holds the database and the cluster token).
//
// One iteration is one round: every agent sends one heartbeat, spread over the
// connections. items_per_second is heartbeats per second over the rounds' wall time;
// p50_us/p99_us are per heartbeat, measured by the client around each request. The load
// generator runs on the same machine as the manager and shares its cores.
//
// The manager binary: $BAI_MANAGER, else the path meson built it at.

#include "secret_file.hpp"

#include <bai/protocol.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>
#include <curl/curl.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef BAI_MANAGER_BUILD_PATH
#define BAI_MANAGER_BUILD_PATH ""
#endif

namespace {

using bai::Quantity;
using bai::SlotName;
using bai::SlotType;
namespace protocol = bai::protocol;

using bai::bench::Clock;
using bai::bench::reportPercentiles;
using bai::bench::seconds;
using bai::bench::TempDir;

// ---- Helpers --------------------------------------------------------------------------

Quantity gib(std::int64_t n) { return Quantity(n << 30); }

std::string lastLines(const std::filesystem::path& file, std::size_t bytes = 1500) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

// ---- The manager process --------------------------------------------------------------

// bai-manager started on 127.0.0.1:0 with its own database, token and manager.toml;
// stopped with SIGTERM (SIGKILL after 10 s) when destroyed. It also dies with this
// process (PR_SET_PDEATHSIG), so a crashed benchmark leaves no daemon behind.
class ManagerProcess {
 public:
  explicit ManagerProcess(const std::string& synchronous) : synchronous_(synchronous) {}
  ~ManagerProcess() { stop(); }
  ManagerProcess(const ManagerProcess&) = delete;
  ManagerProcess& operator=(const ManagerProcess&) = delete;

  // Empty on success, else why it did not start.
  std::string start() {
    const char* fromEnv = std::getenv("BAI_MANAGER");
    const std::string binary = fromEnv != nullptr && *fromEnv != '\0' ? fromEnv : BAI_MANAGER_BUILD_PATH;
    if (binary.empty() || ::access(binary.c_str(), X_OK) != 0) {
      return "no bai-manager binary at '" + binary + "' (set BAI_MANAGER)";
    }
    token_ = "bench-heartbeat-token-" + std::to_string(::getpid());
    const auto tokenFile = dir_.path() / "cluster-token";
    if (auto written = bai::writeSecretFile(tokenFile, token_ + "\n"); !written) return written.error().message;
    const auto config = dir_.path() / "manager.toml";
    std::ofstream(config) << "[manager]\n"
                          << "listen = \"127.0.0.1:0\"\n"
                          << "db = \"sqlite://" << (dir_.path() / "manager.db").string() << "\"\n"
                          << "cluster-token-file = \"" << tokenFile.string() << "\"\n"
                          << "log-level = \"warning\"\n"
                          << "[agents]\n"
                          << "heartbeat-timeout = 3600\n"  // rounds are not paced like real heartbeats
                          << "[store]\n"
                          << "synchronous = \"" << synchronous_ << "\"\n";
    const auto ready = dir_.path() / "ready";
    log_ = dir_.path() / "manager.log";
    std::vector<std::string> args = {binary, "--config", config.string(), "--ready-file", ready.string()};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int logFd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (logFd < 0) return "cannot create " + log_.string();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(logFd, STDOUT_FILENO);
      ::dup2(logFd, STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(logFd);
    if (pid_ < 0) return "fork failed";
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!std::filesystem::exists(ready)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "bai-manager exited at start: " + lastLines(log_);
      }
      if (Clock::now() > deadline) return "bai-manager not ready after 30 s: " + lastLines(log_);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::string address;
    std::ifstream(ready) >> address;
    baseUrl_ = "http://" + address;
    return "";
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "bench_heartbeat: bai-manager ignored SIGTERM for 10 s; killing it\n");
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  bool running() const {
    int status = 0;
    return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == 0;
  }
  const std::string& baseUrl() const { return baseUrl_; }
  const std::string& token() const { return token_; }
  const std::string& synchronous() const { return synchronous_; }
  std::string logTail() const { return lastLines(log_); }

 private:
  TempDir dir_;
  std::string synchronous_;
  std::string token_;
  std::string baseUrl_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
};

// ---- The load generator -------------------------------------------------------------------

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One libcurl easy handle: one kept-alive connection, used by one thread at a time.
class Connection {
 public:
  explicit Connection(const std::string& token) : easy_(curl_easy_init()) {
    headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + token).c_str());
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip for bodies over 1 KiB
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(easy_, CURLOPT_POST, 1L);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &reply_);
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, 30000L);
  }
  ~Connection() {
    curl_easy_cleanup(easy_);
    curl_slist_free_all(headers_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Empty when the manager answered 200 with a heartbeat reply that does not ask for
  // the full state; else what went wrong.
  std::string heartbeat(const std::string& url, const std::string& body) {
    reply_.clear();
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    const CURLcode code = curl_easy_perform(easy_);
    if (code != CURLE_OK) return url + ": " + curl_easy_strerror(code);
    long status = 0, connects = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy_, CURLINFO_NUM_CONNECTS, &connects);
    connects_ += connects;
    if (status != 200) return url + ": HTTP " + std::to_string(status) + " " + reply_;
    auto reply = protocol::HeartbeatReply::fromJson(reply_);
    if (!reply) return url + ": " + reply.error().message;
    if (reply->sendFull) return url + ": the manager asks for the full state (it lost track of the digest)";
    return "";
  }

  long takeConnects() { return std::exchange(connects_, 0); }

 private:
  CURL* easy_;
  curl_slist* headers_ = nullptr;
  std::string reply_;
  long connects_ = 0;
};

// A GPU node's report as the agent sends it: cpu, mem and 8 GPUs, two plugins with
// their discovery details, a health entry per GPU. About 2 KB of JSON.
protocol::AgentState gpuNodeState(std::size_t index) {
  protocol::AgentState state;
  state.rpcAddress = "http://10.1." + std::to_string(index / 250) + "." + std::to_string(index % 250) + ":6001";
  state.region = "eu-west-1";
  state.scalingGroup = "default";
  state.architecture = "x86_64";
  state.version = "26.11.0";
  const std::vector<std::pair<const char*, Quantity>> capacity = {
      {"cpu", Quantity(64)}, {"mem", gib(512)}, {"cuda.device", Quantity(8)}};
  for (const auto& [slot, amount] : capacity) {
    state.available.set(SlotName::of(slot), amount);
    state.occupied.set(SlotName::of(slot), Quantity());
    state.largestAllocatable.set(SlotName::of(slot), amount);
  }
  state.slotTypes = {{"cpu", SlotType::Count}, {"mem", SlotType::Bytes}, {"cuda.device", SlotType::Count}};
  state.plugins.push_back({"cpu", "26.11.0", "cpu",
                           R"({"cores":64,"numa_nodes":2,"model":"AMD EPYC 7543 32-Core Processor","hwloc":"2.9.0",)"
                           R"("cpu_overcommit":1.0,"mem_overcommit":1.0,"reserved_cores":[0,1]})"});
  state.plugins.push_back({"cuda-device", "26.11.0", "cuda",
                           R"({"driver_version":"550.54.15","cuda_version":"12.4","nvml_version":"12.550.54.15",)"
                           R"("library":"libnvidia-ml.so.1","devices":8,"model":"NVIDIA H100 80GB HBM3","mig":false,)"
                           R"("pci_bus_ids":["0000:18:00.0","0000:2a:00.0","0000:3a:00.0","0000:5d:00.0",)"
                           R"("0000:9a:00.0","0000:ab:00.0","0000:ba:00.0","0000:db:00.0"],"memory_mib":81559})"});
  for (int gpu = 0; gpu < 8; ++gpu) {
    char uuid[64];
    std::snprintf(uuid, sizeof uuid, "GPU-%08zx-4b1e-%04x-9c3d-5a6f7e8d9c%02d", index, gpu * 4111, gpu);
    state.deviceHealth.push_back({"cuda", uuid, "healthy", ""});
  }
  return state;
}

struct SimulatedAgent {
  std::string id;
  std::string heartbeatUrl;
  std::string registerUrl;
  protocol::AgentState state;
  std::uint64_t digest = 0;
};

// A round's heartbeats: what each agent sends, and whether it is a full state.
struct Round {
  std::vector<std::string> bodies;
  std::vector<bool> full;
};

struct ThreadTally {
  std::vector<std::int64_t> latencies;        // nanoseconds, every heartbeat
  std::vector<std::int64_t> digestLatencies;  // nanoseconds, digest-only heartbeats
  std::uint64_t failures = 0;
  std::string firstFailure;
};

// A manager with its agents registered and one connection per load thread.
class HeartbeatCluster {
 public:
  HeartbeatCluster(const std::string& synchronous, std::size_t agents, std::size_t connections)
      : manager_(synchronous), agentCount_(agents), connectionCount_(connections) {}

  std::string start() {
    if (std::string failed = manager_.start(); !failed.empty()) return failed;
    for (std::size_t i = 0; i < connectionCount_; ++i) connections_.push_back(std::make_unique<Connection>(manager_.token()));
    for (std::size_t i = 0; i < agentCount_; ++i) {
      SimulatedAgent agent;
      char id[32];
      std::snprintf(id, sizeof id, "agent-%06zu", i);
      agent.id = id;
      agent.heartbeatUrl = manager_.baseUrl() + "/v1/agents/" + agent.id + "/heartbeat";
      agent.registerUrl = manager_.baseUrl() + "/v1/agents/" + agent.id + "/register";
      agent.state = gpuNodeState(i);
      agent.digest = 1000 + i;
      agents_.push_back(std::move(agent));
    }
    Round registrations;
    for (const auto& agent : agents_) {
      registrations.bodies.push_back(protocol::Heartbeat{agent.id, agent.digest, agent.state}.toJson());
      registrations.full.push_back(true);
    }
    std::vector<ThreadTally> tallies;
    round(registrations, true, tallies);
    for (const auto& tally : tallies) {
      if (tally.failures != 0) return "registration failed: " + tally.firstFailure;
    }
    takeConnects();
    return "";
  }

  // The next round: one agent in `fullEvery` (rotating; 1: all, 0: none) sends its full
  // state with a new digest, the others their current digest only.
  Round nextRound(std::size_t fullEvery) {
    Round next;
    next.bodies.reserve(agents_.size());
    for (std::size_t i = 0; i < agents_.size(); ++i) {
      SimulatedAgent& agent = agents_[i];
      const bool full = fullEvery != 0 && (i + rounds_) % fullEvery == 0;
      if (full) {
        ++agent.digest;
        next.bodies.push_back(protocol::Heartbeat{agent.id, agent.digest, agent.state}.toJson());
      } else {
        next.bodies.push_back(protocol::Heartbeat{agent.id, agent.digest, std::nullopt}.toJson());
      }
      next.full.push_back(full);
    }
    ++rounds_;
    return next;
  }

  // Every agent sends bodies[i] once; agent i goes over connection i % connections, each
  // connection on its own thread. Returns the round's wall time.
  Clock::duration round(const Round& heartbeats, bool registering, std::vector<ThreadTally>& tallies) {
    tallies.assign(connections_.size(), ThreadTally{});
    for (auto& tally : tallies) {
      tally.latencies.reserve(agents_.size() / connections_.size() + 1);
      tally.digestLatencies.reserve(agents_.size() / connections_.size() + 1);
    }
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (std::size_t t = 0; t < connections_.size(); ++t) {
      threads.emplace_back([&, t] {
        Connection& connection = *connections_[t];
        ThreadTally& tally = tallies[t];
        for (std::size_t i = t; i < agents_.size(); i += connections_.size()) {
          const SimulatedAgent& agent = agents_[i];
          const auto sent = Clock::now();
          std::string failed =
              connection.heartbeat(registering ? agent.registerUrl : agent.heartbeatUrl, heartbeats.bodies[i]);
          const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sent).count();
          tally.latencies.push_back(took);
          if (!heartbeats.full[i]) tally.digestLatencies.push_back(took);
          if (!failed.empty() && tally.failures++ == 0) tally.firstFailure = std::move(failed);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    return Clock::now() - start;
  }

  long takeConnects() {
    long total = 0;
    for (auto& connection : connections_) total += connection->takeConnects();
    return total;
  }

  bool matches(const std::string& synchronous, std::size_t agents, std::size_t connections) const {
    return manager_.synchronous() == synchronous && agentCount_ == agents && connectionCount_ == connections;
  }
  ManagerProcess& manager() { return manager_; }

 private:
  ManagerProcess manager_;
  std::size_t agentCount_;
  std::size_t connectionCount_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<SimulatedAgent> agents_;
  std::size_t rounds_ = 0;
};

// One cluster at a time, kept between the runs libbenchmark makes of one benchmark (and
// between benchmarks of the same synchronous mode); replaced when the mode changes.
std::unique_ptr<HeartbeatCluster>& currentCluster() {
  static std::unique_ptr<HeartbeatCluster> cluster;
  return cluster;
}

HeartbeatCluster* clusterFor(benchmark::State& state, const std::string& synchronous) {
  const auto agents = static_cast<std::size_t>(state.range(0));
  const auto connections = static_cast<std::size_t>(state.range(1));
  auto& cluster = currentCluster();
  if (cluster && cluster->matches(synchronous, agents, connections) && cluster->manager().running()) return cluster.get();
  cluster.reset();  // stops the previous manager first: never two on the shared cores
  auto fresh = std::make_unique<HeartbeatCluster>(synchronous, agents, connections);
  if (std::string failed = fresh->start(); !failed.empty()) {
    state.SkipWithError(failed.c_str());
    return nullptr;
  }
  cluster = std::move(fresh);
  return cluster.get();
}

// fullEvery: 0 digest-only heartbeats, 1 every heartbeat a full state, N one in N.
void BM_Heartbeat(benchmark::State& state, std::size_t fullEvery, std::string synchronous) {
  HeartbeatCluster* cluster = clusterFor(state, synchronous);
  if (cluster == nullptr) return;
  std::vector<std::int64_t> samples, digestSamples;
  std::vector<ThreadTally> tallies;
  std::size_t bodyBytes = 0, heartbeats = 0;
  cluster->takeConnects();
  for (auto _ : state) {
    state.PauseTiming();  // manual time anyway; this keeps CPU time honest too
    const Round next = cluster->nextRound(fullEvery);
    state.ResumeTiming();
    const auto elapsed = cluster->round(next, false, tallies);
    state.SetIterationTime(seconds(elapsed));
    for (const auto& body : next.bodies) bodyBytes += body.size();
    heartbeats += next.bodies.size();
    std::string failure;
    for (auto& tally : tallies) {
      samples.insert(samples.end(), tally.latencies.begin(), tally.latencies.end());
      digestSamples.insert(digestSamples.end(), tally.digestLatencies.begin(), tally.digestLatencies.end());
      if (tally.failures != 0 && failure.empty()) failure = std::to_string(tally.failures) + " failed: " + tally.firstFailure;
    }
    if (!failure.empty()) {
      if (!cluster->manager().running()) failure += "; the manager died: " + cluster->manager().logTail();
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(heartbeats));
  state.counters["new_connections"] = static_cast<double>(cluster->takeConnects());
  if (heartbeats != 0) state.counters["body_bytes"] = static_cast<double>(bodyBytes) / static_cast<double>(heartbeats);
  reportPercentiles(state, samples, "");
  // Mixed rounds: how long the cheap heartbeats wait behind the store writes of others.
  if (fullEvery > 1) reportPercentiles(state, digestSamples, "digest_");
}

void registerHeartbeats() {
  struct Variant {
    const char* name;
    std::size_t fullEvery;
  };
  static constexpr Variant kVariants[] = {{"digest", 0}, {"full_state", 1}, {"mixed_10pct_full", 10}};
  for (const char* synchronous : {"normal", "full"}) {
    for (const Variant& variant : kVariants) {
      const std::string name = std::string("BM_Heartbeat/") + variant.name + "/sync:" + synchronous;
      benchmark::RegisterBenchmark(name.c_str(), BM_Heartbeat, variant.fullEvery, std::string(synchronous))
          ->ArgNames({"agents", "connections"})
          ->Args({1000, 8})
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fprintf(stderr, "bench_heartbeat: libcurl initialisation failed\n");
    return 1;
  }
  registerHeartbeats();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  currentCluster().reset();  // stops the manager
  curl_global_cleanup();
  return 0;
}
