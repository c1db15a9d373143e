// Joins a client's WebSocket to an agent's: every message of one is sent to the other
// unchanged, and either side closing closes the other with the same code. Back-pressure:
// a side's next message is read only once its previous one was written to the other
// side, so a relay holds at most one message each way however slow either peer is.
//
// Threads: each socket's callbacks run on its own I/O thread (the HTTP server's for the
// client, the connector's for the agent); every method may be called from any thread.
#pragma once

#include "websocket.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace bai::manager {

class StreamRelay : public std::enable_shared_from_this<StreamRelay> {
 public:
  using OnMessage = std::function<void()>;  // a message was passed on, either way
  using OnEnd = std::function<void()>;      // both sides are closed; called once

  // The sockets must not be started yet. The relay lives while someone holds it; its
  // sockets' callbacks only hold it weakly, so dropping it stops relaying.
  static std::shared_ptr<StreamRelay> make(std::shared_ptr<ws::WebSocket> client, std::shared_ptr<ws::WebSocket> agent,
                                           OnMessage onMessage, OnEnd onEnd);
  // Starts reading both sides; call once, after whoever holds the relay has it (onEnd
  // may run before start returns).
  void start();

  // Closes both sides (the manager stops, say).
  void close(std::uint16_t code, const std::string& reason);
  // Bytes this relay has queued towards either peer and not yet written.
  std::size_t queuedBytes() const;

 private:
  enum Side { kClient = 0, kAgent = 1 };

  StreamRelay(std::shared_ptr<ws::WebSocket> client, std::shared_ptr<ws::WebSocket> agent, OnMessage onMessage, OnEnd onEnd);
  void pump(Side from);
  void closed(Side side, const ws::CloseInfo& info);

  std::shared_ptr<ws::WebSocket> sockets_[2];  // set once, before any callback
  OnMessage onMessage_;
  OnEnd onEnd_;

  std::mutex mutex_;
  bool closed_[2] = {false, false};  // under mutex_
};

// The close code to send on when the other side closed with `code`: the same one, but
// codes that may never be sent (1005, 1006, 1015, unassigned) become 1001 (going away).
std::uint16_t closeCodeToPassOn(std::uint16_t code);

}  // namespace bai::manager
