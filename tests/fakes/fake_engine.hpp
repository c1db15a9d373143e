// A scripted container engine for tests: an HTTP/1.1 server on a unix socket answering the
// Docker Engine API calls ContainerEngine makes, as Docker or as Podman's compatible
// service does, with containers and execs whose run the test scripts. Everything happens
// at once and in order (output, then the exit), so tests need no sleeps; what a client
// writes to a hijacked stdin is read as it comes.
#pragma once

#include "runtime/container_engine.hpp"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::testing {

// What a container does once started.
struct Behaviour {
  enum class End {
    Exit,            // ends with exitCode right after its output
    RunUntilKilled,  // runs until kill (exit 128 + signal) or a forced remove
    OutOfMemory,     // ends with 137 and State.OOMKilled after its output
    EchoStdin,       // like cat: stdin comes back as stdout; ends with exitCode when stdin ends
  };
  struct Chunk {
    int stream = 1;  // 1 stdout, 2 stderr
    std::string bytes;
  };

  std::vector<Chunk> output;
  End end = End::Exit;
  int exitCode = 0;
  bool ignoresSigterm = false;  // RunUntilKilled: SIGTERM does nothing
  // Sent as they are on attach and logs instead of the framed output: a hostile engine.
  std::optional<std::string> rawStream;

  static Behaviour exits(int code, std::vector<Chunk> output = {});
  static Behaviour runsUntilKilled(bool ignoresSigterm = false);
  static Behaviour outOfMemory();
  static Behaviour echoesStdin(int exitCode = 0);
};

class FakeEngine {
 public:
  // Listens at once. `apiVersion` is the Docker API version /version reports.
  explicit FakeEngine(std::filesystem::path socket, core::EngineFlavor flavor = core::EngineFlavor::Docker,
                      std::string apiVersion = "1.44");
  ~FakeEngine();
  FakeEngine(const FakeEngine&) = delete;
  FakeEngine& operator=(const FakeEngine&) = delete;

  // Engine down: the socket is removed and every open connection is cut.
  void stop();
  // Engine up again, with its containers unless loseContainers() was called.
  void start();
  // Forgets every container, as an engine restarted without its state would.
  void loseContainers();

  void addImage(const std::string& name, const std::string& id, std::map<std::string, std::string> labels = {});
  // A pull of `name` ("repo:tag") succeeds and adds it; others fail with "manifest unknown".
  void pullable(const std::string& name);
  // The script of each container started from now on, from its create body (default: exit 0).
  void onStart(std::function<Behaviour(const nlohmann::json& createBody)> script);
  // The script of each exec started from now on, from its create body (default: exit 0).
  void onExec(std::function<Behaviour(const nlohmann::json& execBody)> script);
  // The next call whose method is `method` and whose path (without its "/vX.Y" prefix)
  // starts with `pathPrefix` answers `status` with {"message": message}.
  void failNext(const std::string& method, const std::string& pathPrefix, unsigned status, const std::string& message);
  // ... answers `status` with `body` as it is (hostile answers: huge, deep, broken).
  void answerNext(const std::string& method, const std::string& pathPrefix, unsigned status, std::string body);
  // ... reads the request and closes the connection without an answer.
  void dropNext(const std::string& method, const std::string& pathPrefix);

  std::vector<nlohmann::json> createdBodies() const;
  std::vector<nlohmann::json> execBodies() const;
  // Everything clients wrote to the stdin of a container or exec (by id), and whether
  // they ended it (a half-close).
  std::string stdinOf(const std::string& id) const;
  bool stdinEnded(const std::string& id) const;
  // "METHOD target" of every request, in order ("POST /v1.41/containers/create?name=x").
  std::vector<std::string> requests() const;
  const std::filesystem::path& socket() const { return socket_; }

  struct Container;  // the server's record of one container (fake_engine.cpp)

 private:
  struct Scripted {
    std::string method;
    std::string pathPrefix;
    unsigned status = 0;
    std::string body;
    bool drop = false;
  };
  class Server;

  const std::filesystem::path socket_;
  const core::EngineFlavor flavor_;
  const std::string apiVersion_;

  // Shared by the test's thread and the server's threads, guarded by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable changed_;  // a container's output or state changed, or the server stops
  std::map<std::string, std::shared_ptr<Container>> containers_;  // by id
  std::map<std::string, std::shared_ptr<Container>> execs_;  // by id; an exec is run as a container is
  std::map<std::string, std::string> images_;  // name -> id
  std::map<std::string, std::map<std::string, std::string>> imageLabels_;  // by name
  std::set<std::string> pullable_;
  std::function<Behaviour(const nlohmann::json&)> script_;
  std::function<Behaviour(const nlohmann::json&)> execScript_;
  std::vector<Scripted> scripted_;
  std::vector<nlohmann::json> createdBodies_;
  std::vector<nlohmann::json> execBodies_;
  std::vector<std::string> requests_;
  std::uint64_t lastContainer_ = 0;
  std::uint64_t lastExec_ = 0;

  std::unique_ptr<Server> server_;  // null while stopped
};

}  // namespace bai::testing
