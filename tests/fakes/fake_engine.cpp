#include "fake_engine.hpp"

#include <utility>  // Boost 1.74 Asio with GCC 12 in C++20 needs std::exchange declared first

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

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
      if (!answer(socket, request)) return;
    }
  }

  // Answers one request; false when the connection is to be closed after it.
  bool answer(Socket& socket, const bhttp::request<bhttp::string_body>& request) {
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
      return wait(socket, segments[2], true);
    }
    if (segments.size() >= 2 && segments[0] == "containers") {
      const std::string& id = segments[1];
      if (segments.size() == 2 && method == "DELETE") return remove(socket, id, target.get("force") == "1");
      if (segments.size() == 3) {
        const std::string& action = segments[2];
        if (method == "GET" && action == "json") return inspect(socket, id);
        if (method == "POST" && action == "start") return start(socket, id);
        if (method == "POST" && action == "attach") return attach(socket, id);
        if (method == "POST" && action == "wait") return wait(socket, id, false);
        if (method == "POST" && action == "kill") return kill(socket, id, target.get("signal"));
        if (method == "GET" && action == "logs") return logs(socket, id, target.get("follow") == "1");
      }
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

  bool version(Socket& socket) {
    const bool podman = engine_.flavor_ == core::EngineFlavor::Podman;
    const std::string version = podman ? "4.3.1" : (engine_.apiVersion_ >= "1.44" ? "25.0.5" : "24.0.9");
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
        if (tag == name || id == name) image = json{{"Id", id}, {"RepoTags", {tag}}, {"Size", 2130000}};
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
      if (behaviour.rawStream) {
        container->stream += *behaviour.rawStream;
      } else {
        for (const auto& chunk : behaviour.output) container->stream += frame(chunk.stream, chunk.bytes);
      }
      container->oomKilled = false;
      switch (behaviour.end) {
        case Behaviour::End::Exit: finish(*container, behaviour.exitCode); break;
        case Behaviour::End::OutOfMemory:
          finish(*container, 137);
          container->oomKilled = true;
          break;
        case Behaviour::End::RunUntilKilled:
          container->status = "running";
          container->pid = 40000 + static_cast<std::int64_t>(engine_.lastContainer_);
          container->ignoresSigterm = behaviour.ignoresSigterm;
          break;
      }
      engine_.changed_.notify_all();
    }
    write(socket, 204, "", "text/plain");
    return true;
  }

  // Call with engine_.mutex_ held.
  static void finish(Container& container, int exitCode) {
    container.status = "exited";
    container.exitCode = exitCode;
    container.pid = 0;
    container.finishedAt = nowRfc3339();
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

  bool attach(Socket& socket, const std::string& reference) {
    std::shared_ptr<Container> container;
    {
      const std::lock_guard lock(engine_.mutex_);
      container = find(reference);
    }
    if (!container) {
      writeMessage(socket, 404, "No such container: " + reference);
      return true;
    }
    beast::error_code error;
    asio::write(socket, asio::buffer(std::string_view("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                                                      "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")),
                error);
    if (error) return false;
    follow(container, [&socket](const std::string& bytes) {
      beast::error_code failed;
      asio::write(socket, asio::buffer(bytes), failed);
      return !failed;
    });
    return false;  // the stream ends with the connection
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

  bool wait(Socket& socket, const std::string& reference, bool libpod) {
    std::unique_lock lock(engine_.mutex_);
    std::shared_ptr<Container> container = find(reference);
    if (!container) {
      lock.unlock();
      writeMessage(socket, 404, "No such container: " + reference);
      return true;
    }
    // Docker's condition=not-running is met by a created container; Podman's conditions
    // stopped and exited are not.
    engine_.changed_.wait(lock, [&] {
      return stopping_.load() || container->ended() || (!libpod && container->status == "created");
    });
    if (stopping_.load()) return false;
    const int code = container->exitCode;
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
              {"Config", {{"Image", container->image}, {"Labels", container->labels}}}};
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

void FakeEngine::addImage(const std::string& name, const std::string& id) {
  const std::lock_guard lock(mutex_);
  images_[name] = id;
}

void FakeEngine::pullable(const std::string& name) {
  const std::lock_guard lock(mutex_);
  pullable_.insert(name);
}

void FakeEngine::onStart(std::function<Behaviour(const nlohmann::json&)> script) {
  const std::lock_guard lock(mutex_);
  script_ = std::move(script);
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

}  // namespace bai::testing
