// bai-manager: the cluster's manager daemon, and `bai-manager init` to create its
// database and first admin keypair offline. SIGHUP re-reads the config and applies what
// can change at run time (Manager::reload).
#include "auth/keypair_generator.hpp"
#include "clock.hpp"
#include "http_server.hpp"
#include "manager.hpp"
#include "manager_api.hpp"
#include "manager_config.hpp"
#include "ready_file.hpp"
#include "secret_file.hpp"
#include "service_notify.hpp"
#include "store/store.hpp"

#include <CLI/CLI.hpp>
#include <openssl/rand.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>

using namespace bai;
using namespace bai::manager;

namespace {

std::string randomHex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("the system random number generator failed");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) out += {hex[c >> 4], hex[c & 15]};
  return out;
}

// The token is created once, 0600, and never printed: admins copy the file to agents.
Result<std::string> clusterToken(const ManagerSettings& settings, const LogSink& log) {
  if (settings.createClusterToken && !std::filesystem::exists(settings.clusterTokenFile)) {
    if (auto written = writeSecretFile(settings.clusterTokenFile, randomHex(32) + "\n"); !written) return Failure{written.error()};
    log(LogLevel::Info, "manager", "created cluster token file " + settings.clusterTokenFile + " (give it to the agents)");
  }
  return readClusterToken(settings.clusterTokenFile);
}

std::string keypairFileText(const KeypairRecord& keypair) {
  return "# bai admin keypair, written by bai-manager init. Keep it secret (mode 0600).\n"
         "access-key = \"" + keypair.accessKey + "\"\nsecret-key = \"" + keypair.secretKey + "\"\n";
}

int runInit(const std::string& dbUrl, const std::string& keypairOut, const std::string& tokenOut) {
  auto store = openStore(dbUrl);
  if (!store) {
    std::cerr << "bai-manager init: " << store.error().message << "\n";
    return 2;
  }
  if (!tokenOut.empty() && !std::filesystem::exists(tokenOut)) {
    if (auto written = writeSecretFile(tokenOut, randomHex(32) + "\n"); !written) {
      std::cerr << "bai-manager init: " << written.error().message << "\n";
      return 1;
    }
    std::cout << "cluster token written to " << tokenOut << " (give it to the agents)\n";
  }
  if (std::filesystem::exists(keypairOut)) {
    std::cerr << "bai-manager init: " << keypairOut << " exists; the schema of " << dbUrl
              << " is current and no keypair was made (remove the file to make another admin keypair)\n";
    return 0;
  }
  const Keypair generated = generateKeypair();
  const KeypairRecord record{generated.accessKey, generated.secretKey, true, true, bai::nowMillis()};
  // The file first: a keypair in the database that nobody holds is worse than none.
  if (auto written = writeSecretFile(keypairOut, keypairFileText(record)); !written) {
    std::cerr << "bai-manager init: " << written.error().message << "\n";
    return 1;
  }
  if (auto inserted = (*store)->write([&](StoreTransaction& tx) { return tx.insertKeypair(record); }); !inserted) {
    std::filesystem::remove(keypairOut);
    std::cerr << "bai-manager init: " << inserted.error().message << "\n";
    return 1;
  }
  std::cout << "initialised " << (*store)->describe() << " (schema " << (*store)->schemaVersion() << "); admin keypair "
            << record.accessKey << " written to " << keypairOut << "\n";
  return 0;
}

// What the daemon needs before it serves: the config, its settings, the cluster token,
// the listen address and the opened store; an error names what was wrong.
struct Startup {
  config::Config config;
  ManagerSettings settings;
  std::string token;
  std::string metricsToken;
  std::pair<std::string, std::uint16_t> listen;
  std::unique_ptr<Store> store;
};

Result<Startup> prepareStartup(const std::string& configFile, const std::map<std::string, std::string>& flags) {
  auto config = managerConfigSchema().load(configFile, flags);
  if (!config) return Failure{config.error()};
  auto settings = managerSettings(*config);
  if (!settings) return Failure{settings.error()};
  // Until the manager runs; then its own sink, whose level a reload may change.
  auto token = clusterToken(*settings, stderrLogSink(settings->logLevel));
  if (!token) return Failure{token.error()};
  std::string metricsToken;
  if (!settings->metricsTokenFile.empty()) {
    auto read = readClusterToken(settings->metricsTokenFile);
    if (!read) return fail(read.error().code, "metrics.token-file: " + read.error().message);
    if (*read == *token) {
      return fail(ErrorCode::InvalidArgument, "metrics.token-file: holds the cluster token; give scrapers a token of their own");
    }
    metricsToken = std::move(*read);
  }
  if (auto storage = readStorageTokens(settings->storage); !storage) return Failure{storage.error()};
  for (const auto& proxy : settings->storage.proxies) {
    if (proxy.token == *token) {
      return fail(ErrorCode::InvalidArgument, "storage-proxies." + proxy.name + ".token-file: holds the cluster token; give the proxy a token of its own");
    }
  }
  auto listen = http::splitHostPort(settings->listen);
  if (!listen) return fail(listen.error().code, "manager.listen: " + listen.error().message);
  StoreOptions storeOptions;
  storeOptions.fullSync = settings->storeFullSync;
  storeOptions.exclusive = true;  // a second manager on this database is refused here
  storeOptions.identity = settings->identity;
  auto store = openStore(settings->db, storeOptions);
  if (!store) return Failure{store.error()};
  return Startup{std::move(*config), std::move(*settings), std::move(*token), std::move(metricsToken), std::move(*listen),
                 std::move(*store)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bai-manager: keeps the cluster's state and schedules sessions onto agents"};
  app.set_version_flag("--version", std::string("bai-manager ") + BAI_VERSION);
  std::string configFile, readyFile;
  std::map<std::string, std::string> flags;
  bool printReference = false;
  app.add_option("--config", configFile, "manager.toml")->check(CLI::ExistingFile);
  app.add_flag("--print-config-reference", printReference, "print every config key with its type, default and meaning");
  app.add_option("--listen", flags["manager.listen"], "overrides manager.listen (host:port)");
  app.add_option("--db", flags["manager.db"], "overrides manager.db (sqlite:///path.db)");
  app.add_option("--cluster-token-file", flags["manager.cluster-token-file"], "overrides manager.cluster-token-file");
  app.add_option("--ready-file", readyFile, "write host:port here once the API serves (for scripts and tests)");
  std::string initDb, initKeypairOut;
  CLI::App* init = app.add_subcommand("init", "create the database schema and the first admin keypair, offline");
  init->add_option("--db", initDb, "store URL, e.g. sqlite:///var/lib/bai/manager.db")->required();
  init->add_option("--admin-keypair-out", initKeypairOut, "file to create (mode 0600) with the admin keypair")->required();
  std::string initTokenOut;
  init->add_option("--cluster-token-out", initTokenOut, "also create this cluster token file (mode 0600) if absent");
  CLI11_PARSE(app, argc, argv);

  if (init->parsed()) return runInit(initDb, initKeypairOut, initTokenOut);
  if (printReference) {
    std::cout << managerConfigSchema().reference();
    return 0;
  }
  auto startup = prepareStartup(configFile, flags);
  if (!startup) {
    std::cerr << "bai-manager: " << startup.error().message << "\n";
    return 2;
  }
  auto& [config, settings, token, metricsToken, listen, store] = *startup;

  const sigset_t signals = blockDaemonSignals();

  auto manager = Manager::start(settings, std::move(store), token, stderrLogSink());
  if (!manager) {
    std::cerr << "bai-manager: " << manager.error().message << "\n";
    return 1;
  }
  auto httpCounters = std::make_shared<http::ServerCounters>();
  auto api = managerApi(**manager, ApiOptions{token, metricsToken, httpCounters});
  if (!api) {
    std::cerr << "bai-manager: " << api.error().message << "\n";
    return 1;
  }
  http::Server server({listen.first, listen.second, settings.apiThreads, 1 << 20, settings.tlsCertificateFile,
                       settings.tlsKeyFile, (*manager)->logSink(), httpCounters},
                      std::move(*api));
  if (auto started = server.start(); !started) {
    std::cerr << "bai-manager: " << started.error().message << "\n";
    return 1;
  }
  const std::string address = listen.first + ":" + std::to_string(server.port());
  const LogSink& log = (*manager)->logSink();
  log(LogLevel::Info, "manager", std::string("serving the API on ") + (settings.tlsCertificateFile.empty() ? "http://" : "https://") +
                                     address + ", store " + settings.db);
  if (!readyFile.empty()) {
    if (auto written = writeReadyFile(readyFile, address); !written) {
      log(LogLevel::Error, "manager", "ready file: " + written.error().message);
    }
  }
  config::Config running = std::move(config);
  const int signal = serveUntilStopped(signals, [&] {
    log(LogLevel::Info, "manager", "SIGHUP: reloading " + (configFile.empty() ? std::string("(no config file)") : configFile));
    (void)reloadManagerConfig(**manager, running, configFile, flags);  // a refusal is logged and changes nothing
  });
  log(LogLevel::Info, "manager", std::string("stopping on ") + strsignal(signal));
  (*manager)->shutdown();
  server.stop();
  manager->reset();
  return 0;
}
