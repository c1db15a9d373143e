#include "http_server.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

namespace bai::http {
namespace {

struct Reply {
  long status = 0;
  std::string body;
  long connects = 0;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One curl handle per client: reusing it keeps the connection alive.
class Client {
 public:
  Client() : curl_(curl_easy_init()) {}
  ~Client() { curl_easy_cleanup(curl_); }
  Reply request(const std::string& url, const std::string& method = "GET", const std::string& body = "",
                bool insecureTls = false) {
    Reply reply;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, method == "GET" ? nullptr : body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, insecureTls ? 0L : 1L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, insecureTls ? 0L : 2L);
    if (curl_easy_perform(curl_) == CURLE_OK) {
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
      curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &reply.connects);
    }
    return reply;
  }

 private:
  CURL* curl_;
};

Response echo(const Request& r) {
  std::string query;
  for (const auto& [k, v] : r.query) query += k + "=" + v + ";";
  return Response{200, "text/plain", r.method + " " + r.path + " " + query + " " + r.body + " " + r.header("x-test"), {}};
}

TEST(HttpServer, ServesRequestsOnAnEphemeralPortWithKeepAlive) {
  Server server({"127.0.0.1", 0, 2, 64, "", ""}, echo);
  ASSERT_TRUE(server.start().ok());
  ASSERT_NE(server.port(), 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  Client client;
  Reply first = client.request(base + "/v1/x?a=1&b=hello%20world", "POST", "payload");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "POST /v1/x a=1;b=hello world; payload ");
  EXPECT_EQ(first.connects, 1);
  Reply second = client.request(base + "/y");
  EXPECT_EQ(second.body, "GET /y   ");
  EXPECT_EQ(second.connects, 0) << "the second request reused the connection";
}

TEST(HttpServer, RefusesBodiesOverTheLimit) {
  Server server({"127.0.0.1", 0, 1, 64, "", ""}, echo);
  ASSERT_TRUE(server.start().ok());
  Client client;
  Reply reply = client.request("http://127.0.0.1:" + std::to_string(server.port()) + "/", "POST", std::string(1000, 'x'));
  EXPECT_EQ(reply.status, 413);
  EXPECT_NE(reply.body.find("body-too-large"), std::string::npos);
}

TEST(HttpServer, AHandlerExceptionIsA500) {
  Server server({"127.0.0.1", 0, 1, 1024, "", ""}, [](const Request&) -> Response { throw std::runtime_error("boom"); });
  ASSERT_TRUE(server.start().ok());
  Client client;
  Reply reply = client.request("http://127.0.0.1:" + std::to_string(server.port()) + "/");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.body.find("boom"), std::string::npos) << "internal details stay inside";
}

TEST(HttpServer, ADeferredAnswerHoldsNoThread) {
  // One server thread: the parked request must not stop the second one being served.
  std::mutex mutex;
  std::optional<Responder> parked;
  Server server({"127.0.0.1", 0, 1, 1024, "", ""}, AsyncHandler([&](Request request, Responder respond) {
                  if (request.path == "/park") {
                    std::lock_guard<std::mutex> lock(mutex);
                    parked = std::move(respond);
                    return;
                  }
                  respond(Response{200, "text/plain", "quick", {}});
                }));
  ASSERT_TRUE(server.start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  Reply parkedReply;
  std::thread waiter([&] { parkedReply = Client().request(base + "/park"); });
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (parked) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Reply quick = Client().request(base + "/other");
  EXPECT_EQ(quick.body, "quick");
  EXPECT_EQ(parkedReply.status, 0) << "the parked request is still waiting";
  {
    std::lock_guard<std::mutex> lock(mutex);
    ASSERT_TRUE(parked.has_value());
    (*parked)(Response{202, "text/plain", "late", {}});
    (*parked)(Response{500, "text/plain", "twice", {}});  // ignored: one answer per request
    parked.reset();
  }
  waiter.join();
  EXPECT_EQ(parkedReply.status, 202);
  EXPECT_EQ(parkedReply.body, "late");
}

TEST(HttpServer, RejectsABadListenAddress) {
  Server bad({"not-an-address", 0, 1, 1024, "", ""}, echo);
  auto badStart = bad.start();
  ASSERT_FALSE(badStart.ok());
  EXPECT_NE(badStart.error().message.find("listen address 'not-an-address'"), std::string::npos);
}

TEST(HttpServer, ServesTlsWithASelfSignedPair) {
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  const auto dir = std::filesystem::temp_directory_path() / ("bai-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string make = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                           " -out " + cert + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(make.c_str()), 0);
  Server server({"127.0.0.1", 0, 1, 1024, cert, key}, echo);
  ASSERT_TRUE(server.start().ok());
  Client client;
  Reply reply = client.request("https://127.0.0.1:" + std::to_string(server.port()) + "/secure", "GET", "", true);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "GET /secure   ");
  Reply plain = client.request("http://127.0.0.1:" + std::to_string(server.port()) + "/secure");
  EXPECT_NE(plain.status, 200);
  Server broken({"127.0.0.1", 0, 1, 1024, cert, (dir / "missing.pem").string()}, echo);
  auto brokenStart = broken.start();
  ASSERT_FALSE(brokenStart.ok());
  EXPECT_NE(brokenStart.error().message.find("TLS certificate or key"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(HttpServer, HostPortAndDecoding) {
  EXPECT_EQ(splitHostPort("127.0.0.1:6001").value(), (std::pair<std::string, std::uint16_t>{"127.0.0.1", 6001}));
  EXPECT_EQ(splitHostPort("[::1]:80").value().first, "::1");
  EXPECT_FALSE(splitHostPort("localhost").ok());
  EXPECT_FALSE(splitHostPort("host:99999").ok());
  EXPECT_FALSE(splitHostPort(":80").ok());
  EXPECT_FALSE(splitHostPort("host:8x").ok());
  EXPECT_EQ(urlDecode("a%2Fb+c%zz"), "a/b c%zz");
}

}  // namespace
}  // namespace bai::http
