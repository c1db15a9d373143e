#include "command_context.hpp"

#include <iostream>

namespace bai::cli {

const client::Client* CommandContext::api() {
  if (client_) return &*client_;
  auto config = client::Config::load();
  if (!config) {
    usage(config.error().message);
    return nullptr;
  }
  if (auto credentials = config->requireCredentials(); !credentials) {
    usage(credentials.error().message);
    return nullptr;
  }
  client_.emplace(std::move(*config));
  return &*client_;
}

const std::map<std::string, std::string>& CommandContext::slotTypes() {
  if (!slotTypes_) {
    auto types = client_ ? client_->resourceSlots() : client::ClientResult<std::map<std::string, std::string>>({});
    slotTypes_ = types ? *types : std::map<std::string, std::string>{};
  }
  return *slotTypes_;
}

int CommandContext::fail(const client::ApiError& error) const {
  std::string hint;
  if (error.type == "unreachable") {
    hint = "is bai-manager running at " + (client_ ? client_->config().endpoint : std::string("the endpoint")) +
           "? (BAI_ENDPOINT or endpoint in the config file)";
  } else if (error.type == "proxy-unreachable") {
    hint = "the folder's storage proxy does not answer; ask the admin whether bai-storage-proxy runs";
  } else if (error.status == 401) {
    hint = "check BAI_ACCESS_KEY/BAI_SECRET_KEY (or the config file) and this machine's clock";
  } else if (error.status == 403 && error.type == "forbidden") {  // not a refusal such as image-not-allowed
    hint = "this needs an admin keypair";
  }
  std::cerr << "bai: " << error.message();
  if (!error.type.empty()) std::cerr << " [" << error.type << (error.status ? ", HTTP " + std::to_string(error.status) : "") << "]";
  if (!hint.empty()) std::cerr << "; " << hint;
  std::cerr << "\n";
  return error.status == 0 ? kExitUnreachable : kExitRefused;
}

int CommandContext::usage(const std::string& message) const {
  std::cerr << "bai: " << message << "\n";
  return kExitUsage;
}

}  // namespace bai::cli
