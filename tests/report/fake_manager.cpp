#include "fake_manager.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace bai::test {
namespace {

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

std::string lowerCase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  return std::string(text);
}

bool readMore(int fd, std::string& buffer) {
  char chunk[16384];
  for (;;) {
    const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(got));
    return true;
  }
}

bool sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

bool parseHead(std::string_view head, RecordedRequest& request) {
  const std::size_t lineEnd = head.find("\r\n");
  const std::string_view requestLine = head.substr(0, lineEnd);
  const std::size_t firstSpace = requestLine.find(' ');
  const std::size_t secondSpace = requestLine.find(' ', firstSpace + 1);
  if (firstSpace == std::string_view::npos || secondSpace == std::string_view::npos) return false;
  request.method = std::string(requestLine.substr(0, firstSpace));
  request.path = std::string(requestLine.substr(firstSpace + 1, secondSpace - firstSpace - 1));
  std::size_t at = lineEnd == std::string_view::npos ? head.size() : lineEnd + 2;
  while (at < head.size()) {
    std::size_t end = head.find("\r\n", at);
    if (end == std::string_view::npos) end = head.size();
    const std::string_view line = head.substr(at, end - at);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    request.headers[lowerCase(std::string(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    at = end + 2;
  }
  return true;
}

// Reads one request with a Content-Length body; nullopt when the peer closed or spoke nonsense.
std::optional<RecordedRequest> readRequest(int fd, std::string& buffer) {
  std::size_t headEnd;
  while ((headEnd = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > kMaxHeaderBytes || !readMore(fd, buffer)) return std::nullopt;
  }
  RecordedRequest request;
  if (!parseHead(std::string_view(buffer).substr(0, headEnd), request)) return std::nullopt;
  if (request.headers.count("transfer-encoding") != 0) return std::nullopt;  // not needed by our client
  std::size_t length = 0;
  if (auto found = request.headers.find("content-length"); found != request.headers.end()) {
    const std::string& text = found->second;
    if (std::from_chars(text.data(), text.data() + text.size(), length).ec != std::errc()) return std::nullopt;
  }
  const std::size_t total = headEnd + 4 + length;
  while (buffer.size() < total) {
    if (!readMore(fd, buffer)) return std::nullopt;
  }
  request.body = buffer.substr(headEnd + 4, length);
  buffer.erase(0, total);
  request.receivedAt = std::chrono::steady_clock::now();
  return request;
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string errorBody(const char* type, const char* title, std::string detail) {
  return protocol::ApiError{type, title, std::move(detail)}.toJson();
}

bool endsWith(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

FakeManager::FakeManager(std::string token) : token_(std::move(token)) {}

FakeManager::~FakeManager() { stop(); }

std::string FakeManager::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void FakeManager::start() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // rebinding after stop() meets TIME_WAIT
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port_);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("fake manager cannot listen on 127.0.0.1:" + std::to_string(port_) + ": " + reason);
  }
  port_ = ntohs(address.sin_port);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_ = true;
  }
  listenFd_ = fd;
  acceptThread_ = std::thread(&FakeManager::acceptLoop, this, fd);
}

void FakeManager::stop() {
  std::vector<Connection> connections;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running_) return;
    running_ = false;
    connections.swap(connections_);
  }
  changed_.notify_all();  // ends delayed replies
  ::shutdown(listenFd_, SHUT_RDWR);  // makes accept() return
  acceptThread_.join();
  ::close(listenFd_);
  listenFd_ = -1;
  for (auto& connection : connections) ::shutdown(connection.fd, SHUT_RDWR);
  for (auto& connection : connections) {
    connection.thread.join();
    ::close(connection.fd);
  }
}

void FakeManager::acceptLoop(int listenFd) {
  for (;;) {
    const int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0 && (errno == EINTR || errno == ECONNABORTED)) continue;
    if (fd < 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running_) {
      ::close(fd);
      return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++connectionsAccepted_;
    connections_.push_back(Connection{fd, std::thread(&FakeManager::serve, this, fd)});
  }
}

void FakeManager::serve(int fd) {
  std::string buffer;
  for (;;) {
    auto request = readRequest(fd, buffer);
    if (!request) return;
    const Reply reply = handle(*request);
    record(*request);
    if (!delayReply()) return;
    const auto connection = request->headers.find("connection");
    const bool keepAlive = connection == request->headers.end() || lowerCase(connection->second) != "close";
    const std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " " + reasonPhrase(reply.status) +
                             "\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(reply.body.size()) + "\r\nConnection: " +
                             (keepAlive ? "keep-alive" : "close") + "\r\n\r\n";
    if (!sendAll(fd, head + reply.body) || !keepAlive) return;
  }
}

FakeManager::Reply FakeManager::handle(const RecordedRequest& request) {
  const auto authorization = request.headers.find("authorization");
  if (authorization == request.headers.end() || authorization->second != "Bearer " + token_) {
    return {401, errorBody("unauthorized", "Unauthorized", "missing or wrong cluster token")};
  }
  const bool agentPath = request.path.rfind("/v1/agents/", 0) == 0;
  if (agentPath && endsWith(request.path, "/heartbeat")) {
    return request.method == "POST" ? handleHeartbeat(request) : Reply{405, errorBody("method", "Method Not Allowed", "")};
  }
  if (agentPath && endsWith(request.path, "/events")) {
    return request.method == "POST" ? handleEvents(request) : Reply{405, errorBody("method", "Method Not Allowed", "")};
  }
  return {404, errorBody("not-found", "Not Found", request.path)};
}

FakeManager::Reply FakeManager::handleHeartbeat(const RecordedRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (heartbeatStatus_ != 200) {
    return {heartbeatStatus_, errorBody("unavailable", "Service Unavailable", "the fake manager refuses heartbeats")};
  }
  if (rawHeartbeatReply_) return {200, *rawHeartbeatReply_};
  auto heartbeat = protocol::Heartbeat::fromJson(request.body);
  if (!heartbeat) return {400, errorBody("invalid-request", "Bad Request", heartbeat.error().message)};
  heartbeats_.push_back(std::move(*heartbeat));
  const bool sendFull = sendFullAlways_ || std::exchange(sendFullOnce_, false);
  return {200, protocol::HeartbeatReply{sendFull}.toJson()};
}

FakeManager::Reply FakeManager::handleEvents(const RecordedRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (eventAckMode_ == EventAckMode::Fail503) {
    return {503, errorBody("unavailable", "Service Unavailable", "the fake manager refuses events")};
  }
  auto batch = protocol::EventBatch::fromJson(request.body);
  if (!batch) return {400, errorBody("invalid-request", "Bad Request", batch.error().message)};
  for (const auto& event : batch->events) events_.push_back({event, request.receivedAt});
  if (eventAckMode_ == EventAckMode::AckAll && !batch->events.empty()) {
    ackedThrough_ = std::max(ackedThrough_, batch->events.back().seq);
  }
  return {200, protocol::EventAck{ackedThrough_}.toJson()};
}

void FakeManager::record(const RecordedRequest& request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(request);
    ++generation_;
  }
  changed_.notify_all();
}

bool FakeManager::delayReply() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (replyDelay_.count() > 0) changed_.wait_for(lock, replyDelay_, [&] { return !running_; });
  return running_;
}

void FakeManager::setSendFull(bool always) {
  std::lock_guard<std::mutex> lock(mutex_);
  sendFullAlways_ = always;
}

void FakeManager::sendFullOnce() {
  std::lock_guard<std::mutex> lock(mutex_);
  sendFullOnce_ = true;
}

void FakeManager::setEventAckMode(EventAckMode mode) {
  std::lock_guard<std::mutex> lock(mutex_);
  eventAckMode_ = mode;
}

void FakeManager::setHeartbeatStatus(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  heartbeatStatus_ = status;
}

void FakeManager::setRawHeartbeatReply(std::optional<std::string> body) {
  std::lock_guard<std::mutex> lock(mutex_);
  rawHeartbeatReply_ = std::move(body);
}

void FakeManager::setReplyDelay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  replyDelay_ = delay;
}

std::vector<RecordedRequest> FakeManager::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::vector<protocol::Heartbeat> FakeManager::heartbeats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return heartbeats_;
}

std::vector<ReceivedEvent> FakeManager::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

std::size_t FakeManager::connectionsAccepted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return connectionsAccepted_;
}

// Re-checks on every recorded request and every few milliseconds, for conditions on
// other objects (a reporter's counters) that change without a request.
bool FakeManager::waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen = generation_;
    }
    if (condition()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(5)), [&] { return generation_ != seen; });
  }
}

}  // namespace bai::test
