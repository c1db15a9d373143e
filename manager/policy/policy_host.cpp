#include "policy/policy_host.hpp"

#include "module_loader.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <system_error>
#include <tuple>
#include <utility>

namespace bai::manager {

struct PolicyModule {
  LoadedModule module;
  PolicyIdentity identity;
  const bai_policy_vtable* vtable = nullptr;
};

namespace {

namespace fs = std::filesystem;

// The 1.0 call table ends after `preference`: a smaller one is from a broken build.
constexpr std::size_t kMinimumVtableSize = offsetof(bai_policy_vtable, preference) + sizeof(std::uint32_t);

bool validName(const std::string& name) {
  auto allowed = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'; };
  return !name.empty() && name[0] != '.' && name[0] != '_' && name[0] != '-' && std::all_of(name.begin(), name.end(), allowed);
}

Result<std::string> infoString(const char* field, std::size_t size, const char* what) {
  const void* nul = std::memchr(field, '\0', size);
  if (nul == nullptr) return fail(ErrorCode::InvalidArgument, std::string("the info record's ") + what + " is not NUL-terminated");
  return std::string(field, static_cast<const char*>(nul));
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

// Identity before code: the info record is plain data, read before any policy call.
Result<PolicyIdentity> readIdentity(const LoadedModule& module) {
  const auto* info = static_cast<const bai_policy_identity*>(module.symbol(BAI_POLICY_INFO_SYMBOL));
  if (info == nullptr) return fail(ErrorCode::InvalidArgument, "no bai_policy_info symbol: not a bai scheduling policy");
  if (info->abi_major != BAI_POLICY_ABI_MAJOR) {
    return fail(ErrorCode::InvalidArgument, "built for policy ABI " + std::to_string(info->abi_major) + "." +
                                                std::to_string(info->abi_minor) + ", this manager speaks " +
                                                std::to_string(BAI_POLICY_ABI_MAJOR) + ".x");
  }
  PolicyIdentity identity;
  for (auto [field, size, what, target] :
       {std::tuple{info->name, sizeof info->name, "name", &identity.name},
        std::tuple{info->version, sizeof info->version, "version", &identity.version},
        std::tuple{info->description, sizeof info->description, "description", &identity.description}}) {
    auto text = infoString(field, size, what);
    if (!text) return Failure{text.error()};
    *target = std::move(*text);
  }
  if (!validName(identity.name)) {
    return fail(ErrorCode::InvalidArgument, "invalid policy name '" + identity.name + "' (use a-z, 0-9, '.', '_', '-')");
  }
  if (info->kind != BAI_POLICY_SEQUENCER && info->kind != BAI_POLICY_SELECTOR) {
    return fail(ErrorCode::InvalidArgument, "unknown policy kind " + std::to_string(info->kind));
  }
  identity.kind = info->kind == BAI_POLICY_SEQUENCER ? PolicyKind::Sequencer : PolicyKind::Selector;
  identity.abiMajor = info->abi_major;
  identity.abiMinor = info->abi_minor;
  identity.file = module.path();
  return identity;
}

Result<const bai_policy_vtable*> readCallTable(const LoadedModule& module, PolicyKind kind) {
  auto entry = reinterpret_cast<bai_policy_entry_fn>(module.symbol(BAI_POLICY_ENTRY_SYMBOL));
  if (entry == nullptr) return fail(ErrorCode::InvalidArgument, "no bai_policy_entry symbol");
  const bai_policy_vtable* vtable = entry();
  if (vtable == nullptr) return fail(ErrorCode::InvalidArgument, "bai_policy_entry returned no call table");
  if (vtable->abi_major != BAI_POLICY_ABI_MAJOR) {
    return fail(ErrorCode::InvalidArgument, "call table is for ABI major " + std::to_string(vtable->abi_major) +
                                                ", this manager speaks " + std::to_string(BAI_POLICY_ABI_MAJOR));
  }
  if (vtable->struct_size < kMinimumVtableSize) {
    return fail(ErrorCode::InvalidArgument, "call table struct_size " + std::to_string(vtable->struct_size) +
                                                " is smaller than the ABI 1.0 table (" +
                                                std::to_string(kMinimumVtableSize) + ")");
  }
  if (vtable->create == nullptr || vtable->destroy == nullptr) {
    return fail(ErrorCode::InvalidArgument, "call table lacks create or destroy");
  }
  if (kind == PolicyKind::Sequencer && vtable->order == nullptr) {
    return fail(ErrorCode::InvalidArgument, "a sequencer whose call table lacks order");
  }
  if (kind == PolicyKind::Selector && vtable->select == nullptr) {
    return fail(ErrorCode::InvalidArgument, "a selector whose call table lacks select");
  }
  if (kind == PolicyKind::Selector && vtable->preference > BAI_PREFER_ANY) {
    return fail(ErrorCode::InvalidArgument, "unknown selector preference " + std::to_string(vtable->preference));
  }
  return vtable;
}

Error policyError(const PolicyModule& module, const std::string& why) {
  return Error{ErrorCode::Internal, "policy '" + module.identity.name + "': " + why};
}

}  // namespace

const char* policyKindName(PolicyKind kind) { return kind == PolicyKind::Sequencer ? "sequencer" : "selector"; }

// ---- Sequencer ------------------------------------------------------------------------

Sequencer::Sequencer(std::shared_ptr<const PolicyModule> module, bai_policy* instance)
    : module_(std::move(module)), instance_(instance) {}

Sequencer::~Sequencer() { module_->vtable->destroy(instance_); }

const std::string& Sequencer::name() const { return module_->identity.name; }

Result<std::vector<std::uint32_t>> Sequencer::order(const bai_pending_view& pending) {
  const std::uint32_t count = pending.session_count;
  std::vector<std::uint32_t> order(count, count);
  if (count == 0) return order;
  if (int status = module_->vtable->order(instance_, &pending, order.data()); status != 0) {
    return Failure{policyError(*module_, "order returned status " + std::to_string(status))};
  }
  std::vector<bool> seen(count, false);
  for (std::uint32_t index : order) {
    if (index >= count) {
      return Failure{policyError(*module_, "order answered index " + std::to_string(index) + " for " +
                                               std::to_string(count) + " session(s)")};
    }
    if (seen[index]) {
      return Failure{policyError(*module_, "order answered session " + std::to_string(index) +
                                               " twice: not a permutation")};
    }
    seen[index] = true;
  }
  return order;
}

// ---- Selector -------------------------------------------------------------------------

Selector::Selector(std::shared_ptr<const PolicyModule> module, bai_policy* instance)
    : module_(std::move(module)), instance_(instance) {}

Selector::~Selector() { module_->vtable->destroy(instance_); }

const std::string& Selector::name() const { return module_->identity.name; }

std::uint32_t Selector::preference() const { return module_->vtable->preference; }

Result<std::uint32_t> Selector::select(const bai_session_view& session, const bai_candidate_view& candidates) {
  if (candidates.agent_count == 0) return fail(ErrorCode::InvalidArgument, "no candidates to select from");
  std::uint32_t chosen = candidates.agent_count;
  if (int status = module_->vtable->select(instance_, &session, &candidates, &chosen); status != 0) {
    return Failure{policyError(*module_, "select returned status " + std::to_string(status))};
  }
  if (chosen >= candidates.agent_count) {
    return Failure{policyError(*module_, "select answered index " + std::to_string(chosen) + " for " +
                                             std::to_string(candidates.agent_count) + " candidate(s)")};
  }
  return chosen;
}

// ---- PolicyCatalog --------------------------------------------------------------------

Result<PolicyCatalog> PolicyCatalog::load(const std::vector<fs::path>& dirs, LogSink log) {
  PolicyCatalog catalog;
  catalog.log_ = log ? std::move(log) : stderrLogSink();
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
      catalog.log_(LogLevel::Warning, "policies", "policy directory " + dir.string() + " does not exist; skipped");
      continue;
    }
    if (!fs::is_directory(dir, ec)) {
      return fail(ErrorCode::InvalidArgument, "policy directory " + dir.string() + " is not a directory");
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".so") files.push_back(fs::absolute(it->path()));
    }
    if (ec) return fail(ErrorCode::InvalidArgument, "cannot list policy directory " + dir.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) catalog.loadFile(file);
  }
  catalog.log_(LogLevel::Info, "policies",
               std::to_string(catalog.modules_.size()) + " scheduling policies loaded (sequencers: " +
                   joined(catalog.names(PolicyKind::Sequencer)) + "; selectors: " +
                   joined(catalog.names(PolicyKind::Selector)) + "), " + std::to_string(catalog.skipped_.size()) +
                   " skipped");
  return catalog;
}

void PolicyCatalog::skip(const fs::path& file, const std::string& name, const std::string& reason) {
  skipped_.push_back({file, name, reason});
  log_(LogLevel::Error, "policies",
       "policy " + file.string() + (name.empty() ? "" : " (" + name + ")") + " skipped: " + reason);
}

void PolicyCatalog::loadFile(const fs::path& file) {
  auto opened = LoadedModule::open(file);
  if (!opened) return skip(file, "", opened.error().message);
  auto identity = readIdentity(*opened);
  if (!identity) return skip(file, "", identity.error().message);
  for (const auto& loaded : modules_) {
    if (loaded->identity.name == identity->name) {
      return skip(file, identity->name, "a policy named '" + identity->name + "' is already loaded from " +
                                            loaded->identity.file.string());
    }
  }
  auto vtable = readCallTable(*opened, identity->kind);
  if (!vtable) return skip(file, identity->name, vtable.error().message);
  log_(LogLevel::Info, "policies",
       std::string(policyKindName(identity->kind)) + " " + identity->name + " " + identity->version + " (ABI " +
           std::to_string(identity->abiMajor) + "." + std::to_string(identity->abiMinor) + ") loaded from " +
           file.string());
  modules_.push_back(std::make_shared<const PolicyModule>(PolicyModule{std::move(*opened), std::move(*identity), *vtable}));
}

std::vector<std::string> PolicyCatalog::names(PolicyKind kind) const {
  std::vector<std::string> names;
  for (const auto& module : modules_) {
    if (module->identity.kind == kind) names.push_back(module->identity.name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::pair<std::shared_ptr<const PolicyModule>, bai_policy*>> PolicyCatalog::create(
    const std::string& name, PolicyKind kind, const std::string& optionsJson) const {
  const std::string known = "known " + std::string(policyKindName(kind)) + "s: " + joined(names(kind));
  auto found = std::find_if(modules_.begin(), modules_.end(), [&](const auto& m) { return m->identity.name == name; });
  if (found == modules_.end()) return fail(ErrorCode::NotFound, "no scheduling policy named '" + name + "'; " + known);
  const auto& module = *found;
  if (module->identity.kind != kind) {
    return fail(ErrorCode::InvalidArgument, "'" + name + "' is a " + policyKindName(module->identity.kind) +
                                                ", not a " + policyKindName(kind) + "; " + known);
  }
  char error[512] = {};
  bai_policy* instance = module->vtable->create(optionsJson.c_str(), error, sizeof error);
  if (instance == nullptr) {
    error[sizeof error - 1] = '\0';  // never trust the policy to terminate it
    return fail(ErrorCode::InvalidArgument,
                "policy '" + name + "': " + (error[0] != '\0' ? error : "create failed without a reason"));
  }
  return std::pair{module, instance};
}

Result<std::unique_ptr<Sequencer>> PolicyCatalog::makeSequencer(const std::string& name,
                                                                const std::string& optionsJson) const {
  auto created = create(name, PolicyKind::Sequencer, optionsJson);
  if (!created) return Failure{created.error()};
  return std::unique_ptr<Sequencer>(new Sequencer(created->first, created->second));
}

Result<std::unique_ptr<Selector>> PolicyCatalog::makeSelector(const std::string& name,
                                                              const std::string& optionsJson) const {
  auto created = create(name, PolicyKind::Selector, optionsJson);
  if (!created) return Failure{created.error()};
  return std::unique_ptr<Selector>(new Selector(created->first, created->second));
}

}  // namespace bai::manager
