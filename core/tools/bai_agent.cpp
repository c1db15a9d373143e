// bai-agent: serves one compute node. Loads accelerator plugins, allocates devices to
// sessions, runs them, and reports to the manager. systemd-friendly: logs to stderr,
// READY=1 once serving, clean stop on SIGTERM (sessions keep running for the next start),
// SIGHUP re-reads the config and applies what can change at run time (Agent::reload).
#include "agent/agent_api.hpp"
#include "agent/agent_startup.hpp"
#include "http_server.hpp"
#include "ready_file.hpp"
#include "report/manager_client.hpp"
#include "service_notify.hpp"

#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <optional>

namespace {

using namespace bai::core;

// What the daemon starts from, read and checked before any thread starts.
struct Startup {
  bai::config::Config config;
  AgentSettings settings;
  std::string token;
  std::pair<std::string, std::uint16_t> listen;
};

// Prints why and returns nothing when the config, the token or the listen address is unusable.
std::optional<Startup> loadStartup(const std::string& configFile, const std::map<std::string, std::string>& flags) {
  auto config = agentConfigSchema().load(configFile, flags);
  if (!config) {
    std::cerr << "bai-agent: " << config.error().message << "\n";
    return std::nullopt;
  }
  auto settings = agentSettings(*config);
  if (!settings) {
    std::cerr << "bai-agent: " << settings.error().message << "\n";
    return std::nullopt;
  }
  if (!configFile.empty()) settings->configFile = std::filesystem::absolute(configFile);
  auto token = readClusterToken(settings->clusterTokenFile);
  if (!token) {
    std::cerr << "bai-agent: " << token.error().message << "\n";
    return std::nullopt;
  }
  auto listen = bai::http::splitHostPort(settings->rpcListen);
  if (!listen) {
    std::cerr << "bai-agent: agent.rpc-listen-addr: " << listen.error().message << "\n";
    return std::nullopt;
  }
  return Startup{std::move(*config), std::move(*settings), std::move(*token), std::move(*listen)};
}

// Requests before the agent is up get a 503; then `api` answers.
bai::http::Handler answerWhenReady(const std::atomic<bool>& ready, const bai::http::Handler& api) {
  return [&ready, &api](const bai::http::Request& request) {
    if (!ready.load(std::memory_order_acquire)) {
      return bai::http::Response{503, "application/json",
                                 R"({"type":"starting","title":"Agent starting","detail":"retry shortly"})",
                                 {{"Retry-After", "1"}}};
    }
    return api(request);
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bai-agent: allocates this node's devices to sessions and runs them"};
  std::string configFile, readyFile;
  std::map<std::string, std::string> flags;
  bool printReference = false;
  app.add_option("--config", configFile, "agent.toml")->check(CLI::ExistingFile);
  app.add_flag("--print-config-reference", printReference, "print every config key with its type, default and meaning");
  app.add_option("--id", flags["agent.id"], "overrides agent.id");
  app.add_option("--rpc-listen", flags["agent.rpc-listen-addr"], "overrides agent.rpc-listen-addr (host:port)");
  app.add_option("--manager-url", flags["agent.manager-url"], "overrides agent.manager-url");
  app.add_option("--state-dir", flags["agent.state-dir"], "overrides agent.state-dir");
  app.add_option("--plugin-path", flags["agent.plugin-path"], "overrides agent.plugin-path (comma-separated)");
  app.add_option("--cluster-token-file", flags["agent.cluster-token-file"], "overrides agent.cluster-token-file");
  app.add_option("--ready-file", readyFile, "write host:port here once the RPC serves (for scripts and tests)");
  CLI11_PARSE(app, argc, argv);

  if (printReference) {
    std::cout << agentConfigSchema().reference();
    return 0;
  }
  auto startup = loadStartup(configFile, flags);
  if (!startup) return 2;
  AgentSettings& settings = startup->settings;
  const auto& [host, port] = startup->listen;

  // Signals are taken by sigwait below; block them before any thread starts.
  const sigset_t signals = bai::blockDaemonSignals();

  // The RPC binds first so the agent registers with the address it really serves on
  // (an ephemeral port included).
  std::atomic<bool> agentReady{false};
  bai::http::Handler api;
  bai::http::Server server({host, port, settings.rpcThreads, 1 << 20, settings.tlsCertificateFile, settings.tlsKeyFile,
                            bai::stderrLogSink(settings.logLevel)},
                           answerWhenReady(agentReady, api));
  if (auto started = server.start(); !started) {
    std::cerr << "bai-agent: " << started.error().message << "\n";
    return 1;
  }
  const std::string scheme = settings.tlsCertificateFile.empty() ? "http://" : "https://";
  settings.rpcUrl = scheme + (settings.rpcAdvertise.empty() ? host + ":" + std::to_string(server.port())
                                                            : settings.rpcAdvertise);
  auto agent = startAgent(settings, startup->token, stderrLogSink());
  if (!agent) {
    std::cerr << "bai-agent: " << agent.error().message << "\n";
    return 1;
  }
  api = agentApi(**agent, &server.counters());
  const LogSink& log = (*agent)->log();
  agentReady.store(true, std::memory_order_release);
  const std::string address = host + ":" + std::to_string(server.port());
  log(LogLevel::Info, "agent", "agent " + settings.id + " serving RPC on " + scheme + address);
  if (!readyFile.empty()) {
    if (auto written = bai::writeReadyFile(readyFile, address); !written) {
      log(LogLevel::Error, "agent", "ready file: " + written.error().message);
    }
  }
  bai::config::Config running = std::move(startup->config);
  const int signal = bai::serveUntilStopped(signals, [&] {
    log(LogLevel::Info, "agent", "SIGHUP: reloading " + (configFile.empty() ? std::string("(no config file)") : configFile));
    (void)reloadAgentConfig(**agent, running, configFile, flags);  // a refusal is logged and changes nothing
  });
  log(LogLevel::Info, "agent", std::string("stopping on ") + strsignal(signal) + "; sessions keep running");
  (*agent)->closeStreams();
  server.stop();
  agent->reset();
  return 0;
}
