// Heartbeat throughput of a real bai-manager process: many simulated agents on loopback,
// each registered once with its full state (~2 KB, like a real GPU node's report), then
// sending heartbeats over kept-alive HTTP/1.1 connections.
//
//   BM_Heartbeat/digest/...      digest-only heartbeats: the manager only notes liveness
//   BM_Heartbeat/full_state/...  every heartbeat carries a changed full state: the worst
//                                case, every heartbeat is a store write (group-committed)
//   BM_Heartbeat/mixed_10pct_full/...  one agent in ten sends a changed full state; also
//                                reports digest_p50_us/digest_p99_us, the latency of the
//                                digest-only heartbeats among them
// each at store.synchronous = normal and full (written to the manager.toml of a temporary
// directory under $TMPDIR, which also holds the database and the cluster token), and each
//   rate:0      closed loop over 32 connections: the most the manager answers per second
//   rate:20000  open loop, 1,000 agents on their own connections offering 20,000/s between
//               them: whether the manager keeps up, and its latency while it does
//
// One iteration is one round, every agent sending one heartbeat (open loop: as many rounds
// as fill half a second at the offered rate). items_per_second is
// heartbeats per second over the rounds' wall time; p50_us/p99_us are per heartbeat, from
// when it was due to its answer. manager_cpu_us and generator_cpu_us are CPU time per
// heartbeat of the manager (all threads) and of this load generator: the load generator
// runs on the same machine as the manager and shares its cores, so it is one thread
// driving every connection through epoll, with requests built before the timing starts.
//
// The manager binary: $BAI_MANAGER, else the path meson built it at.

#include "secret_file.hpp"

#include <bai/protocol.hpp>

#include "bench_process.hpp"
#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
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

using namespace bai::bench;  // bench_support.hpp, bench_process.hpp

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
    const std::string binary = fromEnvOr("BAI_MANAGER", BAI_MANAGER_BUILD_PATH);
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
    pid_ = spawnDaemon({binary, "--config", config.string(), "--ready-file", ready.string()}, log_);
    if (pid_ < 0) return "cannot start " + binary;
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
    auto hostPort = address.rfind(':');
    if (hostPort == std::string::npos) return "bad ready file: " + address;
    port_ = static_cast<std::uint16_t>(std::stoul(address.substr(hostPort + 1)));
    return "";
  }

  void stop() { stopProcess(std::exchange(pid_, -1), "bai-manager"); }

  bool running() const {
    int status = 0;
    return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == 0;
  }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& token() const { return token_; }
  const std::string& synchronous() const { return synchronous_; }
  std::string logTail() const { return lastLines(log_); }

 private:
  TempDir dir_;
  std::string synchronous_;
  std::string token_;
  std::uint16_t port_ = 0;
  std::filesystem::path log_;
  pid_t pid_ = -1;
};

// ---- The load generator -------------------------------------------------------------------

// One kept-alive HTTP/1.1 connection to the manager, driven without blocking by the
// LoadGenerator's epoll loop: one request in flight at a time, like an agent.
struct Connection {
  int fd = -1;
  std::deque<std::size_t> queued;  // heartbeats (indexes into the round) waiting for this connection
  std::size_t current = 0;         // the heartbeat in flight
  bool busy = false;
  std::string out;
  std::size_t sent = 0;
  std::string in;
};

// Manager and load generator share the cores, so the generator must cost little: requests
// are pre-built bytes, one thread drives every connection through epoll, and a reply is
// parsed only as far as the status line, Content-Length and the JSON body.
class LoadGenerator {
 public:
  LoadGenerator() = default;
  ~LoadGenerator() {
    for (auto& connection : connections_) {
      if (connection.fd >= 0) ::close(connection.fd);
    }
    if (epoll_ >= 0) ::close(epoll_);
  }
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Empty on success, else why the connections could not be made.
  std::string connect(std::uint16_t port, std::size_t count) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return std::string("epoll_create1: ") + std::strerror(errno);
    connections_.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return std::string("socket: ") + std::strerror(errno);
      connections_[i].fd = fd;
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(port);
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        return "connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = i;
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) return std::string("epoll_ctl: ") + std::strerror(errno);
    }
    return "";
  }

  // Sends every request of `requests` once and waits for every answer. rate 0: closed
  // loop, each connection sends its next request as soon as the last is answered. rate R:
  // open loop, request k is due at k/R seconds and goes over connection k % connections;
  // its latency counts from when it was due, so a manager that falls behind shows in the
  // percentiles instead of slowing the generator down (no coordinated omission).
  // latencies[k] gets request k's latency in nanoseconds. Returns the wall time.
  Clock::duration run(const std::vector<std::string>& requests, double rate, std::vector<std::int64_t>& latencies,
                      std::string& failure) {
    const std::size_t total = requests.size();
    latencies.assign(total, 0);
    due_.assign(total, Clock::time_point());
    std::size_t next = 0, answered = 0;
    const auto start = Clock::now();
    auto scheduleDue = [&](Clock::time_point now) {
      if (rate > 0) {
        for (; next < total; ++next) {
          due_[next] = start + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(next) * 1e9 / rate));
          if (due_[next] > now) break;
          Connection& connection = connections_[next % connections_.size()];
          connection.queued.push_back(next);
          if (!connection.busy) send(connection, requests, failure);
        }
        return;
      }
      for (auto& connection : connections_) {
        if (next < total && !connection.busy) {
          due_[next] = now;
          connection.queued.push_back(next++);
          send(connection, requests, failure);
        }
      }
    };
    scheduleDue(start);
    std::vector<epoll_event> events(connections_.size());
    while (answered < total && failure.empty()) {
      int timeoutMs = -1;
      if (rate > 0 && next < total) {
        const auto wait = std::chrono::duration_cast<std::chrono::microseconds>(due_[next] - Clock::now()).count();
        timeoutMs = wait <= 0 ? 0 : static_cast<int>((wait + 999) / 1000);
      }
      const int ready = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeoutMs);
      if (ready < 0 && errno != EINTR) failure = std::string("epoll_wait: ") + std::strerror(errno);
      const auto now = Clock::now();
      for (int e = 0; e < ready; ++e) {
        Connection& connection = connections_[events[static_cast<std::size_t>(e)].data.u64];
        if (events[static_cast<std::size_t>(e)].events & EPOLLOUT) flush(connection, failure);
        if (!(events[static_cast<std::size_t>(e)].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
        if (!receive(connection, failure)) continue;
        latencies[connection.current] = std::chrono::duration_cast<std::chrono::nanoseconds>(now - due_[connection.current]).count();
        ++answered;
        connection.busy = false;
        if (!connection.queued.empty()) send(connection, requests, failure);
      }
      scheduleDue(now);
    }
    return Clock::now() - start;
  }

 private:
  void send(Connection& connection, const std::vector<std::string>& requests, std::string& failure) {
    connection.current = connection.queued.front();
    connection.queued.pop_front();
    connection.busy = true;
    connection.out = requests[connection.current];
    connection.sent = 0;
    connection.in.clear();
    flush(connection, failure);
  }

  void flush(Connection& connection, std::string& failure) {
    while (connection.sent < connection.out.size()) {
      const ssize_t n = ::write(connection.fd, connection.out.data() + connection.sent, connection.out.size() - connection.sent);
      if (n > 0) {
        connection.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      failure = std::string("write: ") + std::strerror(errno);
      return;
    }
    epoll_event event{};
    event.events = connection.sent < connection.out.size() ? EPOLLIN | EPOLLOUT : EPOLLIN;
    event.data.u64 = static_cast<std::uint64_t>(&connection - connections_.data());
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, connection.fd, &event);
  }

  // True once the whole reply to the request in flight is in and checked.
  bool receive(Connection& connection, std::string& failure) {
    char buffer[4096];
    while (true) {
      const ssize_t n = ::read(connection.fd, buffer, sizeof buffer);
      if (n > 0) {
        connection.in.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        failure = "the manager closed a connection";
        return false;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      failure = std::string("read: ") + std::strerror(errno);
      return false;
    }
    const std::size_t headerEnd = connection.in.find("\r\n\r\n");
    if (headerEnd == std::string::npos) return false;
    std::string head = connection.in.substr(0, headerEnd);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::size_t lengthAt = head.find("\r\ncontent-length:");
    if (lengthAt == std::string::npos) {
      failure = "a reply without Content-Length: " + head;
      return false;
    }
    const std::size_t length = std::strtoul(head.c_str() + lengthAt + 17, nullptr, 10);
    if (connection.in.size() < headerEnd + 4 + length) return false;
    const std::string body = connection.in.substr(headerEnd + 4, length);
    if (head.compare(0, 12, "http/1.1 200") != 0) {
      failure = connection.in.substr(0, connection.in.find("\r\n")) + ": " + body;
      return false;
    }
    auto reply = protocol::HeartbeatReply::fromJson(body);
    if (!reply) {
      failure = reply.error().message;
      return false;
    }
    if (reply->sendFull) {
      failure = "the manager asks for the full state (it lost track of the digest)";
      return false;
    }
    return true;
  }

  int epoll_ = -1;
  std::vector<Connection> connections_;
  std::vector<Clock::time_point> due_;
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
  protocol::AgentState state;
  std::uint64_t digest = 0;
};

// A round's heartbeats: one request per agent, and whether it carries the full state.
struct Round {
  std::vector<std::string> requests;
  std::vector<bool> full;
  std::size_t bodyBytes = 0;
};

// GET `path` from 127.0.0.1:port with the bearer token, on a connection of its own; the
// body, or empty when the manager did not answer 200.
std::string fetch(std::uint16_t port, const std::string& token, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
                                "\r\nConnection: close\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) reply.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  const std::size_t body = reply.find("\r\n\r\n");
  return reply.rfind("HTTP/1.1 200", 0) == 0 && body != std::string::npos ? reply.substr(body + 4) : "";
}

// A counter's value in the manager's Prometheus text, or -1.
double metric(const std::string& text, const std::string& name) {
  const std::size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::strtod(text.c_str() + at + name.size() + 2, nullptr);
}

// A manager with its agents registered, and the connections that carry their heartbeats.
class HeartbeatCluster {
 public:
  HeartbeatCluster(const std::string& synchronous, std::size_t agents, std::size_t connections)
      : manager_(synchronous), agentCount_(agents), connectionCount_(connections) {}

  std::string start() {
    if (std::string failed = manager_.start(); !failed.empty()) return failed;
    if (std::string failed = load_.connect(manager_.port(), connectionCount_); !failed.empty()) return failed;
    for (std::size_t i = 0; i < agentCount_; ++i) {
      SimulatedAgent agent;
      char id[32];
      std::snprintf(id, sizeof id, "agent-%06zu", i);
      agent.id = id;
      agent.state = gpuNodeState(i);
      agent.digest = 1000 + i;
      agents_.push_back(std::move(agent));
    }
    Round registrations;
    for (const auto& agent : agents_) {
      registrations.requests.push_back(request(agent.id, "register", protocol::Heartbeat{agent.id, agent.digest, agent.state}.toJson()));
      registrations.full.push_back(true);
    }
    std::vector<std::int64_t> latencies;
    std::string failure;
    load_.run(registrations.requests, 0, latencies, failure);
    return failure.empty() ? "" : "registration failed: " + failure;
  }

  // The next `repeats` rounds: in each, one agent in `fullEvery` (rotating; 1: all, 0:
  // none) sends its full state with a new digest, the others their current digest only. A full state differs
  // from the last one as after a session started or ended (the largest number of GPUs one
  // session could get now), so the manager must save it: an unchanged one writes nothing.
  Round nextRound(std::size_t fullEvery, std::size_t repeats) {
    Round next;
    next.requests.reserve(agents_.size() * repeats);
    for (std::size_t k = 0; k < agents_.size() * repeats; ++k) {
      const std::size_t i = k % agents_.size();
      if (i == 0 && k != 0) ++rounds_;
      SimulatedAgent& agent = agents_[i];
      const bool full = fullEvery != 0 && (i + rounds_) % fullEvery == 0;
      std::string body;
      if (full) {
        ++agent.digest;
        const auto gpus = SlotName::of("cuda.device");
        agent.state.largestAllocatable.set(gpus, Quantity(agent.state.largestAllocatable.get(gpus) == Quantity(8) ? 7 : 8));
        body = protocol::Heartbeat{agent.id, agent.digest, agent.state}.toJson();
      } else {
        body = protocol::Heartbeat{agent.id, agent.digest, std::nullopt}.toJson();
      }
      next.bodyBytes += body.size();
      next.requests.push_back(request(agent.id, "heartbeat", body));
      next.full.push_back(full);
    }
    ++rounds_;
    return next;
  }

  Clock::duration round(const Round& round, double rate, std::vector<std::int64_t>& latencies, std::string& failure) {
    return load_.run(round.requests, rate, latencies, failure);
  }

  bool matches(const std::string& synchronous, std::size_t agents, std::size_t connections) const {
    return manager_.synchronous() == synchronous && agentCount_ == agents && connectionCount_ == connections;
  }
  ManagerProcess& manager() { return manager_; }
  std::string metrics() const { return fetch(manager_.port(), manager_.token(), "/metrics"); }

 private:
  std::string request(const std::string& agentId, const char* what, const std::string& body) const {
    return "POST /v1/agents/" + agentId + "/" + what + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           manager_.token() + "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }

  ManagerProcess manager_;
  std::size_t agentCount_;
  std::size_t connectionCount_;
  LoadGenerator load_;
  std::vector<SimulatedAgent> agents_;
  std::size_t rounds_ = 0;
};

// One cluster at a time, kept between the runs libbenchmark makes of one benchmark (and
// between benchmarks of the same shape); replaced when the shape changes.
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

// fullEvery: 0 digest-only heartbeats, 1 every heartbeat a changed full state, N one in N.
// range(2): heartbeats offered per second (0: closed loop, as fast as answered).
void BM_Heartbeat(benchmark::State& state, std::size_t fullEvery, std::string synchronous) {
  HeartbeatCluster* cluster = clusterFor(state, synchronous);
  if (cluster == nullptr) return;
  const double rate = static_cast<double>(state.range(2));
  // An open-loop iteration lasts about half a second, so that the answer time of its last
  // heartbeats does not drag the measured rate below the offered one.
  const std::size_t agents = static_cast<std::size_t>(state.range(0));
  const std::size_t repeats = rate > 0 ? std::max<std::size_t>(1, static_cast<std::size_t>(rate / 2) / agents) : 1;
  std::vector<std::int64_t> samples, digestSamples, latencies;
  std::size_t bodyBytes = 0, heartbeats = 0;
  const double managerCpuBefore = processCpuSeconds(cluster->manager().pid());
  const std::string metricsBefore = cluster->metrics();
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  for (auto _ : state) {
    state.PauseTiming();  // manual time anyway; this keeps CPU time honest too
    const Round next = cluster->nextRound(fullEvery, repeats);
    state.ResumeTiming();
    std::string failure;
    const auto elapsed = cluster->round(next, rate, latencies, failure);
    state.SetIterationTime(seconds(elapsed));
    bodyBytes += next.bodyBytes;
    heartbeats += next.requests.size();
    samples.insert(samples.end(), latencies.begin(), latencies.end());
    for (std::size_t i = 0; i < latencies.size(); ++i) {
      if (!next.full[i]) digestSamples.push_back(latencies[i]);
    }
    if (!failure.empty()) {
      if (!cluster->manager().running()) failure += "; the manager died: " + cluster->manager().logTail();
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  if (heartbeats == 0) return;
  const double count = static_cast<double>(heartbeats);
  auto cpuSeconds = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  state.SetItemsProcessed(static_cast<std::int64_t>(heartbeats));
  state.counters["body_bytes"] = static_cast<double>(bodyBytes) / count;
  // CPU per heartbeat: on shared cores a steadier figure than the rate, and it tells the
  // manager's cost from the load generator's.
  state.counters["manager_cpu_us"] = (processCpuSeconds(cluster->manager().pid()) - managerCpuBefore) * 1e6 / count;
  state.counters["generator_cpu_us"] = (cpuSeconds(after) - cpuSeconds(before)) * 1e6 / count;
  if (rate > 0) state.counters["offered_per_s"] = rate;
  // Group commit at work: changed agents' rows saved per store transaction.
  const std::string metricsAfter = cluster->metrics();
  const double rows = metric(metricsAfter, "bai_manager_agent_rows_saved_total") - metric(metricsBefore, "bai_manager_agent_rows_saved_total");
  const double commits = metric(metricsAfter, "bai_manager_agent_row_batches_total") - metric(metricsBefore, "bai_manager_agent_row_batches_total");
  if (rows > 0 && commits > 0) state.counters["rows_per_commit"] = rows / commits;
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
          ->ArgNames({"agents", "connections", "rate"})
          ->Args({1000, 32, 0})        // closed loop: the most the manager answers
          ->Args({1000, 1000, 20000})  // 1,000 agents offering 20,000 heartbeats/s: the target
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  registerHeartbeats();
  if (!bai::bench::runSpecifiedBenchmarks(argc, argv)) return 1;
  currentCluster().reset();  // stops the manager
  return 0;
}
