// A container engine in memory, for the container runtime's tests: containers run a
// script (output, then an exit code, or until a signal), and the test can take the engine
// down, lose containers and look at what was created. Calls behave as the Docker API's do.
// Interactive attaches and execs behave as `cat` would: what is written to stdin comes back
// as stdout, and an exec without a scripted exit code ends with 0 when its stdin ends.
#pragma once

#include "runtime/container_engine.hpp"

#include <condition_variable>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::core::testing {

class MemoryEngine final : public ContainerEngine {
 public:
  struct Script {
    std::vector<std::pair<int, std::string>> output;  // written at start
    std::optional<int> exitCode = 0;                  // nullopt: runs until killed
    bool ignoreTerm = false;
    bool oom = false;
  };

  struct Container {
    ContainerSpec spec;
    std::string status = "created";
    int exitCode = 0;
    bool oom = false;
    Script script;
    std::vector<std::pair<int, std::string>> log;
    OutputSink sink;
    std::function<void(Result<void>)> ended;
    std::string stdinReceived;   // everything written through interactive attaches
    std::pair<std::uint16_t, std::uint16_t> ttySize{0, 0};  // rows, cols of the last resize
  };

  struct Exec {
    std::string container;  // its name
    ExecSpec spec;
    Script script;  // exitCode nullopt: runs until its stdin ends, then exits 0
    bool started = false;
    bool running = false;
    std::optional<int> exitCode;
    std::pair<std::uint16_t, std::uint16_t> ttySize{0, 0};
    OutputSink sink;
    std::function<void(Result<void>)> ended;
  };

  // Shared with the test after the runtime took ownership.
  struct State {
    std::mutex mutex;
    std::condition_variable changed;
    bool down = false;
    std::set<std::string> images{"bai-test/busybox:1"};
    std::set<std::string> pullable;
    std::map<std::string, std::map<std::string, std::string>> imageLabels;  // by image name, for inspectImage
    std::chrono::milliseconds pullTakes{0};
    std::map<std::string, Container> containers;  // by name
    std::function<Script(const ContainerSpec&)> scriptFor = [](const ContainerSpec&) { return Script{}; };
    std::function<Script(const ExecSpec&)> execScriptFor = [](const ExecSpec&) { return Script{}; };
    std::map<std::string, Exec> execs;  // by id
    std::vector<std::string> calls;
    int created = 0;
  };

  explicit MemoryEngine(std::shared_ptr<State> state) : s_(std::move(state)) {}

  Result<EngineInfo> info() override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("version")) return Failure{*down};
    return EngineInfo{EngineFlavor::Podman, "4.3.1", "1.41"};
  }
  Result<std::vector<ImageRecord>> images() override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("images")) return Failure{*down};
    std::vector<ImageRecord> out;
    for (const auto& name : s_->images) out.push_back({"sha256:" + name, {"localhost/" + name}, 1000, {}});
    return out;
  }
  Result<ImageRecord> inspectImage(const std::string& name) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("image")) return Failure{*down};
    if (s_->images.count(name) == 0) return fail(ErrorCode::NotFound, "inspect image " + name + ": no such image");
    auto labels = s_->imageLabels.find(name);
    return ImageRecord{"sha256:" + name, {name}, 1000, labels == s_->imageLabels.end() ? std::map<std::string, std::string>{} : labels->second};
  }
  Result<void> pullImage(const std::string& name) override {
    std::unique_lock<std::mutex> lock(s_->mutex);
    if (s_->pullTakes.count() > 0) {
      lock.unlock();
      std::this_thread::sleep_for(s_->pullTakes);
      lock.lock();
    }
    s_->calls.push_back("pull " + name);
    if (auto down = unreachable("pull")) return Failure{*down};
    if (s_->pullable.count(name) == 0) return fail(ErrorCode::Internal, "pull " + name + ": manifest unknown");
    s_->images.insert(name);
    return {};
  }
  Result<std::string> create(const ContainerSpec& spec) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    s_->calls.push_back("create " + spec.name);
    if (auto down = unreachable("create")) return Failure{*down};
    if (s_->containers.count(spec.name) != 0) return fail(ErrorCode::Conflict, "create " + spec.name + ": name in use");
    if (s_->images.count(spec.image) == 0) return fail(ErrorCode::NotFound, "create: no such image " + spec.image);
    Container c;
    c.spec = spec;
    c.script = s_->scriptFor(spec);
    s_->containers[spec.name] = std::move(c);
    ++s_->created;
    return spec.name;
  }
  Result<void> attach(const std::string& id, OutputSink sink, std::function<void(Result<void>)> ended) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("attach")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "attach " + id + ": no such container");
    c->sink = std::move(sink);
    c->ended = std::move(ended);
    return {};
  }
  Result<std::unique_ptr<EngineStream>> attachInteractive(const std::string& id, OutputSink sink,
                                                          std::function<void(Result<void>)> ended) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    s_->calls.push_back("attach-interactive " + id);
    if (auto down = unreachable("attach")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "attach " + id + ": no such container");
    if (!c->spec.openStdin) return fail(ErrorCode::Conflict, "attach " + id + ": created without stdin");
    c->sink = std::move(sink);
    c->ended = std::move(ended);
    return std::unique_ptr<EngineStream>(std::make_unique<Stdin>(s_, id, false));
  }
  Result<void> resize(const std::string& id, std::uint16_t rows, std::uint16_t cols) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("resize")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "resize " + id + ": no such container");
    if (c->status != "running") return fail(ErrorCode::Conflict, "resize " + id + ": not running");
    c->ttySize = {rows, cols};
    return {};
  }
  Result<void> start(const std::string& id) override {
    std::unique_lock<std::mutex> lock(s_->mutex);
    s_->calls.push_back("start " + id);
    if (auto down = unreachable("start")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "start " + id + ": no such container");
    if (c->spec.command == std::vector<std::string>{"no-such-command"}) {
      return fail(ErrorCode::Internal, "start " + id + ": executable file not found in $PATH");
    }
    c->status = "running";
    for (const auto& [stream, bytes] : c->script.output) {
      c->log.emplace_back(stream, bytes);
      if (c->sink) c->sink(stream, bytes);
    }
    if (c->script.oom) end(*c, 137, true);
    else if (c->script.exitCode) end(*c, *c->script.exitCode, false);
    return {};
  }
  Result<int> wait(const std::string& id) override {
    std::unique_lock<std::mutex> lock(s_->mutex);
    while (true) {
      if (shut_) return fail(ErrorCode::Internal, "engine unreachable: shut down");
      if (auto down = unreachable("wait")) return Failure{*down};
      Container* c = find(id);
      if (c == nullptr) return fail(ErrorCode::NotFound, "wait " + id + ": no such container");
      if (c->status == "exited") return c->exitCode;
      s_->changed.wait(lock);
    }
  }
  Result<ContainerState> inspect(const std::string& id) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("inspect")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "inspect " + id + ": no such container");
    ContainerState out;
    out.id = out.name = c->spec.name;
    out.status = c->status;
    out.running = c->status == "running";
    out.exitCode = c->exitCode;
    out.oomKilled = c->oom;
    out.finishedAtMillis = c->status == "exited" ? 1234 : 0;
    out.labels = c->spec.labels;
    return out;
  }
  Result<void> kill(const std::string& id, int signal) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    s_->calls.push_back("kill " + id + " " + std::to_string(signal));
    if (auto down = unreachable("kill")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "kill " + id + ": no such container");
    if (c->status != "running") return fail(ErrorCode::Conflict, "kill " + id + ": not running");
    if (signal == SIGTERM && c->script.ignoreTerm) return {};
    end(*c, 128 + signal, false);
    return {};
  }
  Result<void> remove(const std::string& id) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    s_->calls.push_back("remove " + id);
    if (auto down = unreachable("remove")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "remove " + id + ": no such container");
    if (c->status == "running") end(*c, 137, false);
    s_->containers.erase(c->spec.name);
    s_->changed.notify_all();
    return {};
  }
  Result<std::vector<ContainerListing>> list(const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("list")) return Failure{*down};
    std::vector<ContainerListing> out;
    for (const auto& [name, c] : s_->containers) {
      auto it = c.spec.labels.find(key);
      if (it != c.spec.labels.end() && it->second == value) out.push_back({name, name, c.status, c.spec.labels});
    }
    return out;
  }
  Result<void> logs(const std::string& id, bool follow, const OutputSink& sink) override {
    std::unique_lock<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("logs")) return Failure{*down};
    Container* c = find(id);
    if (c == nullptr) return fail(ErrorCode::NotFound, "logs " + id + ": no such container");
    std::size_t sent = 0;
    while (true) {
      for (; sent < c->log.size(); ++sent) sink(c->log[sent].first, c->log[sent].second);
      if (!follow || c->status != "running" || shut_) return {};
      s_->changed.wait(lock);
      c = find(id);
      if (c == nullptr) return {};
    }
  }
  Result<std::string> createExec(const std::string& containerId, const ExecSpec& spec) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    s_->calls.push_back("exec " + containerId);
    if (auto down = unreachable("exec")) return Failure{*down};
    Container* c = find(containerId);
    if (c == nullptr) return fail(ErrorCode::NotFound, "exec in " + containerId + ": no such container");
    if (c->status != "running") return fail(ErrorCode::Conflict, "exec in " + containerId + ": not running");
    const std::string id = "exec-" + std::to_string(s_->execs.size() + 1);
    Exec exec;
    exec.container = containerId;
    exec.spec = spec;
    exec.script = s_->execScriptFor(spec);
    s_->execs[id] = std::move(exec);
    return id;
  }
  Result<std::unique_ptr<EngineStream>> startExec(const std::string& execId, bool, OutputSink sink,
                                                  std::function<void(Result<void>)> ended) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("exec start")) return Failure{*down};
    auto found = s_->execs.find(execId);
    if (found == s_->execs.end()) return fail(ErrorCode::NotFound, "start exec " + execId + ": no such exec");
    Exec& exec = found->second;
    if (exec.started) return fail(ErrorCode::Conflict, "start exec " + execId + ": already started");
    exec.started = exec.running = true;
    exec.sink = std::move(sink);
    exec.ended = std::move(ended);
    for (const auto& [stream, bytes] : exec.script.output) exec.sink(stream, bytes);
    if (exec.script.exitCode) endExec(exec, *exec.script.exitCode);
    return std::unique_ptr<EngineStream>(std::make_unique<Stdin>(s_, execId, true));
  }
  Result<void> resizeExec(const std::string& execId, std::uint16_t rows, std::uint16_t cols) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("exec resize")) return Failure{*down};
    auto found = s_->execs.find(execId);
    if (found == s_->execs.end()) return fail(ErrorCode::NotFound, "resize exec " + execId + ": no such exec");
    found->second.ttySize = {rows, cols};
    return {};
  }
  Result<ExecState> inspectExec(const std::string& execId) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("exec inspect")) return Failure{*down};
    auto found = s_->execs.find(execId);
    if (found == s_->execs.end()) return fail(ErrorCode::NotFound, "inspect exec " + execId + ": no such exec");
    return ExecState{found->second.running, found->second.exitCode, found->second.running ? 4242 : 0};
  }

  void shutdown() override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    shut_ = true;
    s_->changed.notify_all();
  }

  // Test controls, with the state's lock taken by the caller's helpers below.
  static void emit(State& s, const std::string& name, int stream, const std::string& bytes) {
    std::lock_guard<std::mutex> lock(s.mutex);
    Container& c = s.containers.at(name);
    c.log.emplace_back(stream, bytes);
    s.changed.notify_all();
  }
  // The attach stream breaks (an engine restart) while the container runs on.
  static void breakAttach(State& s, const std::string& name) {
    std::function<void(Result<void>)> ended;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      Container& c = s.containers.at(name);
      ended = std::move(c.ended);
      c.ended = nullptr;
      c.sink = nullptr;
    }
    if (ended) ended(fail(ErrorCode::Internal, "engine unreachable: connection reset"));
  }
  static void exit(State& s, const std::string& name, int code) {
    std::lock_guard<std::mutex> lock(s.mutex);
    end(s, s.containers.at(name), code, false);
  }

 private:
  // The stdin of an interactive attach (a container's) or of an exec: echoed as stdout.
  class Stdin final : public EngineStream {
   public:
    Stdin(std::shared_ptr<State> state, std::string id, bool exec) : s_(std::move(state)), id_(std::move(id)), exec_(exec) {}
    Result<void> write(std::string_view bytes) override {
      std::lock_guard<std::mutex> lock(s_->mutex);
      if (closed_ || ended_) return fail(ErrorCode::Internal, "engine unreachable: writing stdin: stream ended");
      OutputSink* sink = nullptr;
      if (exec_) {
        auto found = s_->execs.find(id_);
        if (found == s_->execs.end() || !found->second.running) return fail(ErrorCode::Internal, "engine unreachable: writing stdin: exec ended");
        sink = &found->second.sink;
      } else {
        auto found = s_->containers.find(id_);
        if (found == s_->containers.end() || found->second.status == "exited") {
          return fail(ErrorCode::Internal, "engine unreachable: writing stdin: container ended");
        }
        found->second.stdinReceived += bytes;
        sink = &found->second.sink;
      }
      if (*sink) (*sink)(1, bytes);
      return {};
    }
    Result<void> closeWrite() override {
      std::lock_guard<std::mutex> lock(s_->mutex);
      ended_ = true;
      if (!exec_) return {};
      auto found = s_->execs.find(id_);
      if (found != s_->execs.end() && found->second.running && !found->second.script.exitCode) endExec(found->second, 0);
      return {};
    }
    void close() override {
      std::function<void(Result<void>)> ended;
      {
        std::lock_guard<std::mutex> lock(s_->mutex);
        if (closed_) return;
        closed_ = true;
        if (exec_) {
          if (auto found = s_->execs.find(id_); found != s_->execs.end()) ended = std::move(found->second.ended);
        } else if (auto found = s_->containers.find(id_); found != s_->containers.end()) {
          ended = std::move(found->second.ended);
          found->second.sink = nullptr;
        }
      }
      if (ended) ended(fail(ErrorCode::Internal, "engine unreachable: connection closed by the client"));
    }

   private:
    std::shared_ptr<State> s_;
    const std::string id_;
    const bool exec_;
    bool closed_ = false;  // guarded by the state's mutex
    bool ended_ = false;
  };

  static void endExec(Exec& exec, int code) {
    exec.running = false;
    exec.exitCode = code;
    if (exec.ended) {
      auto ended = std::move(exec.ended);
      exec.ended = nullptr;
      ended(Result<void>{});
    }
  }

  std::optional<Error> unreachable(const std::string& call) {
    if (!s_->down && !shut_) return std::nullopt;
    return Error{ErrorCode::Internal, "engine unreachable: " + call + ": connection refused"};
  }
  Container* find(const std::string& id) {
    auto it = s_->containers.find(id);
    return it == s_->containers.end() ? nullptr : &it->second;
  }
  void end(Container& c, int code, bool oom) { end(*s_, c, code, oom); }
  static void end(State& s, Container& c, int code, bool oom) {
    if (c.status == "exited") return;
    c.status = "exited";
    c.exitCode = code;
    c.oom = oom;
    if (c.ended) {
      auto ended = std::move(c.ended);
      c.ended = nullptr;
      c.sink = nullptr;
      ended(Result<void>{});
    }
    s.changed.notify_all();
  }

  std::shared_ptr<State> s_;
  bool shut_ = false;  // this engine object was shut down (guarded by the state's mutex)
};

}  // namespace bai::core::testing
