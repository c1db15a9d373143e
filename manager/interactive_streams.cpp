#include "interactive_streams.hpp"

#include "http_client.hpp"

#include <vector>

namespace bai::manager {
namespace {

// Past this many sessions remembered, those that ended are forgotten at the next open.
constexpr std::size_t kRememberedSessions = 1024;

const char* pathOf(StreamKind kind) {
  switch (kind) {
    case StreamKind::Attach: return "attach";
    case StreamKind::Exec: return "exec";
    case StreamKind::Service: return "services";
  }
  return "attach";
}

}  // namespace

// One of a session's connections: given back when the last holder drops it.
struct PendingStream::Ticket {
  std::string sessionId;
  std::function<void()> release;
  ~Ticket() {
    if (release) release();
  }
};

std::string StreamTarget::agentTarget() const {
  std::string target = "/v1/sessions/" + http::urlEncode(sessionId) + "/" + pathOf(kind);
  if (kind == StreamKind::Service) target += "/" + http::urlEncode(service) + "/connect";
  return query.empty() ? target : target + "?" + query;
}

PendingStream::~PendingStream() {
  if (!agent_) return;
  // Started only to read the agent's answer to the close.
  std::weak_ptr<ws::WebSocket> weak = agent_;
  agent_->start([weak](std::string) { if (auto socket = weak.lock()) socket->readNext(); }, [](const ws::CloseInfo&) {});
  agent_->close(ws::kCloseGoingAway, "the client left before its stream was accepted");
}

InteractiveStreams::InteractiveStreams(Ledger& ledger, SessionService& sessions, std::string clusterToken,
                                       const ManagerSettings& settings, LogSink log)
    : ledger_(ledger),
      sessions_(sessions),
      clusterToken_(std::move(clusterToken)),
      limits_(settings.interactive),
      options_{settings.interactive.maxFrameBytes, settings.interactive.idleTimeout, ws::Options{}.handshakeTimeout},
      connectTimeout_(settings.agentRpcTimeout),
      agentCaFile_(settings.agentCaFile),
      log_(std::move(log)),
      shared_(std::make_shared<Shared>()),
      connector_(std::make_unique<ws::Connector>()) {}

InteractiveStreams::~InteractiveStreams() {
  shutdown();
  connector_.reset();  // joins its thread while everything its callbacks touch is here
}

void InteractiveStreams::log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, "interactive", message);
}

Outcome<std::string> InteractiveStreams::agentUrlOf(const SessionRecord& session) const {
  const Ledger::Guard guard = ledger_.lock();
  const auto& agents = ledger_.state(guard).agents;
  auto agent = agents.find(session.agentId);
  if (agent == agents.end() || !agent->second.alive()) {
    return refuse(ErrorKind::AgentUnreachable,
                  "session '" + session.id + "' runs on agent '" + session.agentId + "', which is not alive");
  }
  return agent->second.record.rpcUrl;
}

void InteractiveStreams::forgetEndedSessions() {
  std::vector<std::string> idle;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (shared_->sessions.size() <= kRememberedSessions) return;
    for (const auto& [id, streams] : shared_->sessions) {
      if (streams.connections == 0) idle.push_back(id);
    }
  }
  std::vector<std::string> ended;
  {
    const Ledger::Guard guard = ledger_.lock();
    const ClusterState& state = ledger_.state(guard);
    for (auto& id : idle) {
      if (state.active.count(id) == 0) ended.push_back(std::move(id));
    }
  }
  std::lock_guard<std::mutex> lock(shared_->mutex);
  for (const auto& id : ended) {
    auto it = shared_->sessions.find(id);
    if (it != shared_->sessions.end() && it->second.connections == 0) shared_->sessions.erase(it);
  }
}

Outcome<std::shared_ptr<PendingStream::Ticket>> InteractiveStreams::reserve(const std::string& sessionId) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  if (shared_->stopping) return refuse(ErrorKind::ShuttingDown, "the manager is stopping; retry against the restarted one");
  SessionStreams& streams = shared_->sessions[sessionId];
  if (streams.connections >= limits_.maxConnectionsPerSession) {
    return refuse(ErrorKind::TooManyConnections, "session '" + sessionId + "' has " + std::to_string(streams.connections) +
                                                     " connections, the most interactive.max-connections-per-session allows");
  }
  ++streams.connections;
  auto ticket = std::make_shared<PendingStream::Ticket>();
  ticket->sessionId = sessionId;
  ticket->release = [weak = std::weak_ptr<Shared>(shared_), sessionId] {
    auto shared = weak.lock();
    if (!shared) return;
    std::lock_guard<std::mutex> lock(shared->mutex);
    if (auto it = shared->sessions.find(sessionId); it != shared->sessions.end()) --it->second.connections;
  };
  return ticket;
}

void InteractiveStreams::open(const Caller& caller, const StreamTarget& target, OpenCallback done) {
  auto session = sessions_.get(caller, target.sessionId);
  if (!session) return done(Failure{session.error()});
  if (session->status != SessionStatus::Running) {
    return done(refuse(ErrorKind::SessionNotRunning,
                       "session '" + session->id + "' is " + sessionStatusName(session->status) + ", not RUNNING"));
  }
  if (target.kind == StreamKind::Attach && !session->openStdin) {
    return done(refuse(ErrorKind::NotInteractive, "session '" + session->id +
                                                      "' was created without stdin or tty: nothing to attach to "
                                                      "(exec runs another command in it)"));
  }
  auto url = agentUrlOf(*session);
  if (!url) return done(Failure{url.error()});
  forgetEndedSessions();
  auto ticket = reserve(session->id);
  if (!ticket) return done(Failure{ticket.error()});

  ws::ConnectRequest request;
  request.url = *url + target.agentTarget();
  request.headers["Authorization"] = "Bearer " + clusterToken_;
  request.options = options_;
  request.connectTimeout = connectTimeout_;
  request.caFile = agentCaFile_;
  const std::string agentId = session->agentId;
  // The ticket goes with the callback: a refused or failed open frees its connection.
  connector_->connect(std::move(request), [ticket = *ticket, done, agentId, log = log_](Result<ws::ConnectOutcome> outcome) {
    if (!outcome) {
      if (log) log(LogLevel::Warning, "interactive", "agent " + agentId + ": " + outcome.error().message);
      return done(refuse(ErrorKind::AgentUnreachable, "agent '" + agentId + "': " + outcome.error().message));
    }
    if (outcome->socket) return done(StreamOpening{std::shared_ptr<PendingStream>(new PendingStream(outcome->socket, ticket)), {}});
    const ws::Declined declined = outcome->declined.value_or(ws::Declined{});
    done(StreamOpening{nullptr, AgentReply{declined.status, "application/json", declined.body, {}}});
  });
}

void InteractiveStreams::relay(const std::shared_ptr<PendingStream>& stream, std::shared_ptr<ws::WebSocket> client) {
  std::shared_ptr<ws::WebSocket> agent = std::move(stream->agent_);
  std::shared_ptr<PendingStream::Ticket> ticket = std::move(stream->ticket_);
  if (!agent || !ticket) return client->close(ws::kCloseInternalError, "this stream was relayed already");
  const std::string id = ticket->sessionId;
  std::weak_ptr<Shared> weakShared = shared_;
  auto self = std::make_shared<std::weak_ptr<StreamRelay>>();  // how the relay's end finds it in the set
  std::shared_ptr<std::atomic<std::int64_t>> activity;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    activity = shared_->sessions[id].lastActivity;
  }
  auto relay = StreamRelay::make(
      client, agent, [activity] { activity->store(nowMillis(), std::memory_order_relaxed); },
      [weakShared, id, self, ticket] {
        auto shared = weakShared.lock();
        if (!shared) return;
        std::shared_ptr<StreamRelay> ended;  // and with it the ticket: released after the lock
        std::lock_guard<std::mutex> lock(shared->mutex);
        auto it = shared->sessions.find(id);
        if (it == shared->sessions.end()) return;
        if (auto found = it->second.relays.find(self->lock()); found != it->second.relays.end()) {
          ended = *found;
          it->second.relays.erase(found);
        }
      });
  *self = relay;
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    stopping = shared_->stopping;
    if (!stopping) shared_->sessions[id].relays.insert(relay);
  }
  relay->start();  // outside the lock: its end takes it
  if (stopping) relay->close(ws::kCloseGoingAway, "the manager is stopping");
}

std::optional<std::int64_t> InteractiveStreams::lastActivityMillis(const std::string& sessionId) const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  auto it = shared_->sessions.find(sessionId);
  if (it == shared_->sessions.end()) return std::nullopt;
  const std::int64_t at = it->second.lastActivity->load(std::memory_order_relaxed);
  return at == 0 ? std::nullopt : std::optional(at);
}

int InteractiveStreams::connections(const std::string& sessionId) const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  auto it = shared_->sessions.find(sessionId);
  return it == shared_->sessions.end() ? 0 : it->second.connections;
}

std::size_t InteractiveStreams::queuedBytes() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  std::size_t bytes = 0;
  for (const auto& [id, streams] : shared_->sessions) {
    for (const auto& relay : streams.relays) bytes += relay->queuedBytes();
  }
  return bytes;
}

std::size_t InteractiveStreams::relayedStreams() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  std::size_t streams = 0;
  for (const auto& [id, session] : shared_->sessions) streams += session.relays.size();
  return streams;
}

void InteractiveStreams::shutdown() {
  std::vector<std::shared_ptr<StreamRelay>> open;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stopping = true;
    for (auto& [id, streams] : shared_->sessions) {
      open.insert(open.end(), streams.relays.begin(), streams.relays.end());
      streams.relays.clear();
    }
  }
  // Dropped once closed: a client's socket must not be touched after its HTTP server
  // stopped, which follows the manager's shutdown.
  for (const auto& relay : open) relay->close(ws::kCloseGoingAway, "the manager is stopping");
}

}  // namespace bai::manager
