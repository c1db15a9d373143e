// Pumps a session's streams to and from WebSockets: per stream one thread carries the
// session's output to the socket, sending the next frame only once the previous one is
// written (so a slow client slows the session, never grows the agent), and one carries
// the client's frames to the session. Counts the streams of each session against a
// limit, and ends them all when the agent stops.
#pragma once

#include "agent/session_stream.hpp"
#include "websocket.hpp"

#include <bai/result.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bai::core {

class StreamBridges {
 public:
  explicit StreamBridges(std::size_t maxPerSession) : maxPerSession_(maxPerSession) {}
  // Ends every stream still open and joins their threads (closeAll).
  ~StreamBridges();
  StreamBridges(const StreamBridges&) = delete;
  StreamBridges& operator=(const StreamBridges&) = delete;

  // A place for one more stream of `sessionId`; OutOfRange when it has the most it may.
  // The place is the session's until the stream it is given to ends (or it is dropped).
  class Place {
   public:
    Place(StreamBridges& owner, std::string sessionId) : owner_(&owner), sessionId_(std::move(sessionId)) {}
    Place(Place&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), sessionId_(std::move(other.sessionId_)) {}
    Place& operator=(Place&&) = delete;
    ~Place();
    const std::string& sessionId() const { return sessionId_; }

   private:
    StreamBridges* owner_;
    std::string sessionId_;
  };
  Result<Place> reserve(const std::string& sessionId);

  // Pumps `stream` to and from `socket` until either ends; then both are closed.
  void bridge(Place place, std::shared_ptr<ws::WebSocket> socket, std::unique_ptr<SessionStream> stream);

  std::size_t open(const std::string& sessionId) const;
  // Ends every stream (their clients get 1001) and takes no more; call while the server
  // whose sockets they use still runs.
  void closeAll();

 private:
  struct Bridge;
  void run(std::shared_ptr<Bridge> bridge);
  void release(const std::string& sessionId);
  void reap();

  const std::size_t maxPerSession_;
  mutable std::mutex mutex_;
  std::map<std::string, std::size_t> perSession_;
  std::vector<std::shared_ptr<Bridge>> bridges_;
  bool stopping_ = false;
};

}  // namespace bai::core
