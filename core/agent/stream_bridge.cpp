#include "agent/stream_bridge.hpp"

#include <condition_variable>

namespace bai::core {

struct StreamBridges::Bridge {
  Bridge(Place place, std::shared_ptr<ws::WebSocket> socket, std::unique_ptr<SessionStream> stream)
      : place(std::move(place)), socket(std::move(socket)), stream(std::move(stream)) {}

  std::optional<Place> place;  // given back when both threads are done
  std::shared_ptr<ws::WebSocket> socket;
  std::unique_ptr<SessionStream> stream;
  std::unique_ptr<ws::BlockingWebSocket> blocking;
  std::thread output;
  std::thread input;
  std::atomic<int> finished{0};  // threads done; 2: joinable without waiting

  std::mutex mutex;
  std::condition_variable changed;
  bool clientEof = false;   // the client sent Eof: nothing more comes from it
  bool clientGone = false;  // its socket closed

  void send(stream::FrameType type, std::string_view payload) { blocking->send(stream::encodeFrame(type, payload)); }

  // The session's output to the client; then, once the client has nothing more to say
  // (or the stream ended with Exit or Error), the socket is closed.
  void pumpOutput() {
    bool final = false;
    while (auto frame = stream->read()) {
      final = frame->type == stream::FrameType::Exit || frame->type == stream::FrameType::Error;
      if (!blocking->send(stream::encodeFrame(frame->type, frame->payload)) || final) break;
    }
    if (!final) {
      // A tunnel's service closed its side: the client may still be sending.
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return clientEof || clientGone; });
    }
    blocking->close(ws::kCloseNormal, final ? "" : "the stream ended");
    stream->close();
    threadDone();
  }

  // The client's frames to the session.
  void pumpInput() {
    while (auto message = blocking->receive()) {
      auto frame = stream::decodeFrame(*message);
      const bool accepted = frame && (frame->type == stream::FrameType::Stdin || frame->type == stream::FrameType::Resize ||
                                      frame->type == stream::FrameType::Eof);
      if (!accepted) {
        send(stream::FrameType::Error, "a client sends only Stdin, Resize and Eof frames");
        blocking->close(ws::kCloseProtocolError, "unexpected frame");
        break;
      }
      if (auto written = stream->write(*frame); !written) {
        send(stream::FrameType::Error, written.error().message);
        blocking->close(ws::kCloseInternalError, "the session's stream failed");
        break;
      }
      if (frame->type == stream::FrameType::Eof) {
        const std::lock_guard lock(mutex);
        clientEof = true;
        changed.notify_all();
      }
    }
    // Gone: a console stays for the next attach, an exec is hung up, a tunnel closed.
    stream->close();
    {
      const std::lock_guard lock(mutex);
      clientGone = true;
      changed.notify_all();
    }
    threadDone();
  }

  void threadDone() {
    if (finished.fetch_add(1) == 1) place.reset();
  }

  void join() {
    if (output.joinable()) output.join();
    if (input.joinable()) input.join();
  }
};

StreamBridges::Place::~Place() {
  if (owner_ != nullptr) owner_->release(sessionId_);
}

StreamBridges::~StreamBridges() { closeAll(); }

void StreamBridges::closeAll() {
  std::vector<std::shared_ptr<Bridge>> bridges;
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    bridges.swap(bridges_);
  }
  for (auto& bridge : bridges) {
    bridge->stream->close();
    bridge->blocking->close(ws::kCloseGoingAway, "the agent is stopping");
  }
  // The close frames have a moment to go out while the server still runs; then nobody
  // waits for a socket whose I/O thread may be gone.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& bridge : bridges) {
    while (bridge->finished < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    bridge->blocking->abandon();
  }
  for (auto& bridge : bridges) bridge->join();
}

Result<StreamBridges::Place> StreamBridges::reserve(const std::string& sessionId) {
  reap();
  const std::lock_guard lock(mutex_);
  std::size_t& count = perSession_[sessionId];
  if (count >= maxPerSession_) {
    return fail(ErrorCode::OutOfRange, "session " + sessionId + " has " + std::to_string(count) +
                                           " open streams, the most this agent allows (interactive.max-connections-per-session)");
  }
  ++count;
  return Place(*this, sessionId);
}

void StreamBridges::release(const std::string& sessionId) {
  const std::lock_guard lock(mutex_);
  if (auto it = perSession_.find(sessionId); it != perSession_.end() && --it->second == 0) perSession_.erase(it);
}

std::size_t StreamBridges::open(const std::string& sessionId) const {
  const std::lock_guard lock(mutex_);
  auto it = perSession_.find(sessionId);
  return it == perSession_.end() ? 0 : it->second;
}

void StreamBridges::bridge(Place place, std::shared_ptr<ws::WebSocket> socket, std::unique_ptr<SessionStream> stream) {
  auto bridge = std::make_shared<Bridge>(std::move(place), std::move(socket), std::move(stream));
  bridge->blocking = std::make_unique<ws::BlockingWebSocket>(bridge->socket);
  const std::lock_guard lock(mutex_);
  if (stopping_) return;  // the bridge's end closes both
  bridge->output = std::thread([bridge] { bridge->pumpOutput(); });
  bridge->input = std::thread([bridge] { bridge->pumpInput(); });
  bridges_.push_back(bridge);
}

void StreamBridges::reap() {
  std::vector<std::shared_ptr<Bridge>> done;
  {
    const std::lock_guard lock(mutex_);
    auto finished = std::partition(bridges_.begin(), bridges_.end(), [](const auto& bridge) { return bridge->finished < 2; });
    done.assign(finished, bridges_.end());
    bridges_.erase(finished, bridges_.end());
  }
  for (auto& bridge : done) bridge->join();
}

}  // namespace bai::core
