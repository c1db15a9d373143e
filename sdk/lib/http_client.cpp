#include "http_client.hpp"

#include <curl/curl.h>

#include <cctype>
#include <map>
#include <memory>
#include <mutex>

namespace bai::http {
namespace {

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};

// One handle per thread keeps its connections alive between calls without locking.
CURL* threadHandle() {
  thread_local std::unique_ptr<CURL, EasyDeleter> handle(curl_easy_init());
  return handle.get();
}

struct Sink {
  std::string* body;
  std::size_t limit;
  CURL* easy;
  const ClientRequest* request;
  ClientResponse* head;
  bool tooLarge = false;
  bool streamStopped = false;
};

int statusOf(CURL* easy) {
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  return static_cast<int>(status);
}

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  auto* sink = static_cast<Sink*>(out);
  const std::size_t bytes = size * count;
  if (sink->request->bodySink && (sink->head->status = statusOf(sink->easy)) >= 200 && sink->head->status <= 299) {
    if (sink->request->bodySink(std::string_view(data, bytes), *sink->head)) return bytes;
    sink->streamStopped = true;
    return 0;
  }
  if (sink->body->size() + bytes > sink->limit) {
    sink->tooLarge = true;
    return 0;
  }
  sink->body->append(data, bytes);
  return bytes;
}

// One header line of the answer ("Name: value\r\n"); the status line and the blank line
// that ends the headers have no colon.
std::size_t collectHeader(char* data, std::size_t size, std::size_t count, void* out) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(out);
  const std::string line(data, size * count);
  const std::size_t colon = line.find(':');
  if (colon == std::string::npos || headers->size() >= 64) return size * count;
  std::string name = line.substr(0, colon);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::size_t start = line.find_first_not_of(" \t", colon + 1);
  const std::size_t end = line.find_last_not_of(" \t\r\n");
  (*headers)[name] = start == std::string::npos || end < start ? "" : line.substr(start, end - start + 1);
  return size * count;
}

// CURLOPT_READFUNCTION over ClientRequest::bodySource, counting what it gave.
struct BodySourceRead {
  const ClientRequest* request;
  std::uint64_t at = 0;
};
std::size_t readBodySource(char* buffer, std::size_t size, std::size_t count, void* data) {
  auto* read = static_cast<BodySourceRead*>(data);
  const std::size_t n = read->request->bodySource(buffer, size * count, read->at);
  read->at += n;
  return n;
}

}  // namespace

Result<void> initialiseCurl() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) return fail(ErrorCode::Internal, std::string("libcurl init failed: ") + curl_easy_strerror(result));
  return {};
}

Result<ClientResponse> send(const ClientRequest& request) {
  if (auto init = initialiseCurl(); !init) return fail(init.error().code, init.error().message);
  CURL* easy = threadHandle();
  if (easy == nullptr) return fail(ErrorCode::Internal, "libcurl could not create a handle");
  curl_easy_reset(easy);
  ClientResponse response;
  Sink sink{&response.body, request.maxReplyBytes, easy, &request, &response};
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) headers = curl_slist_append(headers, (name + ": " + value).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for bodies over 1 KiB
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headerList(headers, &curl_slist_free_all);
  char errorBuffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  BodySourceRead bodyRead{&request};
  if (request.bodySource) {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, &readBodySource);
    curl_easy_setopt(easy, CURLOPT_READDATA, &bodyRead);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.bodySourceBytes));
    curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);  // the largest curl takes: fewer, larger sends
  } else if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headerList.get());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &collectHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errorBuffer);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connectTimeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, request.verifyTls ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, request.verifyTls ? 2L : 0L);
  if (!request.caFile.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, request.caFile.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  const CURLcode code = curl_easy_perform(easy);
  if (sink.tooLarge) {
    return fail(ErrorCode::OutOfRange, request.method + " " + request.url + ": reply larger than " +
                                           std::to_string(request.maxReplyBytes) + " bytes");
  }
  if (sink.streamStopped) return fail(ErrorCode::Internal, request.method + " " + request.url + ": the body's receiver stopped");
  if (code != CURLE_OK) {
    return fail(ErrorCode::Internal, request.method + " " + request.url + ": " +
                                         (errorBuffer[0] != '\0' ? errorBuffer : curl_easy_strerror(code)));
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  char* contentType = nullptr;
  curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &contentType);
  if (contentType != nullptr) response.contentType = contentType;
  return response;
}

std::string urlEncode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace bai::http
