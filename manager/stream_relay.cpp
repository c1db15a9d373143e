#include "stream_relay.hpp"

namespace bai::manager {

std::uint16_t closeCodeToPassOn(std::uint16_t code) {
  const bool sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  return sendable ? code : ws::kCloseGoingAway;
}

StreamRelay::StreamRelay(std::shared_ptr<ws::WebSocket> client, std::shared_ptr<ws::WebSocket> agent, OnMessage onMessage,
                         OnEnd onEnd)
    : sockets_{std::move(client), std::move(agent)}, onMessage_(std::move(onMessage)), onEnd_(std::move(onEnd)) {}

std::shared_ptr<StreamRelay> StreamRelay::make(std::shared_ptr<ws::WebSocket> client, std::shared_ptr<ws::WebSocket> agent,
                                               OnMessage onMessage, OnEnd onEnd) {
  return std::shared_ptr<StreamRelay>(new StreamRelay(std::move(client), std::move(agent), std::move(onMessage), std::move(onEnd)));
}

void StreamRelay::start() {
  pump(kClient);
  pump(kAgent);
}

void StreamRelay::pump(Side from) {
  const Side to = from == kClient ? kAgent : kClient;
  std::weak_ptr<StreamRelay> weak = weak_from_this();
  sockets_[from]->start(
      [weak, from, to](std::string message) {
        auto self = weak.lock();
        if (!self) return;
        self->onMessage_();
        // The sender's next message is read only once this one is written on.
        std::weak_ptr<ws::WebSocket> source = self->sockets_[from];
        self->sockets_[to]->send(std::move(message), [source](bool written) {
          if (auto socket = source.lock(); socket && written) socket->readNext();
        });
      },
      [weak, from](const ws::CloseInfo& info) {
        if (auto self = weak.lock()) self->closed(from, info);
      });
}

void StreamRelay::closed(Side side, const ws::CloseInfo& info) {
  const Side other = side == kClient ? kAgent : kClient;
  bool closeOther = false, ended = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_[side]) return;
    closed_[side] = true;
    closeOther = !closed_[other];
    ended = !closeOther;
  }
  if (closeOther) {
    // A close frame's reason has room for 123 bytes.
    sockets_[other]->close(closeCodeToPassOn(info.code), info.reason.substr(0, 123));
  }
  if (ended) onEnd_();
}

void StreamRelay::close(std::uint16_t code, const std::string& reason) {
  for (const auto& socket : sockets_) socket->close(code, reason);
}

std::size_t StreamRelay::queuedBytes() const { return sockets_[kClient]->queuedBytes() + sockets_[kAgent]->queuedBytes(); }

}  // namespace bai::manager
