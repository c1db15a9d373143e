#include "report/manager_client.hpp"

#include "http_client.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

namespace bai::core {
namespace {

// A manager's replies are a few hundred bytes; anything far larger is not one.
constexpr std::size_t kMaxReplyBytes = 1 << 20;
// How long one wait for socket activity may last before the cancel flag is looked at
// again; curl_multi_wakeup() normally ends the wait sooner.
constexpr int kPollMillis = 1000;

ErrorCode errorCodeForStatus(long status) {
  if (status == 404) return ErrorCode::NotFound;
  if (status == 409) return ErrorCode::Conflict;
  if (status >= 400 && status < 500) return ErrorCode::InvalidArgument;
  return ErrorCode::Internal;
}

std::string describeErrorBody(const std::string& body) {
  auto error = protocol::ApiError::fromJson(body);
  if (!error) return "no error document in the reply";
  std::string text = error->type + ": " + error->title;
  if (!error->detail.empty()) text += ": " + error->detail;
  return text;
}

}  // namespace

struct ManagerClient::Impl {
  ManagerClientOptions options;
  std::string heartbeatUrl;
  std::string eventsUrl;
  CURL* easy = nullptr;
  CURLM* multi = nullptr;  // owns the connection cache, so the connection outlives each call
  curl_slist* headers = nullptr;
  char errorBuffer[CURL_ERROR_SIZE] = {};
  std::string reply;
  bool replyTooLarge = false;
  int lastStatus = 0;
  std::atomic<bool> cancelled{false};

  ~Impl() {
    if (multi != nullptr) curl_multi_cleanup(multi);
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }

  Result<void> configure();
  Result<std::string> post(const std::string& url, const std::string& body, const std::string& what);
  Result<CURLcode> transfer();
  Result<std::string> agentUrl(const char* endpoint) const;
  Failure<Error> failure(ErrorCode code, std::string message) const;

  static size_t collectReply(char* data, size_t size, size_t count, void* self);
};

size_t ManagerClient::Impl::collectReply(char* data, size_t size, size_t count, void* self) {
  auto* impl = static_cast<Impl*>(self);
  const size_t bytes = size * count;
  if (impl->reply.size() + bytes > kMaxReplyBytes) {
    impl->replyTooLarge = true;
    return 0;  // makes curl abort the transfer
  }
  impl->reply.append(data, bytes);
  return bytes;
}

// Nothing we build contains the token, but a server may echo it back in an error.
Failure<Error> ManagerClient::Impl::failure(ErrorCode code, std::string message) const {
  const std::string& token = options.token;
  for (auto at = token.empty() ? std::string::npos : message.find(token); at != std::string::npos;
       at = message.find(token, at)) {
    message.replace(at, token.size(), "<redacted>");
  }
  return fail(code, std::move(message));
}

Result<std::string> ManagerClient::Impl::agentUrl(const char* endpoint) const {
  std::string base = options.managerUrl;
  while (!base.empty() && base.back() == '/') base.pop_back();
  char* escapedId = curl_easy_escape(easy, options.agentId.c_str(), static_cast<int>(options.agentId.size()));
  if (escapedId == nullptr) return fail(ErrorCode::Internal, "libcurl could not escape the agent id");
  std::string url = base + "/v1/agents/" + escapedId + "/" + endpoint;
  curl_free(escapedId);
  return url;
}

Result<void> ManagerClient::Impl::configure() {
  easy = curl_easy_init();
  multi = curl_multi_init();
  if (easy == nullptr || multi == nullptr) return fail(ErrorCode::Internal, "libcurl could not create a handle");

  const std::string authorization = "Authorization: Bearer " + options.token;
  for (const char* header : {authorization.c_str(), "Content-Type: application/json", "Accept: application/json",
                             "Expect:"}) {  // no 100-continue round trip for larger heartbeats
    curl_slist* extended = curl_slist_append(headers, header);
    if (extended == nullptr) return fail(ErrorCode::Internal, "libcurl could not build the request headers");
    headers = extended;
  }

  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // the agent is multithreaded
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connectTimeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.requestTimeout.count()));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  // The cluster link goes straight to the manager: an http_proxy variable meant for
  // something else must not receive the cluster token.
  curl_easy_setopt(easy, CURLOPT_PROXY, "");
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "bai-agent");
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errorBuffer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Impl::collectReply);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);

  auto heartbeat = agentUrl("heartbeat");
  auto events = agentUrl("events");
  if (!heartbeat || !events) return fail(ErrorCode::Internal, "libcurl could not escape the agent id");
  heartbeatUrl = std::move(*heartbeat);
  eventsUrl = std::move(*events);
  return {};
}

// Runs one transfer on the multi handle so that cancel() can interrupt the wait.
Result<CURLcode> ManagerClient::Impl::transfer() {
  if (CURLMcode added = curl_multi_add_handle(multi, easy); added != CURLM_OK) {
    return fail(ErrorCode::Internal, curl_multi_strerror(added));
  }
  std::optional<CURLcode> outcome;
  while (!outcome && !cancelled.load()) {
    int running = 0;
    if (CURLMcode performed = curl_multi_perform(multi, &running); performed != CURLM_OK) {
      curl_multi_remove_handle(multi, easy);
      return fail(ErrorCode::Internal, curl_multi_strerror(performed));
    }
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg == CURLMSG_DONE && message->easy_handle == easy) outcome = message->data.result;
    }
    if (!outcome) curl_multi_poll(multi, nullptr, 0, kPollMillis, nullptr);
  }
  curl_multi_remove_handle(multi, easy);
  if (!outcome) return fail(ErrorCode::Internal, "cancelled");
  return *outcome;
}

Result<std::string> ManagerClient::Impl::post(const std::string& url, const std::string& body,
                                              const std::string& what) {
  const std::string context = what + " to " + url;
  lastStatus = 0;
  if (cancelled.load()) return failure(ErrorCode::Internal, context + ": cancelled");
  reply.clear();
  replyTooLarge = false;
  errorBuffer[0] = '\0';
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));

  auto outcome = transfer();
  if (!outcome) return failure(ErrorCode::Internal, context + ": " + outcome.error().message);
  if (replyTooLarge) return failure(ErrorCode::InvalidArgument, context + ": the reply exceeds 1 MiB");
  if (*outcome != CURLE_OK) {
    const char* reason = errorBuffer[0] != '\0' ? errorBuffer : curl_easy_strerror(*outcome);
    return failure(ErrorCode::Internal, context + " failed: " + reason);
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  lastStatus = static_cast<int>(status);
  if (status < 200 || status > 299) {
    return failure(errorCodeForStatus(status),
                   context + ": manager answered HTTP " + std::to_string(status) + " (" + describeErrorBody(reply) + ")");
  }
  return std::move(reply);
}

ManagerClient::ManagerClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ManagerClient::ManagerClient(ManagerClient&&) noexcept = default;
ManagerClient& ManagerClient::operator=(ManagerClient&&) noexcept = default;
ManagerClient::~ManagerClient() = default;

Result<ManagerClient> ManagerClient::create(ManagerClientOptions options) {
  const std::string& url = options.managerUrl;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return fail(ErrorCode::InvalidArgument, "manager URL '" + url + "' must start with http:// or https://");
  }
  if (options.agentId.empty()) return fail(ErrorCode::InvalidArgument, "the agent id is empty");
  if (options.token.empty()) return fail(ErrorCode::InvalidArgument, "the cluster token is empty");
  if (!isPrintableWithoutSpaces(options.token)) {
    return fail(ErrorCode::InvalidArgument, "the cluster token contains whitespace or control characters");
  }
  if (auto initialised = http::initialiseCurl(); !initialised) return Failure{initialised.error()};

  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  if (auto configured = impl->configure(); !configured) return Failure{configured.error()};
  return ManagerClient(std::move(impl));
}

Result<protocol::HeartbeatReply> ManagerClient::heartbeat(const protocol::Heartbeat& heartbeat) {
  auto reply = impl_->post(impl_->heartbeatUrl, heartbeat.toJson(), "heartbeat");
  if (!reply) return Failure{reply.error()};
  auto parsed = protocol::HeartbeatReply::fromJson(*reply);
  if (!parsed) return impl_->failure(ErrorCode::InvalidArgument, "heartbeat reply from the manager: " + parsed.error().message);
  return parsed;
}

Result<protocol::EventAck> ManagerClient::sendEvents(const protocol::EventBatch& batch) {
  auto reply = impl_->post(impl_->eventsUrl, batch.toJson(), "events");
  if (!reply) return Failure{reply.error()};
  auto parsed = protocol::EventAck::fromJson(*reply);
  if (!parsed) return impl_->failure(ErrorCode::InvalidArgument, "event ack from the manager: " + parsed.error().message);
  return parsed;
}

int ManagerClient::lastHttpStatus() const { return impl_->lastStatus; }

void ManagerClient::cancel() {
  impl_->cancelled.store(true);
  curl_multi_wakeup(impl_->multi);
}

}  // namespace bai::core
