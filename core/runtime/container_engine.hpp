// A container engine as the agent uses it: the operations of the Docker Engine API that
// run a session's container, as typed calls. DockerEngine (docker_engine.hpp) speaks the
// API over the engine's unix socket, to Docker and to Podman's compatible service alike;
// tests use a scripted fake engine behind the same socket.
#pragma once

#include "runtime/sandbox_spec.hpp"

#include <bai/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bai::core {

enum class EngineFlavor { Docker, Podman };
const char* engineFlavorName(EngineFlavor flavor);

struct EngineInfo {
  EngineFlavor flavor = EngineFlavor::Docker;
  std::string version;     // the engine's own ("28.2.2", "4.3.1")
  std::string apiVersion;  // the Docker API version it speaks ("1.41")
};

struct ImageRecord {
  std::string id;                     // "sha256:..."
  std::vector<std::string> repoTags;  // as the engine lists them ("localhost/bai-test/busybox:1")
  std::int64_t sizeBytes = 0;
  std::map<std::string, std::string> labels;  // Config.Labels; filled by inspectImage only
};

struct Ulimit {
  std::string name;  // "nofile", "nproc", ...
  std::int64_t soft = 0;
  std::int64_t hard = 0;
};

// Everything one container is created with (POST /containers/create).
struct ContainerSpec {
  std::string name;                  // "bai-<session id>"
  std::string image;                 // as the user wrote it
  std::vector<std::string> command;  // Cmd; empty: the image's default
  std::map<std::string, std::string> env;
  std::string user;                  // "uid:gid"
  std::string workingDir;            // "/home/work"
  std::map<std::string, std::string> labels;
  std::vector<BindMount> binds;      // HostConfig.Binds ("src:dst[:ro]")
  std::vector<DeviceNode> devices;   // HostConfig.Devices (PathOnHost = PathInContainer = path)
  std::vector<std::string> cdiDevices;  // "nvidia.com/gpu=0": DeviceRequests (Docker) or Devices (Podman)
  std::vector<int> cpus;             // CpusetCpus; empty: any
  std::vector<int> mems;             // CpusetMems; empty: any
  std::optional<std::int64_t> nanoCpus;     // NanoCpus
  std::optional<std::int64_t> memoryBytes;  // Memory
  std::optional<std::int64_t> memorySwapBytes;  // MemorySwap: memory + swap, as Docker counts it
  std::optional<std::int64_t> pidsLimit;    // PidsLimit
  std::vector<std::string> capAdd;   // CapAdd; CapDrop is always ["ALL"]
  bool readonlyRootfs = false;
  bool init = true;                  // HostConfig.Init: signals reach the command, zombies are reaped
  std::string networkMode = "none";  // HostConfig.NetworkMode
  std::vector<Ulimit> ulimits;
  std::optional<std::string> ociRuntime;  // HostConfig.Runtime
  bool tty = false;        // Tty: a pseudo-terminal, one raw output stream (stream 1)
  bool openStdin = false;  // OpenStdin (StdinOnce false): an interactive attach writes stdin
  // Always: SecurityOpt ["no-new-privileges"], Privileged false, no restart policy.
};

struct ContainerState {
  std::string id;
  std::string name;
  std::string status;  // "created", "running", "exited", ...
  bool running = false;
  int exitCode = 0;
  bool oomKilled = false;
  std::string error;         // the engine's State.Error
  std::int64_t pid = 0;      // State.Pid on the host, 0 when not running
  std::int64_t finishedAtMillis = 0;  // 0 when not finished
  std::map<std::string, std::string> labels;
  // NetworkSettings: the container's address on its network (IPAddress, else the first
  // of Networks); empty with network "none" or "host".
  std::string ipAddress;
};

// A container the engine lists (GET /containers/json?all=1 with a label filter).
struct ContainerListing {
  std::string id;
  std::string name;
  std::string state;  // "running", "exited", "created", ...
  std::map<std::string, std::string> labels;
};

// Output of a container, already demultiplexed: stream 1 stdout, 2 stderr.
using OutputSink = std::function<void(int stream, std::string_view bytes)>;

// The input side of a hijacked attach or exec connection. Any thread.
class EngineStream {
 public:
  virtual ~EngineStream() = default;
  // Writes stdin bytes; blocks while the engine does not take them (back-pressure).
  virtual Result<void> write(std::string_view bytes) = 0;
  // Ends stdin (a half-close): the command reads end of file; output goes on.
  virtual Result<void> closeWrite() = 0;
  // Ends the connection both ways; a blocked write() returns an error, the output ends.
  virtual void close() = 0;
};

// POST /containers/{id}/exec: a command run in a running container.
struct ExecSpec {
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string user;        // "uid:gid"
  std::string workingDir;  // "/home/work"
  bool tty = false;
  bool openStdin = false;
};

struct ExecState {
  bool running = false;
  std::optional<int> exitCode;  // once ended
  std::int64_t pid = 0;
};

// Errors: ErrorCode::NotFound for 404 (no such container or image), Conflict for 409,
// InvalidArgument for the engine's 400, Internal for everything else; the message names
// the call and carries the engine's own "message". A socket that cannot be reached or a
// connection that breaks is Internal with "engine unreachable: ..." (isUnreachable()).
class ContainerEngine {
 public:
  virtual ~ContainerEngine() = default;

  virtual Result<EngineInfo> info() = 0;  // GET /version
  virtual Result<std::vector<ImageRecord>> images() = 0;  // GET /images/json
  // GET /images/{name}/json: NotFound when the engine does not have it.
  virtual Result<ImageRecord> inspectImage(const std::string& name) = 0;
  // POST /images/create?fromImage=&tag=: returns when the pull ended; the stream's
  // errorDetail is the error.
  virtual Result<void> pullImage(const std::string& name) = 0;

  virtual Result<std::string> create(const ContainerSpec& spec) = 0;  // the container's id
  // Attaches to stdout and stderr (hijacked connection) and returns once attached; `sink`
  // then gets every byte on the engine's thread of this attach until the container's
  // output ends, and `ended` is called once after the last byte (or on a broken stream
  // with its error). Attach before start(): nothing is missed.
  virtual Result<void> attach(const std::string& id, OutputSink sink, std::function<void(Result<void>)> ended) = 0;
  // The same with stdin (the container is created with openStdin): the returned stream
  // writes to the container's stdin. With a tty the output is raw, all on stream 1.
  virtual Result<std::unique_ptr<EngineStream>> attachInteractive(const std::string& id, OutputSink sink,
                                                                  std::function<void(Result<void>)> ended) = 0;
  // POST /containers/{id}/resize?h=rows&w=cols: the tty's size.
  virtual Result<void> resize(const std::string& id, std::uint16_t rows, std::uint16_t cols) = 0;
  virtual Result<void> start(const std::string& id) = 0;
  // Blocks until the container is no longer running; returns its exit code.
  virtual Result<int> wait(const std::string& id) = 0;
  virtual Result<ContainerState> inspect(const std::string& id) = 0;
  virtual Result<void> kill(const std::string& id, int signal) = 0;
  virtual Result<void> remove(const std::string& id) = 0;  // force, with its anonymous volumes
  // Containers carrying label `key`=`value`, running or not.
  virtual Result<std::vector<ContainerListing>> list(const std::string& labelKey, const std::string& labelValue) = 0;
  // Everything the container wrote so far (follow=false) or until it ends (follow=true),
  // demultiplexed into `sink`; returns when the stream ends.
  virtual Result<void> logs(const std::string& id, bool follow, const OutputSink& sink) = 0;

  // POST /containers/{id}/exec: the exec's id. NotFound: no such container; Conflict:
  // it is not running.
  virtual Result<std::string> createExec(const std::string& containerId, const ExecSpec& spec) = 0;
  // POST /exec/{id}/start, hijacked: like attachInteractive, for the exec (`tty` as created).
  virtual Result<std::unique_ptr<EngineStream>> startExec(const std::string& execId, bool tty, OutputSink sink,
                                                          std::function<void(Result<void>)> ended) = 0;
  virtual Result<void> resizeExec(const std::string& execId, std::uint16_t rows, std::uint16_t cols) = 0;
  virtual Result<ExecState> inspectExec(const std::string& execId) = 0;  // GET /exec/{id}/json

  // Ends every call in progress (attach streams, waits, followed logs) promptly with an
  // error, and fails every later call: the agent's threads blocked in the engine end.
  virtual void shutdown() = 0;
};

bool isUnreachable(const Error& error);

}  // namespace bai::core
