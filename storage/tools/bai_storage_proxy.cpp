// bai-storage-proxy: serves volumes to the manager (folders, quotas, shares) and to
// clients holding a grant (uploads, downloads). Runs as root: it chowns folders to their
// owners and sets their ACLs. SIGHUP changes only the log level; the rest needs a restart.
#include "files/folder_file_routes.hpp"
#include "files/transfer_api.hpp"
#include "http_server.hpp"
#include "manager_api.hpp"
#include "proxy_config.hpp"
#include "ready_file.hpp"
#include "secret_file.hpp"
#include "service_notify.hpp"
#include "upload_janitor.hpp"
#include "volume_catalog.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <iostream>

using namespace bai;
using namespace bai::storage;

namespace {

struct Listener {
  std::string name;
  std::unique_ptr<http::Server> server;
  std::string address;
};

Result<Listener> startListener(const std::string& name, const std::string& listen, const ProxySettings& settings,
                               std::size_t maxBody, http::Handler handler, const LogSink& log,
                               http::BodyStreamer streamer = {}) {
  auto hostPort = http::splitHostPort(listen);
  if (!hostPort) return fail(hostPort.error().code, "api." + name + "-listen: " + hostPort.error().message);
  auto server = std::make_unique<http::Server>(
      http::ServerOptions{hostPort->first, hostPort->second, settings.threads, maxBody, settings.tlsCertificateFile,
                          settings.tlsKeyFile, log, nullptr, std::move(streamer)},
      std::move(handler));
  if (auto started = server->start(); !started) return fail(started.error().code, "api." + name + "-listen: " + started.error().message);
  const std::string address = hostPort->first + ":" + std::to_string(server->port());
  log(LogLevel::Info, "proxy", "serving the " + name + " API on " + (settings.tlsCertificateFile.empty() ? "http://" : "https://") + address);
  return Listener{name, std::move(server), address};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bai-storage-proxy: serves bai's storage volumes, their folders and the transfers of their files"};
  app.set_version_flag("--version", std::string("bai-storage-proxy ") + BAI_VERSION);
  std::string configFile, readyFile;
  std::map<std::string, std::string> flags;
  bool printReference = false;
  app.add_option("--config", configFile, "storage-proxy.toml")->check(CLI::ExistingFile);
  app.add_flag("--print-config-reference", printReference, "print every config key with its type, default and meaning");
  app.add_option("--manager-listen", flags["api.manager-listen"], "overrides api.manager-listen (host:port)");
  app.add_option("--client-listen", flags["api.client-listen"], "overrides api.client-listen (host:port)");
  app.add_option("--ready-file", readyFile,
                 "write the manager API's host:port, then the client API's, one a line, once both serve");
  CLI11_PARSE(app, argc, argv);
  if (printReference) {
    std::cout << proxyConfigSchema().reference();
    return 0;
  }

  auto config = proxyConfigSchema().load(configFile, flags);
  if (!config) {
    std::cerr << "bai-storage-proxy: " << config.error().message << "\n";
    return 2;
  }
  auto settings = proxySettings(*config, configFile);
  if (!settings) {
    std::cerr << "bai-storage-proxy: " << settings.error().message << "\n";
    return 2;
  }
  auto token = readClusterToken(settings->tokenFile);
  if (!token) {
    std::cerr << "bai-storage-proxy: api.token-file: " << token.error().message << "\n";
    return 2;
  }
  auto threshold = std::make_shared<LogThreshold>(settings->logLevel);
  const LogSink log = thresholdLogSink(stderrLogSink(), threshold);
  auto catalog = VolumeCatalog::open(settings->volumes, log);
  if (!catalog) {
    std::cerr << "bai-storage-proxy: " << catalog.error().message << "\n";
    return 2;
  }

  const sigset_t signals = blockDaemonSignals();

  files::FolderFileRoutes folderFiles(**catalog);
  ManagerApi::FileRoutes fileRoutes = [&folderFiles](const http::Request& request, const FolderRef& folder,
                                                     std::string_view action) {
    return folderFiles.handle(request, folder, action);
  };
  files::TransferApi transfers(**catalog, storage_protocol::grantKey(*token),
                               files::TransferOptions{static_cast<std::size_t>(settings->maxChunkBytes),
                                                      std::chrono::milliseconds(settings->uploadExpiry).count(), {}});
  http::Handler clientApi = [&transfers](const http::Request& request) { return transfers.handle(request); };
  // Abandoned uploads go a quarter of their expiry after it, at most an hour late.
  UploadJanitor janitor(**catalog, transfers,
                        std::min<std::chrono::milliseconds>(std::chrono::milliseconds(settings->uploadExpiry) / 4,
                                                            std::chrono::hours(1)),
                        log);

  ManagerApi managerApi(**catalog, *token, std::move(fileRoutes), log);
  auto managerListener = startListener("manager", settings->managerListen, *settings, 1 << 20,
                                       [&](const http::Request& request) { return managerApi.handle(request); }, log);
  if (!managerListener) {
    std::cerr << "bai-storage-proxy: " << managerListener.error().message << "\n";
    return 1;
  }
  // A chunk and its headers: the server bounds the body, the client API its chunks.
  auto clientListener = startListener("client", settings->clientListen, *settings, settings->maxChunkBytes + (64u << 10),
                                      std::move(clientApi), log,
                                      [&transfers](const http::Request& head) { return transfers.stream(head); });
  if (!clientListener) {
    std::cerr << "bai-storage-proxy: " << clientListener.error().message << "\n";
    return 1;
  }
  if (!readyFile.empty()) {
    if (auto written = writeReadyFile(readyFile, managerListener->address + "\n" + clientListener->address); !written) {
      log(LogLevel::Error, "proxy", "ready file: " + written.error().message);
    }
  }
  const int signal = serveUntilStopped(signals, [&] {
    auto next = proxyConfigSchema().load(configFile, flags);
    auto nextSettings = next ? proxySettings(*next, configFile) : Result<ProxySettings>{Failure{next.error()}};
    if (!nextSettings) {
      log(LogLevel::Error, "proxy", "reload refused, running settings kept: " + nextSettings.error().message);
      return;
    }
    threshold->set(nextSettings->logLevel);
    log(LogLevel::Info, "proxy", std::string("SIGHUP: log level ") + logLevelName(nextSettings->logLevel) +
                                     " (other changes wait for a restart)");
  });
  log(LogLevel::Info, "proxy", std::string("stopping on ") + strsignal(signal));
  clientListener->server->stop();
  managerListener->server->stop();
  return 0;
}
