// A container engine in memory, for the container runtime's tests: containers run a
// script (output, then an exit code, or until a signal), and the test can take the engine
// down, lose containers and look at what was created. Calls behave as the Docker API's do.
#pragma once

#include "runtime/container_engine.hpp"

#include <condition_variable>
#include <csignal>
#include <map>
#include <mutex>
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
  };

  // Shared with the test after the runtime took ownership.
  struct State {
    std::mutex mutex;
    std::condition_variable changed;
    bool down = false;
    std::set<std::string> images{"bai-test/busybox:1"};
    std::set<std::string> pullable;
    std::chrono::milliseconds pullTakes{0};
    std::map<std::string, Container> containers;  // by name
    std::function<Script(const ContainerSpec&)> scriptFor = [](const ContainerSpec&) { return Script{}; };
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
    for (const auto& name : s_->images) out.push_back({"sha256:" + name, {"localhost/" + name}, 1000});
    return out;
  }
  Result<ImageRecord> inspectImage(const std::string& name) override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (auto down = unreachable("image")) return Failure{*down};
    if (s_->images.count(name) == 0) return fail(ErrorCode::NotFound, "inspect image " + name + ": no such image");
    return ImageRecord{"sha256:" + name, {name}, 1000};
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
