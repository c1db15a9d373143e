// A minimal stand-in for bai-manager's agent endpoints: HTTP/1.1 with keep-alive on
// 127.0.0.1 and an ephemeral port, one thread per connection. It records every request,
// and can be told to ask for the full state, refuse, stall, or go away and come back
// on the same port.
#pragma once

#include <bai/protocol.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace bai::test {

struct RecordedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::chrono::steady_clock::time_point receivedAt;
};

struct ReceivedEvent {
  protocol::SessionEvent event;
  std::chrono::steady_clock::time_point receivedAt;
};

enum class EventAckMode {
  AckAll,   // acknowledge through the highest seq received
  AckNone,  // answer 200 but never move the acknowledgement
  Fail503,  // answer 503 Service Unavailable
};

class FakeManager {
 public:
  explicit FakeManager(std::string token);
  ~FakeManager();
  FakeManager(const FakeManager&) = delete;
  FakeManager& operator=(const FakeManager&) = delete;

  // Listens on an ephemeral port the first time, on the same port after a stop().
  // Throws std::runtime_error when it cannot.
  void start();
  // Closes the listener and every connection, ending requests in flight unanswered.
  void stop();

  std::uint16_t port() const { return port_; }
  std::string url() const;

  void setSendFull(bool always);
  void sendFullOnce();
  void setEventAckMode(EventAckMode mode);
  void setHeartbeatStatus(int status);                       // 200 by default
  void setRawHeartbeatReply(std::optional<std::string> body);  // sent as is with 200
  void setReplyDelay(std::chrono::milliseconds delay);

  std::vector<RecordedRequest> requests() const;
  std::vector<protocol::Heartbeat> heartbeats() const;  // those accepted, in arrival order
  std::vector<ReceivedEvent> events() const;            // duplicates included, in arrival order
  std::size_t connectionsAccepted() const;

  // Polls `condition` each time a request is recorded, until it holds or time runs out.
  bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) const;

 private:
  struct Reply {
    int status = 200;
    std::string body;
  };
  struct Connection {
    int fd = -1;
    std::thread thread;
  };

  void acceptLoop(int listenFd);
  void serve(int fd);
  Reply handle(const RecordedRequest& request);
  Reply handleHeartbeat(const RecordedRequest& request);
  Reply handleEvents(const RecordedRequest& request);
  void record(const RecordedRequest& request);
  bool delayReply();

  const std::string token_;
  std::uint16_t port_ = 0;
  int listenFd_ = -1;
  std::thread acceptThread_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool running_ = false;
  std::uint64_t generation_ = 0;  // bumped on every recorded request
  std::vector<Connection> connections_;
  std::size_t connectionsAccepted_ = 0;
  std::vector<RecordedRequest> requests_;
  std::vector<protocol::Heartbeat> heartbeats_;
  std::vector<ReceivedEvent> events_;
  std::uint64_t ackedThrough_ = 0;
  bool sendFullAlways_ = false;
  bool sendFullOnce_ = false;
  EventAckMode eventAckMode_ = EventAckMode::AckAll;
  int heartbeatStatus_ = 200;
  std::optional<std::string> rawHeartbeatReply_;
  std::chrono::milliseconds replyDelay_{0};
};

}  // namespace bai::test
