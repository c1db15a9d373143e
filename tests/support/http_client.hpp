// Test support: a small libcurl client. One object keeps its connection alive.
#pragma once

#include <curl/curl.h>

#include <string>
#include <vector>

namespace bai::testing {

struct HttpReply {
  long status = 0;  // 0 when the request did not complete
  std::string body;
  long connects = 0;
};

class HttpClient {
 public:
  explicit HttpClient(std::string base = "", std::string bearer = "")
      : base_(std::move(base)), bearer_(std::move(bearer)), curl_(curl_easy_init()) {}
  ~HttpClient() { curl_easy_cleanup(curl_); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void setBearer(std::string token) { bearer_ = std::move(token); }

  HttpReply request(const std::string& method, const std::string& path, const std::string& body = "",
                    bool insecureTls = false) {
    HttpReply reply;
    const std::string url = base_ + path;
    curl_slist* headers = nullptr;
    if (!bearer_.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + bearer_).c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, method == "GET" || method == "DELETE" ? nullptr : body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, insecureTls ? 0L : 1L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, insecureTls ? 0L : 2L);
    if (curl_easy_perform(curl_) == CURLE_OK) {
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
      curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &reply.connects);
    }
    curl_slist_free_all(headers);
    return reply;
  }
  HttpReply get(const std::string& path) { return request("GET", path); }
  HttpReply post(const std::string& path, const std::string& body) { return request("POST", path, body); }
  HttpReply del(const std::string& path) { return request("DELETE", path); }

 private:
  static std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
  }

  std::string base_;
  std::string bearer_;
  CURL* curl_;
};

}  // namespace bai::testing
