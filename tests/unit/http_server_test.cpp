#include "http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

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
  // A server that never answers fails the test, not the suite's timeout.
  Client() : curl_(curl_easy_init()) { curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 20L); }
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

TEST(HttpServer, ASecondServerCannotTakeTheSamePort) {
  Server first({"127.0.0.1", 0, 2, 1024, "", ""}, echo);
  ASSERT_TRUE(first.start().ok());
  Server second({"127.0.0.1", first.port(), 2, 1024, "", ""}, echo);
  const auto started = second.start();
  ASSERT_FALSE(started.ok()) << "two daemons would share the port, each taking half of the connections";
  EXPECT_NE(started.error().message.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << started.error().message;
  Client client;
  EXPECT_EQ(client.request("http://127.0.0.1:" + std::to_string(first.port()) + "/still").body, "GET /still   ");
}

TEST(HttpServer, InvalidUtf8InThePathOrQueryIsA400) {
  Server server({"127.0.0.1", 0, 1, 1024, "", ""}, echo);
  ASSERT_TRUE(server.start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  Client client;
  for (const char* target : {"/v1/sessions/%ff", "/v1/sessions?status=%ff", "/v1/x?%c3=1", "/v1/%ed%a0%80",
                             "/v1/%c0%af"}) {
    const Reply reply = client.request(base + target);
    EXPECT_EQ(reply.status, 400) << target << ": " << reply.body;
    EXPECT_NE(reply.body.find("not valid UTF-8"), std::string::npos) << reply.body;
  }
  EXPECT_EQ(client.request(base + "/caf%C3%A9?q=%E2%82%AC").status, 200);
}

TEST(HttpServer, Utf8Validation) {
  for (const char* good : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(isValidUtf8(good)) << good;
  }
  for (const char* bad : {"\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          "\x80", "a\xe2\x82"}) {
    EXPECT_FALSE(isValidUtf8(bad)) << bad;
  }
}

// Ticks of CPU time (user + system) the process has used.
long cpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  long user = 0, system = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) user = std::stol(field);
    if (i == 15) system = std::stol(field);
  }
  return user + system;
}

int connectTo(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Serves in a child whose descriptor limit leaves room for a few connections; writes the
// port to `out` and never returns.
[[noreturn]] void serveWithFewDescriptors(int out) {
  auto counters = std::make_shared<ServerCounters>();
  ServerOptions options{"127.0.0.1", 0, 2, 1024, "", ""};
  options.counters = counters;
  Server server(options, [counters](const Request&) {
    return Response{200, "text/plain", serverCountersText("test", *counters), {}};
  });
  if (!server.start().ok()) ::_exit(1);
  int highest = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  // Fills the holes below the highest descriptor, so that exactly four are left.
  for (int fd = ::open("/dev/null", O_RDONLY); fd >= 0; fd = ::open("/dev/null", O_RDONLY)) {
    if (fd < highest) continue;
    ::close(fd);
    break;
  }
  const rlimit limit{static_cast<rlim_t>(highest + 5), static_cast<rlim_t>(highest + 5)};
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(1);
  const std::uint16_t port = server.port();
  if (::write(out, &port, sizeof port) != sizeof port) ::_exit(1);
  for (;;) ::pause();
}

// Every connection sent one request and waits: for an answer, or to be closed. The
// ones still waiting after `limit`.
int stillWaiting(std::vector<int>& connections, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  std::vector<bool> done(connections.size(), false);
  int waiting = static_cast<int>(connections.size());
  while (waiting > 0 && std::chrono::steady_clock::now() < end) {
    for (std::size_t i = 0; i < connections.size(); ++i) {
      pollfd entry{connections[i], POLLIN, 0};
      if (done[i] || ::poll(&entry, 1, 0) <= 0) continue;
      char buffer[4096];
      (void)::read(connections[i], buffer, sizeof buffer);
      done[i] = true;
      --waiting;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return waiting;
}

TEST(HttpServer, OutOfDescriptorsShedsIdleConnectionsInsteadOfSpinning) {
  int pipeEnds[2];
  ASSERT_EQ(::pipe(pipeEnds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives a test that failed or was killed
    ::close(pipeEnds[0]);
    serveWithFewDescriptors(pipeEnds[1]);
  }
  ::close(pipeEnds[1]);
  std::uint16_t port = 0;
  ASSERT_EQ(::read(pipeEnds[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ::close(pipeEnds[0]);

  // More connections than descriptors: the rest wait in the listen backlog.
  std::vector<int> connections;
  const std::string request = "GET /x HTTP/1.1\r\nHost: test\r\n\r\n";
  for (int i = 0; i < 16; ++i) {
    const int fd = connectTo(port);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    connections.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long before = cpuTicks(child);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long used = cpuTicks(child) - before;
  // A spinning acceptor took 23 ticks of 100 on a machine loaded 6 times over; one that
  // backs off takes none or one.
  EXPECT_LT(used, sysconf(_SC_CLK_TCK) / 12) << "the acceptor spins: " << used << " ticks in one second";
  EXPECT_EQ(stillWaiting(connections, std::chrono::seconds(5)), 0) << "idle connections were not shed for new ones";
  for (int fd : connections) ::close(fd);

  Client client;
  const Reply figures = client.request("http://127.0.0.1:" + std::to_string(port) + "/metrics");
  EXPECT_EQ(figures.status, 200);
  const std::string exhausted = "\ntest_http_descriptors_exhausted_total ";
  const std::size_t at = figures.body.find(exhausted);
  ASSERT_NE(at, std::string::npos) << figures.body;
  const long failedAccepts = std::stol(figures.body.substr(at + exhausted.size()));
  EXPECT_GT(failedAccepts, 0) << figures.body;
  EXPECT_LT(failedAccepts, 200) << "each failed accept waits before the next";
  EXPECT_EQ(figures.body.find("test_http_connections_shed_total 0\n"), std::string::npos) << figures.body;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

// A handler's file range is written in pieces, the bytes intact, and the connection stays
// open for the next request.
TEST(HttpServer, StreamsAFileRangeAndKeepsTheConnection) {
  const auto path = std::filesystem::temp_directory_path() / ("bai-http-file-" + std::to_string(::getpid()));
  std::string content(64 << 20, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 7919 + i / 4096) & 0xff);
  std::ofstream(path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
  Server server({"127.0.0.1", 0, 1, 64, "", ""}, [&](const Request& request) {
    Response response;
    response.contentType = "application/octet-stream";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    const std::uint64_t offset = request.path == "/middle" ? 1000 : 0;
    const std::uint64_t length = request.path == "/middle" ? 5000 : content.size();
    response.file = std::make_shared<FileBody>(fd, offset, length);
    return response;
  });
  ASSERT_TRUE(server.start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  Client client;
  const Reply whole = client.request(base + "/whole");
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body.size(), content.size());
  EXPECT_TRUE(whole.body == content) << "the streamed bytes differ from the file's";
  const Reply middle = client.request(base + "/middle");
  EXPECT_EQ(middle.body, content.substr(1000, 5000));
  EXPECT_EQ(middle.connects, 0) << "the connection was kept after a streamed body";
  std::filesystem::remove(path);
}

// curl asks "Expect: 100-continue" before a body over 1 MiB; the server says continue at
// once instead of letting the client wait out its timeout (set to 20 s here).
TEST(HttpServer, AnswersExpectContinueAtOnce) {
  Server server({"127.0.0.1", 0, 1, 4 << 20, "", ""}, [](const Request& r) {
    return Response{200, "text/plain", std::to_string(r.body.size()), {}};
  });
  ASSERT_TRUE(server.start().ok());
  const std::string body(2 << 20, 'b');
  CURL* curl = curl_easy_init();
  std::string reply;
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/upload";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 20000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
  const auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(curl_easy_perform(curl), CURLE_OK);
  const auto took = std::chrono::steady_clock::now() - began;
  curl_easy_cleanup(curl);
  EXPECT_EQ(reply, std::to_string(body.size()));
  EXPECT_LT(took, std::chrono::seconds(10)) << "the client waited for a 100 Continue that never came";
}

// A body streamer takes large bodies piece by piece, past the buffered limit, and may
// refuse one from its head alone; what it declines is read whole as before.
TEST(HttpServer, AStreamerTakesBodiesPieceByPieceOrRefusesThemFromTheirHead) {
  ServerOptions options{"127.0.0.1", 0, 1, 1024, "", ""};
  auto received = std::make_shared<std::string>();
  auto pieces = std::make_shared<std::size_t>(0);
  options.streamer = [received, pieces](const Request& head) -> std::optional<std::variant<Response, BodyStream>> {
    if (head.path == "/refused") return Response{403, "text/plain", "no " + head.header("content-length"), {}};
    if (head.path != "/stream") return std::nullopt;
    received->clear();
    *pieces = 0;
    return BodyStream{[received, pieces](std::string_view piece) -> std::optional<Response> {
                        received->append(piece);
                        ++*pieces;
                        return std::nullopt;
                      },
                      [received] { return Response{200, "text/plain", std::to_string(received->size()), {}}; }};
  };
  Server server(options, [](const Request& r) { return Response{200, "text/plain", "whole " + r.body, {}}; });
  ASSERT_TRUE(server.start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  std::string body(5 << 20, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 131) & 0xff);

  Client client;
  const Reply streamed = client.request(base + "/stream", "PUT", body);
  EXPECT_EQ(streamed.status, 200);
  EXPECT_EQ(streamed.body, std::to_string(body.size())) << "5 MiB past a 1 KiB buffered limit";
  EXPECT_TRUE(*received == body) << "the pieces put together differ from the body";
  EXPECT_GE(*pieces, 5u) << "pieces of at most 1 MiB";
  const Reply refused = client.request(base + "/refused", "PUT", body);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body, "no " + std::to_string(body.size()));
  Client another;
  EXPECT_EQ(another.request(base + "/other", "POST", "small").body, "whole small") << "declined: read whole";
}

}  // namespace
}  // namespace bai::http
