#include "runtime/docker_engine.hpp"

#include "parse_json.hpp"
#include "runtime/container_spec_json.hpp"
#include "runtime/engine_http.hpp"
#include "runtime/engine_replies.hpp"
#include "runtime/engine_stdin.hpp"
#include "runtime/engine_streams.hpp"

#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

namespace bai::core {
namespace {

using nlohmann::json;

const std::string kApi = std::string("/v") + kBaseApiVersion;

// The error of a call, named after the call: "create container bai-x: <why>".
Error namedError(const std::string& call, const Error& error) {
  if (isUnreachable(error)) {
    return engineUnreachable(call + ": " + error.message.substr(std::string_view("engine unreachable: ").size()));
  }
  return Error{error.code, call + ": " + error.message};
}

// Container ids and names go into request paths: only what engines use in them.
bool isContainerReference(const std::string& reference) {
  if (reference.empty() || reference.size() > 255) return false;
  for (char c : reference) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                         c == '.' || c == '-';
    if (!allowed) return false;
  }
  return reference.front() != '.' && reference.front() != '-';
}

// Image names and ids in a path: references ("registry:5000/a/b:tag@sha256:...") or ids.
bool isImagePathSegment(const std::string& name) {
  if (name.empty() || name.size() > 512 || name.find("..") != std::string::npos) return false;
  for (char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                         c == '.' || c == '-' || c == '/' || c == ':' || c == '@';
    if (!allowed) return false;
  }
  return name.front() != '/' && name.front() != '-';
}

std::string urlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

// "registry:5000/a/b:tag" as fromImage "registry:5000/a/b" and tag "tag"; a digest
// ("a/b@sha256:...") goes whole into the tag, as Docker's client sends it.
std::pair<std::string, std::string> splitImageTag(const std::string& name) {
  if (const std::size_t at = name.find('@'); at != std::string::npos) return {name.substr(0, at), name.substr(at + 1)};
  const std::size_t slash = name.rfind('/');
  const std::size_t colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {name.substr(0, colon), name.substr(colon + 1)};
  }
  return {name, "latest"};
}

std::string sizeQuery(std::uint16_t rows, std::uint16_t cols) {
  return "h=" + std::to_string(rows) + "&w=" + std::to_string(cols);
}

// The body of POST /containers/{id}/exec.
json execSpecJson(const ExecSpec& spec) {
  json env = json::array();
  for (const auto& [key, value] : spec.env) env.push_back(key + "=" + value);
  json body = {{"Cmd", spec.command},
               {"Env", std::move(env)},
               {"Tty", spec.tty},
               {"AttachStdin", spec.openStdin},
               {"AttachStdout", true},
               {"AttachStderr", true}};
  if (!spec.user.empty()) body["User"] = spec.user;
  if (!spec.workingDir.empty()) body["WorkingDir"] = spec.workingDir;
  return body;
}

Result<json> parseAnswer(const std::string& body) {
  auto parsed = parseJson(body);
  if (!parsed) return fail(ErrorCode::Internal, "the engine's answer: " + parsed.error().message);
  return parsed;
}

// The connections of long calls (attached streams, followed logs, waits, pulls), shared
// with the attach threads so that either may outlive the other: shutdown() closes them
// all, and the engine's destructor also waits for the attach threads to end.
struct AttachedStreams {
  std::mutex mutex;
  std::condition_variable emptied;
  bool closing = false;
  std::uint64_t lastTicket = 0;
  std::map<std::uint64_t, std::shared_ptr<EngineConnection>> open;
};

// Holds a long call's connection in the set while the call runs.
class TrackedConnection {
 public:
  TrackedConnection(std::shared_ptr<AttachedStreams> streams, std::shared_ptr<EngineConnection> connection)
      : streams_(std::move(streams)), connection_(std::move(connection)) {
    const std::lock_guard lock(streams_->mutex);
    if (streams_->closing) {
      connection_->close();  // the call then fails at once
      return;
    }
    ticket_ = ++streams_->lastTicket;
    streams_->open.emplace(ticket_, connection_);
  }
  ~TrackedConnection() {
    const std::lock_guard lock(streams_->mutex);
    streams_->open.erase(ticket_);
    streams_->emptied.notify_all();
  }
  TrackedConnection(const TrackedConnection&) = delete;
  TrackedConnection& operator=(const TrackedConnection&) = delete;
  EngineConnection& operator*() { return *connection_; }
  EngineConnection* operator->() { return connection_.get(); }

 private:
  std::shared_ptr<AttachedStreams> streams_;
  std::shared_ptr<EngineConnection> connection_;
  std::uint64_t ticket_ = 0;
};

class DockerEngine final : public ContainerEngine {
 public:
  DockerEngine(std::filesystem::path socket, EngineOptions options)
      : socket_(std::move(socket)), options_(options), attached_(std::make_shared<AttachedStreams>()) {}

  ~DockerEngine() override {
    shutdown();
    std::unique_lock lock(attached_->mutex);
    attached_->emptied.wait(lock, [this] { return attached_->open.empty(); });
  }

  void shutdown() override {
    const std::lock_guard lock(attached_->mutex);
    attached_->closing = true;
    for (auto& [ticket, connection] : attached_->open) connection->close();
  }

  Result<EngineInfo> info() override {
    auto response = call("read the engine's version", {"GET", "/version", {}, false}, {200});
    if (!response) return Failure{response.error()};
    auto parsed = parseAnswer(response->body);
    if (!parsed) return Failure{namedError("read the engine's version", parsed.error())};
    auto info = readEngineVersion(*parsed, response->libpodApiVersion);
    if (!info) return Failure{namedError("read the engine's version", info.error())};
    const std::lock_guard lock(infoMutex_);
    info_ = *info;
    return info;
  }

  Result<std::vector<ImageRecord>> images() override {
    auto parsed = callJson("list images", {"GET", kApi + "/images/json", {}, false}, {200});
    if (!parsed) return Failure{parsed.error()};
    auto images = readImageList(*parsed);
    if (!images) return Failure{namedError("list images", images.error())};
    return images;
  }

  Result<ImageRecord> inspectImage(const std::string& name) override {
    const std::string what = "inspect image " + name;
    if (!isImagePathSegment(name)) return fail(ErrorCode::InvalidArgument, what + ": not an image name or id");
    auto parsed = callJson(what, {"GET", kApi + "/images/" + name + "/json", {}, false}, {200});
    if (!parsed) return Failure{parsed.error()};
    auto image = readImageInspect(*parsed);
    if (!image) return Failure{namedError(what, image.error())};
    return image;
  }

  Result<void> pullImage(const std::string& name) override {
    const std::string what = "pull image " + name;
    if (!isImagePathSegment(name)) return fail(ErrorCode::InvalidArgument, what + ": not an image name");
    const auto [repository, tag] = splitImageTag(name);
    const EngineDeadline deadline = EngineClock::now() + options_.pullTimeout;
    TrackedConnection tracked(attached_, std::make_shared<EngineConnection>(socket_));
    EngineConnection& connection = *tracked;
    auto response = connection.begin(
        {"POST", kApi + "/images/create?fromImage=" + urlEncode(repository) + "&tag=" + urlEncode(tag), {}, false}, deadline);
    if (!response) return Failure{namedError(what, response.error())};
    if (response->status != 200) return Failure{failedCall(what, connection, response->status, deadline)};
    PullProgressReader progress;
    auto read = connection.readBody([&progress](std::string_view piece) { return progress.feed(piece); }, std::nullopt,
                                    deadline);
    if (read) read = progress.finish();
    if (!read) return Failure{namedError(what, read.error())};
    return {};
  }

  Result<std::string> create(const ContainerSpec& spec) override {
    const std::string what = "create container " + spec.name;
    if (!isContainerReference(spec.name)) return fail(ErrorCode::InvalidArgument, what + ": not a container name");
    auto engine = knownInfo();
    if (!engine) return Failure{namedError(what, engine.error())};
    auto body = containerSpecJson(spec, *engine);
    if (!body) return Failure{body.error()};
    auto parsed = callJson(what, {"POST", createApiPrefix(spec, *engine) + "/containers/create?name=" + spec.name, body->dump(), false},
                           {201, 200});
    if (!parsed) return Failure{parsed.error()};
    auto id = readCreatedId(*parsed);
    if (!id) return Failure{namedError(what, id.error())};
    return id;
  }

  Result<void> attach(const std::string& id, OutputSink sink, std::function<void(Result<void>)> ended) override {
    const std::string what = "attach to container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    auto attached = hijack(what, {"POST", kApi + "/containers/" + id + "/attach?stream=1&stdout=1&stderr=1", {}, true},
                           Output::Multiplexed, false, std::move(sink), std::move(ended));
    if (!attached) return Failure{attached.error()};
    return {};
  }

  Result<std::unique_ptr<EngineStream>> attachInteractive(const std::string& id, OutputSink sink,
                                                          std::function<void(Result<void>)> ended) override {
    const std::string what = "attach to the console of container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    // The output's framing depends on the tty the container was created with.
    // closeWrite() is a half-close of the hijacked socket. Measured on Podman 4.3.1 (compat
    // API, runc): the command then reads end of file (cat exits 0), in a container and in an
    // exec. Podman runs a plain container's conmon without --leave-stdin-open whatever
    // StdinOnce says, so the end of any attach (a close too) ends its stdin; a tty's console
    // outlives the attach. Docker closes a container's stdin at an attach's end only with
    // StdinOnce.
    auto container = callJson(what, {"GET", kApi + "/containers/" + id + "/json", {}, false}, {200});
    if (!container) return Failure{container.error()};
    auto tty = readContainerTty(*container);
    if (!tty) return Failure{namedError(what, tty.error())};
    return hijack(what, {"POST", kApi + "/containers/" + id + "/attach?stream=1&stdin=1&stdout=1&stderr=1", {}, true},
                  *tty ? Output::Raw : Output::Multiplexed, true, std::move(sink), std::move(ended));
  }

  Result<void> resize(const std::string& id, std::uint16_t rows, std::uint16_t cols) override {
    const std::string what = "resize the tty of container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    auto response = call(what, {"POST", kApi + "/containers/" + id + "/resize?" + sizeQuery(rows, cols), {}, false},
                         {200, 201, 204});
    if (!response) return Failure{response.error()};
    return {};
  }

  Result<void> start(const std::string& id) override {
    const std::string what = "start container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    auto response = call(what, {"POST", kApi + "/containers/" + id + "/start", {}, false}, {204, 304, 200});
    if (!response) return Failure{response.error()};
    return {};
  }

  Result<int> wait(const std::string& id) override {
    const std::string what = "wait for container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    auto engine = knownInfo();
    if (!engine) return Failure{namedError(what, engine.error())};
    // Podman's compatible wait answers 0.3 to 1.7 s after the exit; its own answers in ~0.1 s.
    // With "created" among its conditions it returns at once for a container never started,
    // as Docker's not-running does (measured on 4.3.1), instead of waiting for a start.
    const bool podman = engine->flavor == EngineFlavor::Podman;
    const std::string target =
        podman ? "/v4.0.0/libpod/containers/" + id + "/wait?condition=created&condition=stopped&condition=exited&interval=10ms"
               : kApi + "/containers/" + id + "/wait?condition=not-running";
    TrackedConnection tracked(attached_, std::make_shared<EngineConnection>(socket_));
    EngineConnection& connection = *tracked;
    auto response = connection.begin({"POST", target, {}, false}, std::nullopt);
    if (!response) return Failure{namedError(what, response.error())};
    std::string body;
    auto read = connection.readBody(
        [&body](std::string_view piece) -> Result<void> {
          body.append(piece);
          return {};
        },
        kMaxEngineBodyBytes, std::nullopt);
    if (!read) return Failure{namedError(what, read.error())};
    if (response->status != 200) return Failure{Error{engineErrorCode(response->status, body), what + ": " + engineErrorMessage(body)}};
    if (podman) {
      auto code = readPodmanWait(body);
      if (!code) return Failure{namedError(what, code.error())};
      // Podman answers -1 for a container that never ran; Docker answers its ExitCode (0).
      if (*code == -1) {
        auto state = inspect(id);
        if (!state) return Failure{state.error()};
        return state->exitCode;
      }
      return code;
    }
    auto parsed = parseAnswer(body);
    if (!parsed) return Failure{namedError(what, parsed.error())};
    auto code = readDockerWait(*parsed);
    if (!code) return Failure{namedError(what, code.error())};
    return code;
  }

  Result<ContainerState> inspect(const std::string& id) override {
    const std::string what = "inspect container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    auto parsed = callJson(what, {"GET", kApi + "/containers/" + id + "/json", {}, false}, {200});
    if (!parsed) return Failure{parsed.error()};
    auto state = readContainerInspect(*parsed);
    if (!state) return Failure{namedError(what, state.error())};
    return state;
  }

  Result<void> kill(const std::string& id, int signal) override {
    const std::string what = "kill container " + id + " with signal " + std::to_string(signal);
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    if (signal < 1 || signal > 64) return fail(ErrorCode::InvalidArgument, what + ": not a signal number");
    auto response =
        call(what, {"POST", kApi + "/containers/" + id + "/kill?signal=" + std::to_string(signal), {}, false}, {204, 200});
    if (!response) return Failure{response.error()};
    return {};
  }

  Result<void> remove(const std::string& id) override {
    const std::string what = "remove container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    auto response = call(what, {"DELETE", kApi + "/containers/" + id + "?force=1&v=1", {}, false}, {204, 200});
    if (!response) return Failure{response.error()};
    return {};
  }

  Result<std::vector<ContainerListing>> list(const std::string& labelKey, const std::string& labelValue) override {
    const std::string what = "list containers labelled " + labelKey + "=" + labelValue;
    if (labelKey.empty()) return fail(ErrorCode::InvalidArgument, what + ": empty label key");
    const json filters = {{"label", json::array({labelKey + "=" + labelValue})}};
    auto parsed = callJson(what, {"GET", kApi + "/containers/json?all=1&filters=" + urlEncode(filters.dump()), {}, false},
                           {200});
    if (!parsed) return Failure{parsed.error()};
    auto listings = readContainerList(*parsed);
    if (!listings) return Failure{namedError(what, listings.error())};
    return listings;
  }

  Result<void> logs(const std::string& id, bool follow, const OutputSink& sink) override {
    const std::string what = "read the logs of container " + id;
    if (!isContainerReference(id)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    // A followed log lasts as long as the container: only its answer has a deadline.
    const EngineDeadline answered = EngineClock::now() + options_.callTimeout;
    const EngineDeadline deadline = follow ? EngineDeadline() : answered;
    TrackedConnection tracked(attached_, std::make_shared<EngineConnection>(socket_));
    EngineConnection& connection = *tracked;
    auto response = connection.begin(
        {"GET", kApi + "/containers/" + id + "/logs?stdout=1&stderr=1&follow=" + (follow ? "1" : "0"), {}, false}, answered);
    if (!response) return Failure{namedError(what, response.error())};
    if (response->status != 200) return Failure{failedCall(what, connection, response->status, answered)};
    OutputDemuxer demuxer;
    auto read = connection.readBody([&](std::string_view piece) { return demuxer.feed(piece, sink); }, std::nullopt, deadline);
    if (read) read = demuxer.finish();
    if (!read) return Failure{namedError(what, read.error())};
    return {};
  }

  Result<std::string> createExec(const std::string& containerId, const ExecSpec& spec) override {
    const std::string what = "create an exec in container " + containerId;
    if (!isContainerReference(containerId)) return fail(ErrorCode::InvalidArgument, what + ": not a container id");
    if (spec.command.empty()) return fail(ErrorCode::InvalidArgument, what + ": no command");
    auto parsed = callJson(what, {"POST", kApi + "/containers/" + containerId + "/exec", execSpecJson(spec).dump(), false},
                           {201, 200});
    if (!parsed) return Failure{parsed.error()};
    auto id = readCreatedId(*parsed);
    if (!id) return Failure{namedError(what, id.error())};
    if (!isContainerReference(*id)) return fail(ErrorCode::Internal, what + ": the engine answered a malformed exec id");
    return id;
  }

  Result<std::unique_ptr<EngineStream>> startExec(const std::string& execId, bool tty, OutputSink sink,
                                                  std::function<void(Result<void>)> ended) override {
    const std::string what = "start exec " + execId;
    if (!isContainerReference(execId)) return fail(ErrorCode::InvalidArgument, what + ": not an exec id");
    const json body = {{"Detach", false}, {"Tty", tty}};
    return hijack(what, {"POST", kApi + "/exec/" + execId + "/start", body.dump(), true},
                  tty ? Output::Raw : Output::Multiplexed, true, std::move(sink), std::move(ended));
  }

  Result<void> resizeExec(const std::string& execId, std::uint16_t rows, std::uint16_t cols) override {
    const std::string what = "resize the tty of exec " + execId;
    if (!isContainerReference(execId)) return fail(ErrorCode::InvalidArgument, what + ": not an exec id");
    auto response =
        call(what, {"POST", kApi + "/exec/" + execId + "/resize?" + sizeQuery(rows, cols), {}, false}, {200, 201, 204});
    if (!response) return Failure{response.error()};
    return {};
  }

  Result<ExecState> inspectExec(const std::string& execId) override {
    const std::string what = "inspect exec " + execId;
    if (!isContainerReference(execId)) return fail(ErrorCode::InvalidArgument, what + ": not an exec id");
    auto parsed = callJson(what, {"GET", kApi + "/exec/" + execId + "/json", {}, false}, {200});
    if (!parsed) return Failure{parsed.error()};
    auto state = readExecInspect(*parsed);
    if (!state) return Failure{namedError(what, state.error())};
    return state;
  }

 private:
  enum class Output { Multiplexed, Raw };  // Raw: a tty's, all of it stdout

  // A hijacked call (attach, exec start): returns once the engine answered, with the stdin
  // stream when `withStdin`; a thread of its own then reads the output into `sink` until it
  // ends and calls `ended`.
  Result<std::unique_ptr<EngineStream>> hijack(const std::string& what, const EngineRequest& request, Output output,
                                               bool withStdin, OutputSink sink, std::function<void(Result<void>)> ended) {
    {
      const std::lock_guard lock(attached_->mutex);  // after shutdown(): not even asked
      if (attached_->closing) return fail(ErrorCode::Internal, what + ": the engine client is closing");
    }
    auto connection = std::make_shared<EngineConnection>(socket_);
    const EngineDeadline deadline = EngineClock::now() + options_.callTimeout;
    auto response = connection->begin(request, deadline);
    if (!response) return Failure{namedError(what, response.error())};
    // Podman and Docker switch protocols (101); older Dockers answer 200 and stream the same.
    if (response->status != 101 && response->status != 200) {
      return Failure{failedCall(what, *connection, response->status, deadline)};
    }
    const bool upgraded = response->status == 101;
    std::unique_ptr<EngineStream> stdinStream;
    if (withStdin) {
      auto handle = connection->duplicateSocket();
      if (!handle) return Failure{namedError(what, handle.error())};
      auto made = makeHijackedStdin(*handle, [connection] { connection->close(); });
      if (!made) return Failure{namedError(what, made.error())};
      stdinStream = std::move(*made);
    }
    std::uint64_t ticket = 0;
    {
      const std::lock_guard lock(attached_->mutex);
      if (attached_->closing) return fail(ErrorCode::Internal, what + ": the engine client is closing");
      ticket = ++attached_->lastTicket;
      attached_->open.emplace(ticket, connection);
    }
    auto readOutput = [attached = attached_, connection, ticket, upgraded, output, what, sink = std::move(sink),
                       ended = std::move(ended)]() mutable {
      OutputDemuxer demuxer;
      const EnginePieceSink feed = [&demuxer, &sink, output](std::string_view piece) -> Result<void> {
        if (output == Output::Multiplexed) return demuxer.feed(piece, sink);
        sink(1, piece);
        return {};
      };
      Result<void> read = upgraded ? connection->readUpgraded(feed) : connection->readBody(feed, std::nullopt, std::nullopt);
      if (read) read = demuxer.finish();
      if (!read) read = Failure{namedError(what, read.error())};
      ended(std::move(read));
      const std::lock_guard lock(attached->mutex);
      attached->open.erase(ticket);
      attached->emptied.notify_all();
    };
    try {
      std::thread(std::move(readOutput)).detach();
    } catch (const std::system_error& error) {  // out of threads: the stream was never read
      const std::lock_guard lock(attached_->mutex);
      attached_->open.erase(ticket);
      attached_->emptied.notify_all();
      return fail(ErrorCode::Internal, what + ": no thread to read its output: " + error.what());
    }
    return stdinStream;
  }

  // A plain call whose status must be one of `expected`; other statuses are the error.
  Result<EngineResponse> call(const std::string& what, const EngineRequest& request, std::initializer_list<unsigned> expected) {
    TrackedConnection tracked(attached_, std::make_shared<EngineConnection>(socket_));
    auto response = engineCall(*tracked, request, options_.callTimeout);
    if (!response) return Failure{namedError(what, response.error())};
    for (unsigned status : expected) {
      if (response->status == status) return response;
    }
    return Failure{Error{engineErrorCode(response->status, response->body), what + ": " + engineErrorMessage(response->body)}};
  }

  Result<json> callJson(const std::string& what, const EngineRequest& request, std::initializer_list<unsigned> expected) {
    auto response = call(what, request, expected);
    if (!response) return Failure{response.error()};
    auto parsed = parseAnswer(response->body);
    if (!parsed) return Failure{namedError(what, parsed.error())};
    return parsed;
  }

  // The error of a streaming call that did not answer as hoped: its (bounded) body says why.
  Error failedCall(const std::string& what, EngineConnection& connection, unsigned status, EngineDeadline deadline) {
    std::string body;
    auto read = connection.readBody(
        [&body](std::string_view piece) -> Result<void> {
          body.append(piece);
          return {};
        },
        kMaxEngineBodyBytes, deadline);
    if (!read) return namedError(what, read.error());
    return Error{engineErrorCode(status, body), what + ": " + engineErrorMessage(body)};
  }

  // The engine's flavor and version as first read; read again while unknown.
  Result<EngineInfo> knownInfo() {
    {
      const std::lock_guard lock(infoMutex_);
      if (info_) return *info_;
    }
    return info();
  }

  const std::filesystem::path socket_;
  const EngineOptions options_;
  std::mutex infoMutex_;
  std::optional<EngineInfo> info_;  // guarded by infoMutex_
  std::shared_ptr<AttachedStreams> attached_;
};

}  // namespace

std::unique_ptr<ContainerEngine> makeDockerEngine(std::filesystem::path socket, EngineOptions options) {
  return std::make_unique<DockerEngine>(std::move(socket), options);
}

}  // namespace bai::core
