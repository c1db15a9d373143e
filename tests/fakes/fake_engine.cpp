#include "fake_engine.hpp"

#include "runtime/container_spec_json.hpp"

#include <utility>  // Boost 1.74 Asio with GCC 12 in C++20 needs std::exchange declared first

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <stdexcept>

namespace bai::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Socket = asio::local::stream_protocol::socket;
using nlohmann::json;

Behaviour Behaviour::exits(int code, std::vector<Chunk> output) {
  Behaviour behaviour;
  behaviour.exitCode = code;
  behaviour.output = std::move(output);
  return behaviour;
}

Behaviour Behaviour::runsUntilKilled(bool ignoresSigterm) {
  Behaviour behaviour;
  behaviour.end = End::RunUntilKilled;
  behaviour.ignoresSigterm = ignoresSigterm;
  return behaviour;
}

Behaviour Behaviour::outOfMemory() {
  Behaviour behaviour;
  behaviour.end = End::OutOfMemory;
  return behaviour;
}

Behaviour Behaviour::echoesStdin(int exitCode) {
  Behaviour behaviour;
  behaviour.end = End::EchoStdin;
  behaviour.exitCode = exitCode;
  return behaviour;
}

struct FakeEngine::Container {
  std::string id;
  std::string name;
  std::string image;
  json createBody;
  std::map<std::string, std::string> labels;
  std::string status = "created";
  int exitCode = 0;
  bool oomKilled = false;
  bool ignoresSigterm = false;
  bool removed = false;
  std::int64_t pid = 0;
  std::string finishedAt = "0001-01-01T00:00:00Z";
  std::string stream;  // everything written so far, framed (or raw), as attach and logs send it
  bool tty = false;    // its output is raw, not framed
  std::string ipAddress;  // on a bridge network, while it runs
  std::pair<int, int> ttySize{0, 0};  // rows, cols of the last resize
  // Its stdin: what clients wrote, whether one ended it, and what it does with it.
  std::string stdinReceived;
  bool stdinEnded = false;
  bool echoesStdin = false;
  int exitWhenStdinEnds = 0;
  // An exec: the container it runs in and its create body.
  std::string containerId;
  json execBody;

  bool running() const { return status == "running"; }
  bool ended() const { return status == "exited" || removed; }
};

namespace {

std::string frame(int stream, const std::string& bytes) {
  std::string framed(8, '\0');
  framed[0] = static_cast<char>(stream);
  const auto size = static_cast<std::uint32_t>(bytes.size());
  framed[4] = static_cast<char>(size >> 24);
  framed[5] = static_cast<char>(size >> 16);
  framed[6] = static_cast<char>(size >> 8);
  framed[7] = static_cast<char>(size);
  return framed + bytes;
}

std::string nowRfc3339() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now - seconds).count();
  const std::time_t time = seconds.count();
  std::tm fields{};
  gmtime_r(&time, &fields);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &fields);
  char fraction[16];
  std::snprintf(fraction, sizeof fraction, ".%09lld", static_cast<long long>(nanos));
  return std::string(text) + fraction + "Z";
}

std::string urlDecode(std::string_view text) {
  std::string decoded;
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text[at] == '%' && at + 2 < text.size()) {
      decoded += static_cast<char>(std::stoi(std::string(text.substr(at + 1, 2)), nullptr, 16));
      at += 2;
    } else {
      decoded += text[at] == '+' ? ' ' : text[at];
    }
  }
  return decoded;
}

struct Target {
  std::string path;  // without "/vX.Y"
  std::multimap<std::string, std::string> query;

  std::string get(const std::string& key) const {
    auto found = query.find(key);
    return found == query.end() ? std::string() : found->second;
  }
};

Target readTarget(std::string_view target) {
  Target parsed;
  const std::size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  if (path.size() > 2 && path[0] == '/' && path[1] == 'v' && path[2] >= '0' && path[2] <= '9') {
    const std::size_t next = path.find('/', 1);
    path = next == std::string_view::npos ? std::string_view("/") : path.substr(next);
  }
  parsed.path = std::string(path);
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      const std::size_t equals = pair.find('=');
      parsed.query.emplace(urlDecode(pair.substr(0, equals)),
                           equals == std::string_view::npos ? std::string() : urlDecode(pair.substr(equals + 1)));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  return parsed;
}

}  // namespace

// The listening socket, its accepting thread and a thread per connection.
class FakeEngine::Server {
 public:
  explicit Server(FakeEngine& engine) : engine_(engine), acceptor_(io_) {
    std::error_code ignored;
    std::filesystem::remove(engine_.socket_, ignored);
    acceptor_.open();
    acceptor_.bind(asio::local::stream_protocol::endpoint(engine_.socket_.string()));
    acceptor_.listen();
    acceptThread_ = std::thread([this] { acceptLoop(); });
  }

  ~Server() {
    stopping_.store(true);
    {
      const std::lock_guard lock(engine_.mutex_);
      engine_.changed_.notify_all();
    }
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptThread_.join();
    {
      const std::lock_guard lock(connectionsMutex_);
      for (const auto& [ticket, handle] : open_) ::shutdown(handle, SHUT_RDWR);
    }
    for (auto& thread : threads_) thread.join();
    std::error_code ignored;
    std::filesystem::remove(engine_.socket_, ignored);
  }

 private:
  void acceptLoop() {
    for (std::uint64_t ticket = 1;; ++ticket) {
      Socket socket(io_);
      beast::error_code error;
      acceptor_.accept(socket, error);
      if (error || stopping_.load()) return;
      {
        const std::lock_guard lock(connectionsMutex_);
        open_.emplace(ticket, socket.native_handle());
      }
      threads_.emplace_back([this, ticket, socket = std::move(socket)]() mutable {
        serve(socket);
        const std::lock_guard lock(connectionsMutex_);
        open_.erase(ticket);
        beast::error_code ignored;
        socket.shutdown(Socket::shutdown_both, ignored);
      });
    }
  }

  void serve(Socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> request;
      beast::error_code error;
      bhttp::read(socket, buffer, request, error);
      if (error || stopping_.load()) return;
      if (!answer(socket, buffer, request)) return;
    }
  }

  // Answers one request; false when the connection is to be closed after it.
  bool answer(Socket& socket, beast::flat_buffer& buffer, const bhttp::request<bhttp::string_body>& request) {
    const std::string method(request.method_string());
    const std::string rawTarget(request.target());
    const Target target = readTarget(rawTarget);
    {
      const std::lock_guard lock(engine_.mutex_);
      engine_.requests_.push_back(method + " " + rawTarget);
      for (auto scripted = engine_.scripted_.begin(); scripted != engine_.scripted_.end(); ++scripted) {
        if (scripted->method == method && target.path.rfind(scripted->pathPrefix, 0) == 0) {
          const Scripted answer = *scripted;
          engine_.scripted_.erase(scripted);
          if (answer.drop) return false;
          write(socket, answer.status, answer.body, "application/json");
          return true;
        }
      }
    }
    const std::string& path = target.path;
    auto segments = [&path] {
      std::vector<std::string> parts;
      std::size_t at = 1;
      while (at <= path.size()) {
        const std::size_t slash = path.find('/', at);
        parts.push_back(path.substr(at, slash - at));
        if (slash == std::string::npos) break;
        at = slash + 1;
      }
      return parts;
    }();
    if (method == "GET" && path == "/version") return version(socket);
    if (method == "GET" && path == "/images/json") return imageList(socket);
    if (method == "GET" && path.rfind("/images/", 0) == 0 && path.size() > 13 && path.ends_with("/json")) {
      return imageInspect(socket, path.substr(8, path.size() - 13));
    }
    if (method == "POST" && path == "/images/create") return pull(socket, target);
    if (method == "POST" && path == "/containers/create") return create(socket, target, request.body());
    if (method == "GET" && path == "/containers/json") return list(socket, target);
    if (segments.size() == 4 && segments[0] == "libpod" && segments[1] == "containers" && segments[3] == "wait" &&
        method == "POST" && engine_.flavor_ == core::EngineFlavor::Podman) {
      const auto conditions = target.query.equal_range("condition");
      const bool untilStarted = std::none_of(conditions.first, conditions.second,
                                             [](const auto& condition) { return condition.second == "created"; });
      return wait(socket, segments[2], true, untilStarted);
    }
    if (segments.size() >= 2 && segments[0] == "containers") {
      const std::string& id = segments[1];
      if (segments.size() == 2 && method == "DELETE") return remove(socket, id, target.get("force") == "1");
      if (segments.size() == 3) {
        const std::string& action = segments[2];
        if (method == "GET" && action == "json") return inspect(socket, id);
        if (method == "POST" && action == "start") return start(socket, id);
        if (method == "POST" && action == "attach") return attach(socket, buffer, id, target.get("stdin") == "1");
        if (method == "POST" && action == "resize") return resize(socket, find(id), "No such container: " + id, target);
        if (method == "POST" && action == "exec") return createExec(socket, id, request.body());
        if (method == "POST" && action == "wait") return wait(socket, id, false, false);
        if (method == "POST" && action == "kill") return kill(socket, id, target.get("signal"));
        if (method == "GET" && action == "logs") return logs(socket, id, target.get("follow") == "1");
      }
    }
    if (segments.size() == 3 && segments[0] == "exec") {
      const std::string& id = segments[1];
      const std::string& action = segments[2];
      if (method == "POST" && action == "start") return startExec(socket, buffer, id, request.body());
      if (method == "POST" && action == "resize") return resize(socket, findExec(id), "No such exec instance: " + id, target);
      if (method == "GET" && action == "json") return inspectExec(socket, id);
    }
    writeMessage(socket, 404, "page not found");
    return true;
  }

  void write(Socket& socket, unsigned status, const std::string& body, const char* contentType) {
    bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(status), 11};
    response.set(bhttp::field::content_type, contentType);
    if (engine_.flavor_ == core::EngineFlavor::Podman) response.set("Libpod-Api-Version", "4.3.1");
    response.body() = body;
    response.prepare_payload();
    beast::error_code ignored;
    bhttp::write(socket, response, ignored);
  }
  void writeJson(Socket& socket, unsigned status, const json& body) { write(socket, status, body.dump(), "application/json"); }
  void writeMessage(Socket& socket, unsigned status, const std::string& message) {
    writeJson(socket, status, {{"message", message}});
  }

  // Call with engine_.mutex_ held.
  std::shared_ptr<Container> find(const std::string& reference) {
    if (auto byId = engine_.containers_.find(reference); byId != engine_.containers_.end()) return byId->second;
    std::shared_ptr<Container> found;
    for (const auto& [id, container] : engine_.containers_) {
      if (container->name == reference) return container;
      if (id.rfind(reference, 0) == 0) found = container;
    }
    return found;
  }

  std::shared_ptr<Container> find(const std::string& reference, bool lock) {
    if (!lock) return find(reference);
    const std::lock_guard held(engine_.mutex_);
    return find(reference);
  }

  std::shared_ptr<Container> findExec(const std::string& id) {
    const std::lock_guard lock(engine_.mutex_);
    auto found = engine_.execs_.find(id);
    return found == engine_.execs_.end() ? nullptr : found->second;
  }

  bool version(Socket& socket) {
    const bool podman = engine_.flavor_ == core::EngineFlavor::Podman;
    const std::string version = podman ? "4.3.1" : (core::apiVersionAtLeast(engine_.apiVersion_, "1.44") ? "25.0.5" : "24.0.9");
    json components = json::array({{{"Name", podman ? "Podman Engine" : "Engine"}, {"Version", version}}});
    writeJson(socket, 200,
              {{"Version", version}, {"ApiVersion", engine_.apiVersion_}, {"MinAPIVersion", "1.24"}, {"Components", components}});
    return true;
  }

  bool imageList(Socket& socket) {
    std::map<std::string, std::vector<std::string>> tagsById;
    {
      const std::lock_guard lock(engine_.mutex_);
      for (const auto& [name, id] : engine_.images_) tagsById[id].push_back(name);
    }
    json images = json::array();
    for (const auto& [id, tags] : tagsById) images.push_back({{"Id", id}, {"RepoTags", tags}, {"Size", 2130000}});
    writeJson(socket, 200, images);
    return true;
  }

  bool imageInspect(Socket& socket, const std::string& name) {
    std::optional<json> image;
    {
      const std::lock_guard lock(engine_.mutex_);
      for (const auto& [tag, id] : engine_.images_) {
        if (tag != name && id != name) continue;
        image = json{{"Id", id}, {"RepoTags", {tag}}, {"Size", 2130000}, {"Config", {{"Cmd", {"/bin/sh"}}}}};
        if (auto labels = engine_.imageLabels_.find(tag); labels != engine_.imageLabels_.end()) {
          (*image)["Config"]["Labels"] = labels->second;
        }
      }
    }
    if (!image) {
      writeMessage(socket, 404, "failed to find image " + name + ": " + name + ": image not known");
    } else {
      writeJson(socket, 200, *image);
    }
    return true;
  }

  bool pull(Socket& socket, const Target& target) {
    const std::string tag = target.get("tag");
    const std::string name =
        target.get("fromImage") + (tag.empty() ? ":latest" : (tag.rfind("sha256:", 0) == 0 ? "@" : ":") + tag);
    bool known = false;
    {
      const std::lock_guard lock(engine_.mutex_);
      known = engine_.pullable_.count(name) > 0;
      if (known) engine_.images_[name] = "sha256:" + std::to_string(std::hash<std::string>{}(name));
    }
    std::string progress = json{{"status", "Trying to pull " + name + "..."}}.dump() + "\n";
    progress += known ? json{{"status", "Download complete"}, {"id", name}}.dump() + "\n"
                      : json{{"error", "manifest unknown"}, {"errorDetail", {{"message", "manifest unknown"}}}}.dump() + "\n";
    write(socket, 200, progress, "application/json");
    return true;
  }

  bool create(Socket& socket, const Target& target, const std::string& body) {
    json createBody = json::parse(body, nullptr, false);
    if (createBody.is_discarded() || !createBody.is_object()) {
      writeMessage(socket, 400, "invalid JSON in the create body");
      return true;
    }
    const std::string image = createBody.value("Image", std::string());
    std::string id;
    {
      const std::lock_guard lock(engine_.mutex_);
      std::string name = target.get("name");
      if (name.empty()) name = "fake_" + std::to_string(engine_.lastContainer_ + 1);
      if (find(name) && find(name)->name == name) {
        writeMessage(socket, 409, "Conflict. The container name \"/" + name + "\" is already in use");
        return true;
      }
      bool haveImage = false;
      for (const auto& [tag, imageId] : engine_.images_) haveImage = haveImage || tag == image || imageId == image;
      if (!haveImage) {
        writeMessage(socket, 404, "No such image: " + image);
        return true;
      }
      char hex[65];
      std::snprintf(hex, sizeof hex, "%064llx", static_cast<unsigned long long>(++engine_.lastContainer_) + 0xfa4e000000ULL);
      id = hex;
      auto container = std::make_shared<Container>();
      container->id = id;
      container->name = name;
      container->image = image;
      container->createBody = createBody;
      container->tty = createBody.value("Tty", false);
      if (createBody.contains("Labels") && createBody["Labels"].is_object()) {
        for (const auto& [key, value] : createBody["Labels"].items()) {
          if (value.is_string()) container->labels[key] = value.get<std::string>();
        }
      }
      engine_.containers_.emplace(id, container);
      engine_.createdBodies_.push_back(createBody);
    }
    writeJson(socket, 201, {{"Id", id}, {"Warnings", json::array()}});
    return true;
  }

  bool start(Socket& socket, const std::string& reference) {
    std::function<Behaviour(const json&)> script;
    json createBody;
    std::shared_ptr<Container> container;
    {
      const std::lock_guard lock(engine_.mutex_);
      container = find(reference);
      if (!container) {
        writeMessage(socket, 404, "No such container: " + reference);
        return true;
      }
      if (container->running()) {
        write(socket, 304, "", "text/plain");
        return true;
      }
      script = engine_.script_;
      createBody = container->createBody;
    }
    const Behaviour behaviour = script ? script(createBody) : Behaviour::exits(0);
    {
      const std::lock_guard lock(engine_.mutex_);
      const auto network = createBody.find("HostConfig");
      if (network != createBody.end() && network->is_object() && network->value("NetworkMode", std::string()) == "bridge") {
        container->ipAddress = "10.88.0." + std::to_string(2 + engine_.lastContainer_ % 250);
      }
      runScript(*container, behaviour);
    }
    write(socket, 204, "", "text/plain");
    return true;
  }

  // Call with engine_.mutex_ held: a started container or exec does what its script says.
  void runScript(Container& container, const Behaviour& behaviour) {
    if (behaviour.rawStream) {
      container.stream += *behaviour.rawStream;
    } else {
      for (const auto& chunk : behaviour.output) emit(container, chunk.stream, chunk.bytes);
    }
    container.oomKilled = false;
    switch (behaviour.end) {
      case Behaviour::End::Exit: finish(container, behaviour.exitCode); break;
      case Behaviour::End::OutOfMemory:
        finish(container, 137);
        container.oomKilled = true;
        break;
      case Behaviour::End::RunUntilKilled:
      case Behaviour::End::EchoStdin:
        container.status = "running";
        container.pid = 40000 + static_cast<std::int64_t>(engine_.lastContainer_ + engine_.lastExec_);
        container.ignoresSigterm = behaviour.ignoresSigterm;
        container.echoesStdin = behaviour.end == Behaviour::End::EchoStdin;
        container.exitWhenStdinEnds = behaviour.exitCode;
        if (container.echoesStdin) {
          emit(container, 1, container.stdinReceived);  // what was written before the start
          if (container.stdinEnded) finish(container, container.exitWhenStdinEnds);
        }
        break;
    }
    engine_.changed_.notify_all();
  }

  // Call with engine_.mutex_ held: output as attach sends it, framed unless on a tty.
  static void emit(Container& container, int stream, const std::string& bytes) {
    if (bytes.empty()) return;
    container.stream += container.tty ? bytes : frame(stream, bytes);
  }

  void takeStdin(Container& container, std::string_view bytes) {
    const std::lock_guard lock(engine_.mutex_);
    container.stdinReceived.append(bytes);
    if (container.echoesStdin && container.running()) emit(container, 1, std::string(bytes));
    engine_.changed_.notify_all();
  }

  void endStdin(Container& container) {
    const std::lock_guard lock(engine_.mutex_);
    container.stdinEnded = true;
    if (container.echoesStdin && container.running()) finish(container, container.exitWhenStdinEnds);
    engine_.changed_.notify_all();
  }

  // Call with engine_.mutex_ held.
  static void finish(Container& container, int exitCode) {
    container.status = "exited";
    container.exitCode = exitCode;
    container.pid = 0;
    container.finishedAt = nowRfc3339();
    container.ipAddress.clear();
  }

  // Writes the container's stream from `sent` on as it grows, until it ends or the server
  // stops; `piece` writes one part (raw or as a chunk). False when the server stopped.
  bool follow(const std::shared_ptr<Container>& container, const std::function<bool(const std::string&)>& piece) {
    std::size_t sent = 0;
    std::unique_lock lock(engine_.mutex_);
    for (;;) {
      engine_.changed_.wait(lock, [&] { return stopping_.load() || container->stream.size() > sent || container->ended(); });
      if (stopping_.load()) return false;
      if (container->stream.size() > sent) {
        const std::string next = container->stream.substr(sent);
        sent = container->stream.size();
        lock.unlock();
        const bool written = piece(next);
        lock.lock();
        if (!written) return false;
        continue;
      }
      return true;
    }
  }

  bool attach(Socket& socket, beast::flat_buffer& buffer, const std::string& reference, bool withStdin) {
    std::shared_ptr<Container> container = find(reference, true);
    if (!container) {
      writeMessage(socket, 404, "No such container: " + reference);
      return true;
    }
    return hijack(socket, buffer, container, withStdin);
  }

  // Switches protocols and streams the container's (or exec's) output until it ends; with
  // stdin, a second thread reads what the client writes (a half-close ends the stdin).
  bool hijack(Socket& socket, beast::flat_buffer& buffer, const std::shared_ptr<Container>& container, bool withStdin) {
    beast::error_code error;
    asio::write(socket, asio::buffer(std::string_view("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                                                      "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")),
                error);
    if (error) return false;
    std::atomic<bool> outputEnded{false};
    std::thread stdinReader;
    if (withStdin) {
      std::string early = beast::buffers_to_string(buffer.data());  // came along with the request
      buffer.consume(buffer.size());
      stdinReader = std::thread([this, container, &outputEnded, handle = socket.native_handle(), early] {
        if (!early.empty()) takeStdin(*container, early);
        char piece[4096];
        for (;;) {
          const ssize_t got = ::recv(handle, piece, sizeof piece, 0);
          if (got > 0) {
            takeStdin(*container, std::string_view(piece, static_cast<std::size_t>(got)));
            continue;
          }
          if (got == 0 && !outputEnded.load()) endStdin(*container);
          return;
        }
      });
    }
    follow(container, [&socket](const std::string& bytes) {
      beast::error_code failed;
      asio::write(socket, asio::buffer(bytes), failed);
      return !failed;
    });
    if (stdinReader.joinable()) {
      outputEnded.store(true);
      ::shutdown(socket.native_handle(), SHUT_RD);
      stdinReader.join();
    }
    return false;  // the stream ends with the connection
  }

  bool resize(Socket& socket, const std::shared_ptr<Container>& container, const std::string& notFound, const Target& target) {
    if (!container) {
      writeMessage(socket, 404, notFound);
      return true;
    }
    int rows = 0;
    int cols = 0;
    try {
      rows = std::stoi(target.get("h"));
      cols = std::stoi(target.get("w"));
    } catch (const std::exception&) {
      writeMessage(socket, 400, "invalid resize: h=" + target.get("h") + " w=" + target.get("w"));
      return true;
    }
    {
      const std::lock_guard lock(engine_.mutex_);
      if (!container->running()) {
        writeMessage(socket, 409, "container " + container->id + " is not running");
        return true;
      }
      container->ttySize = {rows, cols};
    }
    write(socket, 200, "", "text/plain");
    return true;
  }

  bool createExec(Socket& socket, const std::string& reference, const std::string& body) {
    json execBody = json::parse(body, nullptr, false);
    if (execBody.is_discarded() || !execBody.is_object() || !execBody.contains("Cmd")) {
      writeMessage(socket, 400, "invalid exec body: " + body.substr(0, 200));
      return true;
    }
    std::string id;
    {
      const std::lock_guard lock(engine_.mutex_);
      auto container = find(reference);
      if (!container) {
        writeMessage(socket, 404, "No such container: " + reference);
        return true;
      }
      if (!container->running()) {
        writeMessage(socket, 409, "container " + container->id + " is not running");
        return true;
      }
      char hex[65];
      std::snprintf(hex, sizeof hex, "%064llx", static_cast<unsigned long long>(++engine_.lastExec_) + 0xe8ec000000ULL);
      id = hex;
      auto exec = std::make_shared<Container>();
      exec->id = id;
      exec->containerId = container->id;
      exec->execBody = execBody;
      exec->tty = execBody.value("Tty", false);
      engine_.execs_.emplace(id, exec);
      engine_.execBodies_.push_back(execBody);
    }
    writeJson(socket, 201, {{"Id", id}});
    return true;
  }

  bool startExec(Socket& socket, beast::flat_buffer& buffer, const std::string& id, const std::string& body) {
    const json startBody = json::parse(body, nullptr, false);
    if (startBody.is_discarded() || !startBody.is_object() || startBody.value("Detach", true)) {
      writeMessage(socket, 400, "this fake starts attached execs only: " + body.substr(0, 200));
      return true;
    }
    std::shared_ptr<Container> exec = findExec(id);
    if (!exec) {
      writeMessage(socket, 404, "No such exec instance: " + id);
      return true;
    }
    std::function<Behaviour(const json&)> script;
    {
      const std::lock_guard lock(engine_.mutex_);
      if (exec->status != "created") {
        writeMessage(socket, 409, "exec " + id + " has already been started");
        return true;
      }
      script = engine_.execScript_;
    }
    const Behaviour behaviour = script ? script(exec->execBody) : Behaviour::exits(0);
    {
      const std::lock_guard lock(engine_.mutex_);
      runScript(*exec, behaviour);
    }
    return hijack(socket, buffer, exec, exec->execBody.value("AttachStdin", false));
  }

  bool inspectExec(Socket& socket, const std::string& id) {
    std::shared_ptr<Container> exec = findExec(id);
    if (!exec) {
      writeMessage(socket, 404, "No such exec instance: " + id);
      return true;
    }
    json body;
    {
      const std::lock_guard lock(engine_.mutex_);
      body = {{"ID", exec->id},
              {"ContainerID", exec->containerId},
              {"Running", exec->running()},
              {"ExitCode", exec->exitCode},
              {"Pid", exec->pid},
              {"ProcessConfig", {{"tty", exec->tty}}}};
    }
    writeJson(socket, 200, body);
    return true;
  }

  bool logs(Socket& socket, const std::string& reference, bool followed) {
    std::shared_ptr<Container> container;
    std::string sofar;
    {
      const std::lock_guard lock(engine_.mutex_);
      container = find(reference);
      if (container) sofar = container->stream;
    }
    if (!container) {
      writeMessage(socket, 404, "No such container: " + reference);
      return true;
    }
    beast::error_code error;
    asio::write(socket, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
                                                      "Transfer-Encoding: chunked\r\n\r\n")),
                error);
    if (error) return false;
    const auto chunk = [&socket](const std::string& bytes) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
      beast::error_code failed;
      asio::write(socket, asio::buffer(size + bytes + "\r\n"), failed);
      return !failed;
    };
    if (followed) {
      if (!follow(container, chunk)) return false;
    } else if (!sofar.empty() && !chunk(sofar)) {
      return false;
    }
    asio::write(socket, asio::buffer(std::string_view("0\r\n\r\n")), error);
    return !error;
  }

  // Docker's condition=not-running and Podman's condition=created are met by a container
  // never started (its exit code 0); without "created" Podman waits for a start and an exit.
  bool wait(Socket& socket, const std::string& reference, bool libpod, bool untilStarted) {
    std::unique_lock lock(engine_.mutex_);
    std::shared_ptr<Container> container = find(reference);
    if (!container) {
      lock.unlock();
      writeMessage(socket, 404, "No such container: " + reference);
      return true;
    }
    engine_.changed_.wait(lock, [&] {
      return stopping_.load() || container->ended() || (!untilStarted && container->status == "created");
    });
    if (stopping_.load()) return false;
    // Podman's own wait answers -1 for a container that never ran.
    const int code = libpod && container->status == "created" ? -1 : container->exitCode;
    lock.unlock();
    if (libpod) {
      write(socket, 200, std::to_string(code) + "\n", "text/plain");
    } else {
      writeJson(socket, 200, {{"StatusCode", code}, {"Error", nullptr}});
    }
    return true;
  }

  bool inspect(Socket& socket, const std::string& reference) {
    json body;
    {
      const std::lock_guard lock(engine_.mutex_);
      auto container = find(reference);
      if (!container) {
        writeMessage(socket, 404, "No such container: " + reference);
        return true;
      }
      body = {{"Id", container->id},
              {"Name", "/" + container->name},
              {"Image", container->image},
              {"State",
               {{"Status", container->status},
                {"Running", container->running()},
                {"Paused", false},
                {"OOMKilled", container->oomKilled},
                {"Dead", false},
                {"Pid", container->pid},
                {"ExitCode", container->exitCode},
                {"Error", ""},
                {"FinishedAt", container->finishedAt}}},
              {"Config", {{"Image", container->image}, {"Labels", container->labels}, {"Tty", container->tty}}}};
      // Docker fills the top-level IPAddress of its default bridge; Podman only its networks'.
      const bool docker = engine_.flavor_ == core::EngineFlavor::Docker;
      json networks = json::object();
      if (!container->ipAddress.empty()) networks[docker ? "bridge" : "podman"] = {{"IPAddress", container->ipAddress}};
      body["NetworkSettings"] = {{"IPAddress", docker ? container->ipAddress : ""}, {"Networks", networks}};
    }
    writeJson(socket, 200, body);
    return true;
  }

  bool kill(Socket& socket, const std::string& reference, const std::string& signalText) {
    int signal = 0;
    try {
      signal = std::stoi(signalText);
    } catch (const std::exception&) {
      writeMessage(socket, 400, "invalid signal: " + signalText);
      return true;
    }
    {
      const std::lock_guard lock(engine_.mutex_);
      auto container = find(reference);
      if (!container) {
        writeMessage(socket, 404, "No such container: " + reference);
        return true;
      }
      if (!container->running()) {
        if (engine_.flavor_ == core::EngineFlavor::Podman) {  // Podman answers 500 where Docker answers 409
          writeJson(socket, 500, {{"cause", "container state improper"},
                                  {"message", "can only kill running containers. " + container->id + " is in state " +
                                                  container->status + ": container state improper"},
                                  {"response", 500}});
        } else {
          writeMessage(socket, 409, "Cannot kill container: " + reference + ": container " + container->id + " is not running");
        }
        return true;
      }
      if (!(signal == 15 && container->ignoresSigterm)) finish(*container, 128 + signal);
      engine_.changed_.notify_all();
    }
    write(socket, 204, "", "text/plain");
    return true;
  }

  bool remove(Socket& socket, const std::string& reference, bool force) {
    {
      const std::lock_guard lock(engine_.mutex_);
      auto container = find(reference);
      if (!container) {
        writeMessage(socket, 404, "No such container: " + reference);
        return true;
      }
      if (container->running() && !force) {
        writeMessage(socket, 409, "cannot remove container " + container->id + " as it is running");
        return true;
      }
      if (container->running()) finish(*container, 137);
      container->removed = true;
      engine_.containers_.erase(container->id);
      engine_.changed_.notify_all();
    }
    write(socket, 204, "", "text/plain");
    return true;
  }

  bool list(Socket& socket, const Target& target) {
    std::vector<std::string> wanted;
    const std::string filters = target.get("filters");
    if (!filters.empty()) {
      json parsed = json::parse(filters, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        writeMessage(socket, 400, "invalid filters: " + filters);
        return true;
      }
      if (parsed.contains("label") && parsed["label"].is_array()) {
        for (const auto& label : parsed["label"]) wanted.push_back(label.get<std::string>());
      }
    }
    json listing = json::array();
    {
      const std::lock_guard lock(engine_.mutex_);
      for (const auto& [id, container] : engine_.containers_) {
        bool matches = target.get("all") == "1" || container->running();
        for (const auto& label : wanted) {
          const std::size_t equals = label.find('=');
          auto found = container->labels.find(label.substr(0, equals));
          matches = matches && found != container->labels.end() &&
                    (equals == std::string::npos || found->second == label.substr(equals + 1));
        }
        if (!matches) continue;
        listing.push_back({{"Id", id},
                           {"Names", {"/" + container->name}},
                           {"Image", container->image},
                           {"State", container->status},
                           {"Labels", container->labels}});
      }
    }
    writeJson(socket, 200, listing);
    return true;
  }

  FakeEngine& engine_;
  asio::io_context io_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread acceptThread_;
  std::vector<std::thread> threads_;  // only the accept thread adds, the destructor joins after it
  std::mutex connectionsMutex_;
  std::map<std::uint64_t, int> open_;  // guarded by connectionsMutex_: the sockets to cut at stop
};

FakeEngine::FakeEngine(std::filesystem::path socket, core::EngineFlavor flavor, std::string apiVersion)
    : socket_(std::move(socket)), flavor_(flavor), apiVersion_(std::move(apiVersion)) {
  start();
}

FakeEngine::~FakeEngine() { stop(); }

void FakeEngine::stop() { server_.reset(); }

void FakeEngine::start() {
  if (!server_) server_ = std::make_unique<Server>(*this);
}

void FakeEngine::loseContainers() {
  const std::lock_guard lock(mutex_);
  for (auto& [id, container] : containers_) container->removed = true;
  containers_.clear();
  changed_.notify_all();
}

void FakeEngine::addImage(const std::string& name, const std::string& id, std::map<std::string, std::string> labels) {
  const std::lock_guard lock(mutex_);
  images_[name] = id;
  imageLabels_[name] = std::move(labels);
}

void FakeEngine::pullable(const std::string& name) {
  const std::lock_guard lock(mutex_);
  pullable_.insert(name);
}

void FakeEngine::onStart(std::function<Behaviour(const nlohmann::json&)> script) {
  const std::lock_guard lock(mutex_);
  script_ = std::move(script);
}

void FakeEngine::onExec(std::function<Behaviour(const nlohmann::json&)> script) {
  const std::lock_guard lock(mutex_);
  execScript_ = std::move(script);
}

void FakeEngine::failNext(const std::string& method, const std::string& pathPrefix, unsigned status,
                          const std::string& message) {
  answerNext(method, pathPrefix, status, json{{"message", message}}.dump());
}

void FakeEngine::answerNext(const std::string& method, const std::string& pathPrefix, unsigned status, std::string body) {
  const std::lock_guard lock(mutex_);
  scripted_.push_back({method, pathPrefix, status, std::move(body), false});
}

void FakeEngine::dropNext(const std::string& method, const std::string& pathPrefix) {
  const std::lock_guard lock(mutex_);
  scripted_.push_back({method, pathPrefix, 0, {}, true});
}

std::vector<nlohmann::json> FakeEngine::createdBodies() const {
  const std::lock_guard lock(mutex_);
  return createdBodies_;
}

std::vector<std::string> FakeEngine::requests() const {
  const std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<nlohmann::json> FakeEngine::execBodies() const {
  const std::lock_guard lock(mutex_);
  return execBodies_;
}

std::string FakeEngine::stdinOf(const std::string& id) const {
  const std::lock_guard lock(mutex_);
  if (auto container = containers_.find(id); container != containers_.end()) return container->second->stdinReceived;
  if (auto exec = execs_.find(id); exec != execs_.end()) return exec->second->stdinReceived;
  return {};
}

bool FakeEngine::stdinEnded(const std::string& id) const {
  const std::lock_guard lock(mutex_);
  if (auto container = containers_.find(id); container != containers_.end()) return container->second->stdinEnded;
  if (auto exec = execs_.find(id); exec != execs_.end()) return exec->second->stdinEnded;
  return false;
}

}  // namespace bai::testing
