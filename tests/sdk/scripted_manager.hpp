// What the client library's tests share: a manager stand-in on loopback that records each
// request and answers with the scripted reply, and a run of the built `bai` CLI against it.
#pragma once

#include <bai/client.hpp>

#include "http_server.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace bai::client::testing {

class ScriptedManager {
 public:
  ScriptedManager(std::string accessKey, std::string secretKey)
      : accessKey_(std::move(accessKey)),
        secretKey_(std::move(secretKey)),
        server_({"127.0.0.1", 0, 2, 1 << 20, "", ""}, [this](const http::Request& request) {
          std::lock_guard<std::mutex> lock(mutex_);
          requests_.push_back(request);
          return reply_;
        }) {
    EXPECT_TRUE(server_.start().ok());
  }
  ~ScriptedManager() { server_.stop(); }

  void answer(int status, std::string body, std::string contentType = "application/json",
              std::map<std::string, std::string> headers = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    reply_ = http::Response{status, std::move(contentType), std::move(body), std::move(headers)};
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.size();
  }
  http::Request last() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.empty() ? http::Request{} : requests_.back();
  }
  Client client() const {
    Config config;
    config.endpoint = "http://127.0.0.1:" + std::to_string(server_.port());
    config.accessKey = accessKey_;
    config.secretKey = secretKey_;
    return Client(config);
  }

 private:
  const std::string accessKey_, secretKey_;
  std::mutex mutex_;
  std::vector<http::Request> requests_;
  http::Response reply_{200, "application/json", "{}", {}};
  http::Server server_;
};

struct CliRun {
  int exitCode = -1;
  std::string out;  // stdout and stderr together
};

// Runs the `bai` at `cli` with ARGS (a shell word list) against `config`'s endpoint and keys,
// and no config file.
inline CliRun runCli(const std::string& cli, const Config& config, const std::string& args) {
  const std::string command = "BAI_CONFIG= BAI_ENDPOINT='" + config.endpoint + "' BAI_ACCESS_KEY=" + config.accessKey +
                              " BAI_SECRET_KEY=" + config.secretKey + " '" + cli + "' " + args + " 2>&1";
  CliRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) run.out.append(buffer, n);
  const int status = ::pclose(pipe);
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace bai::client::testing
