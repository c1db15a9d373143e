#include "vfolder_service.hpp"

#include "clock.hpp"

#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace bai::manager {
namespace {

using namespace storage_protocol;

// A folder id: 16 random bytes as 32 hex digits (unguessable, since ids resolve refs).
std::string newFolderId() {
  std::array<unsigned char, 16> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (unsigned char byte : raw) {
    id += hex[byte >> 4];
    id += hex[byte & 15];
  }
  return id;
}

DomainError storeFailed(const Error& error) { return DomainError{ErrorKind::StoreFailed, error.message}; }

bool writes(VfolderAccess access) { return access != VfolderAccess::ReadOnly; }

}  // namespace

const char* vfolderAccessName(VfolderAccess access) {
  switch (access) {
    case VfolderAccess::Owner: return "owner";
    case VfolderAccess::ReadWrite: return "rw";
    case VfolderAccess::ReadOnly: return "ro";
  }
  return "ro";
}

bool isVfolderName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  for (char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                         c == '_' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

VfolderService::VfolderService(Store& store, const StorageSettings& storage, std::chrono::milliseconds timeout, LogSink log)
    : store_(store), defaultHost_(storage.defaultHost), grantTtl_(storage.grantTtl), log_(std::move(log)) {
  for (const auto& proxy : storage.proxies) {
    proxies_.emplace(proxy.name, Proxy{StorageClient(proxy.managerUrl, proxy.token, timeout), proxy.clientUrl,
                                       grantKey(proxy.token)});
  }
}

void VfolderService::log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, "vfolders", message);
}

Outcome<void> VfolderService::requireStorage() const {
  if (proxies_.empty()) {
    return refuse(ErrorKind::StorageUnavailable, "no storage proxy is configured ([storage-proxies.NAME] in manager.toml)");
  }
  return {};
}

Outcome<std::pair<const VfolderService::Proxy*, std::string>> VfolderService::proxyOf(const std::string& host) const {
  const auto colon = host.find(':');
  const std::string proxy = host.substr(0, colon);
  auto it = proxies_.find(proxy);
  if (colon == std::string::npos || it == proxies_.end()) {
    return refuse(ErrorKind::StorageUnavailable, "storage host '" + host + "': no [storage-proxies." + proxy +
                                                     "] in manager.toml");
  }
  return std::pair{&it->second, host.substr(colon + 1)};
}

Outcome<KeypairRecord> VfolderService::keypairOf(const std::string& accessKey) {
  std::optional<KeypairRecord> found;
  auto read = store_.read([&](StoreTransaction& tx) -> Result<void> {
    auto row = tx.keypair(accessKey);
    if (!row) return Failure{row.error()};
    found = std::move(*row);
    return {};
  });
  if (!read) return Failure{storeFailed(read.error())};
  if (!found) return refuse(ErrorKind::UnknownKeypair, "no keypair '" + accessKey + "'", "access_key");
  return *found;
}

Outcome<VfolderService::Resolved> VfolderService::resolve(const Caller& caller, const std::string& ref) {
  if (auto ready = requireStorage(); !ready) return Failure{ready.error()};
  std::optional<Resolved> found;
  std::optional<DomainError> refusal;
  auto read = store_.read([&](StoreTransaction& tx) -> Result<void> {
    auto own = tx.vfolderByName(caller.accessKey, ref);
    if (!own) return Failure{own.error()};
    if (*own) {
      found = Resolved{std::move(**own), VfolderAccess::Owner, true};
      return {};
    }
    auto shared = tx.vfoldersSharedWith(caller.accessKey);
    if (!shared) return Failure{shared.error()};
    std::vector<VfolderRecord> named;
    for (auto& folder : *shared) {
      if (folder.name == ref) named.push_back(std::move(folder));
    }
    if (named.size() > 1) {
      std::string ids;
      for (const auto& folder : named) ids += (ids.empty() ? "" : ", ") + folder.id + " (owner " + folder.owner + ")";
      refusal = DomainError{ErrorKind::AmbiguousVfolder,
                            "folders " + ids + " are shared with you as '" + ref + "'; name one by its id"};
      return {};
    }
    std::optional<VfolderRecord> folder;
    if (named.size() == 1) {
      folder = std::move(named.front());
    } else if (isFolderId(ref)) {
      auto byId = tx.vfolder(ref);
      if (!byId) return Failure{byId.error()};
      folder = std::move(*byId);
    }
    if (!folder) return {};
    if (folder->owner == caller.accessKey) {
      found = Resolved{std::move(*folder), VfolderAccess::Owner, true};
      return {};
    }
    auto shares = tx.vfolderShares(folder->id);
    if (!shares) return Failure{shares.error()};
    for (const auto& share : *shares) {
      if (share.accessKey != caller.accessKey) continue;
      const bool readOnly = share.permission == Permission::ReadOnly && !caller.admin;
      found = Resolved{std::move(*folder), readOnly ? VfolderAccess::ReadOnly : VfolderAccess::ReadWrite, caller.admin};
      return {};
    }
    if (caller.admin) found = Resolved{std::move(*folder), VfolderAccess::ReadWrite, true};
    return {};
  });
  if (!read) return Failure{storeFailed(read.error())};
  if (refusal) return Failure{*refusal};
  if (!found) return refuse(ErrorKind::UnknownVfolder, "no folder '" + ref + "' of yours or shared with you");
  return *found;
}

Outcome<VfolderService::Resolved> VfolderService::resolveManaged(const Caller& caller, const std::string& ref) {
  auto folder = resolve(caller, ref);
  if (folder && !folder->manages) {
    return refuse(ErrorKind::VfolderNotOwner, "folder '" + ref + "' is " + folder->record.owner +
                                                  "'s; only its owner or an admin may share or delete it");
  }
  return folder;
}

Outcome<VfolderView> VfolderService::viewOf(const Resolved& folder) {
  VfolderView view{folder.record, folder.access, folder.manages};
  if (!folder.manages) return view;
  auto read = store_.read([&](StoreTransaction& tx) -> Result<void> {
    auto shares = tx.vfolderShares(folder.record.id);
    if (!shares) return Failure{shares.error()};
    view.shares = std::move(*shares);
    return {};
  });
  if (!read) return Failure{storeFailed(read.error())};
  return view;
}

Outcome<VfolderView> VfolderService::create(const Caller& caller, const NewVfolder& request) {
  if (auto ready = requireStorage(); !ready) return Failure{ready.error()};
  if (!isVfolderName(request.name)) {
    return refuse(ErrorKind::InvalidRequest,
                  "folder name '" + request.name + "' must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'",
                  "name");
  }
  const std::string host = request.host.value_or(defaultHost_);
  auto proxy = proxyOf(host);
  if (!proxy) return refuse(ErrorKind::InvalidRequest, proxy.error().detail, "host");
  auto owner = keypairOf(caller.accessKey);
  if (!owner) return Failure{owner.error()};
  VfolderRecord folder{newFolderId(), request.name, caller.accessKey, host, "", request.quotaBytes, request.permission,
                       nowMillis()};
  // The policy's limits, checked again in the write below against a racing create.
  ResourcePolicyRecord policy;
  auto checkLimits = [&](StoreTransaction& tx) -> Result<std::optional<DomainError>> {
    if (!owner->resourcePolicy.empty()) {
      auto found = tx.resourcePolicy(owner->resourcePolicy);
      if (!found) return Failure{found.error()};
      if (*found) policy = **found;
    }
    auto existing = tx.vfolderByName(caller.accessKey, request.name);
    if (!existing) return Failure{existing.error()};
    if (*existing) return std::optional(DomainError{ErrorKind::VfolderExists, "you have a folder named '" + request.name + "'"});
    auto count = tx.countVfoldersOwnedBy(caller.accessKey);
    if (!count) return Failure{count.error()};
    if (policy.maxVfolderCount > 0 && *count >= policy.maxVfolderCount) {
      return std::optional(DomainError{ErrorKind::VfolderLimit, "resource policy '" + policy.name + "' allows " +
                                                                    std::to_string(policy.maxVfolderCount) + " folders; you have " +
                                                                    std::to_string(*count)});
    }
    return std::optional<DomainError>();
  };
  std::optional<DomainError> refusal;
  auto checked = store_.read([&](StoreTransaction& tx) -> Result<void> {
    auto limit = checkLimits(tx);
    if (!limit) return Failure{limit.error()};
    refusal = *limit;
    return {};
  });
  if (!checked) return Failure{storeFailed(checked.error())};
  if (refusal) return Failure{*refusal};
  if (policy.maxVfolderSize > 0) {
    if (folder.quotaBytes && *folder.quotaBytes > policy.maxVfolderSize) {
      return refuse(ErrorKind::VfolderLimit, "quota " + std::to_string(*folder.quotaBytes) + " bytes is above resource policy '" +
                                                 policy.name + "''s max_vfolder_size of " + std::to_string(policy.maxVfolderSize),
                    "quota");
    }
    if (!folder.quotaBytes) folder.quotaBytes = policy.maxVfolderSize;
  }
  auto made = proxy->first->client.createFolder(
      CreateFolderRequest{proxy->second, folder.id, owner->uid, owner->gid, folder.quotaBytes});
  if (!made) return Failure{refusalOf(made.error())};
  folder.hostPath = made->hostPath;
  auto inserted = store_.write([&](StoreTransaction& tx) -> Result<void> {
    auto limit = checkLimits(tx);
    if (!limit) return Failure{limit.error()};
    refusal = *limit;
    return refusal ? Result<void>{} : tx.insertVfolder(folder);
  });
  if (!inserted || refusal) {
    // No row: the proxy's folder goes too, so nothing is left that no record names.
    if (auto undone = proxy->first->client.deleteFolder(proxy->second, folder.id); !undone) {
      log(LogLevel::Warning, "folder " + folder.id + " on " + host + " was made but not recorded, and deleting it failed: " +
                                 undone.error().error.detail);
    }
    if (refusal) return Failure{*refusal};
    return Failure{storeFailed(inserted.error())};
  }
  log(LogLevel::Info, "folder " + folder.id + " '" + folder.name + "' of " + caller.accessKey + " created on " + host);
  return VfolderView{folder, VfolderAccess::Owner, true};
}

Outcome<std::vector<VfolderView>> VfolderService::list(const Caller& caller, bool all) {
  if (auto ready = requireStorage(); !ready) return Failure{ready.error()};
  std::vector<VfolderView> out;
  auto read = store_.read([&](StoreTransaction& tx) -> Result<void> {
    auto own = all && caller.admin ? tx.vfolders() : tx.vfoldersOwnedBy(caller.accessKey);
    if (!own) return Failure{own.error()};
    for (auto& folder : *own) {
      auto shares = tx.vfolderShares(folder.id);
      if (!shares) return Failure{shares.error()};
      const bool owner = folder.owner == caller.accessKey;
      out.push_back({std::move(folder), owner ? VfolderAccess::Owner : VfolderAccess::ReadWrite, true, std::move(*shares)});
    }
    if (all && caller.admin) return {};
    auto shared = tx.vfoldersSharedWith(caller.accessKey);
    if (!shared) return Failure{shared.error()};
    for (auto& folder : *shared) {
      auto shares = tx.vfolderShares(folder.id);
      if (!shares) return Failure{shares.error()};
      VfolderAccess access = VfolderAccess::ReadWrite;
      for (const auto& share : *shares) {
        if (share.accessKey == caller.accessKey && share.permission == Permission::ReadOnly) access = VfolderAccess::ReadOnly;
      }
      const bool manages = caller.admin;
      out.push_back({std::move(folder), access, manages, manages ? std::move(*shares) : std::vector<VfolderShareRecord>{}});
    }
    return {};
  });
  if (!read) return Failure{storeFailed(read.error())};
  return out;
}

Outcome<VfolderView> VfolderService::info(const Caller& caller, const std::string& ref) {
  auto folder = resolve(caller, ref);
  if (!folder) return Failure{folder.error()};
  auto proxy = proxyOf(folder->record.host);
  if (!proxy) return Failure{proxy.error()};
  auto usage = proxy->first->client.folder(proxy->second, folder->record.id);
  if (!usage) return Failure{refusalOf(usage.error())};
  auto view = viewOf(*folder);
  if (view) view->usage = std::move(*usage);
  return view;
}

Outcome<void> VfolderService::remove(const Caller& caller, const std::string& ref) {
  auto folder = resolveManaged(caller, ref);
  if (!folder) return Failure{folder.error()};
  const std::string& id = folder->record.id;
  bool mounted = false;
  auto read = store_.read([&](StoreTransaction& tx) -> Result<void> {
    auto inUse = tx.vfolderMountedByActiveSession(id);
    if (!inUse) return Failure{inUse.error()};
    mounted = *inUse;
    return {};
  });
  if (!read) return Failure{storeFailed(read.error())};
  if (mounted) return refuse(ErrorKind::VfolderInUse, "folder '" + folder->record.name + "' (" + id + ") is mounted by an active session");
  auto proxy = proxyOf(folder->record.host);
  if (!proxy) return Failure{proxy.error()};
  auto deleted = proxy->first->client.deleteFolder(proxy->second, id);
  // A folder the proxy no longer has is deleted as far as it is concerned.
  if (!deleted && !(deleted.error().httpStatus == 404 && deleted.error().error.type == "no-such-folder")) {
    return Failure{refusalOf(deleted.error())};
  }
  auto written = store_.write([&](StoreTransaction& tx) { return tx.deleteVfolder(id); });
  if (!written) return Failure{storeFailed(written.error())};
  log(LogLevel::Info, "folder " + id + " '" + folder->record.name + "' deleted by " + caller.accessKey);
  return {};
}

Outcome<VfolderView> VfolderService::share(const Caller& caller, const std::string& ref, const std::string& accessKey,
                                           std::optional<Permission> permission) {
  auto folder = resolveManaged(caller, ref);
  if (!folder) return Failure{folder.error()};
  if (accessKey == folder->record.owner) {
    return refuse(ErrorKind::InvalidRequest, "keypair '" + accessKey + "' owns folder '" + folder->record.name +
                                                 "'; a folder is shared with other keypairs", "access_key");
  }
  auto keypair = keypairOf(accessKey);
  if (!keypair) return Failure{keypair.error()};
  auto proxy = proxyOf(folder->record.host);
  if (!proxy) return Failure{proxy.error()};
  const Permission granted = permission.value_or(folder->record.permission);
  auto access = proxy->first->client.setAccess(proxy->second, folder->record.id, keypair->uid, granted);
  if (!access) return Failure{refusalOf(access.error())};
  auto written = store_.write([&](StoreTransaction& tx) {
    return tx.setVfolderShare(VfolderShareRecord{folder->record.id, accessKey, granted});
  });
  if (!written) return Failure{storeFailed(written.error())};
  return viewOf(*folder);
}

Outcome<void> VfolderService::unshare(const Caller& caller, const std::string& ref, const std::string& accessKey) {
  auto folder = resolveManaged(caller, ref);
  if (!folder) return Failure{folder.error()};
  auto view = viewOf(*folder);
  if (!view) return Failure{view.error()};
  bool shared = false;
  for (const auto& share : view->shares) shared = shared || share.accessKey == accessKey;
  if (!shared) {
    return refuse(ErrorKind::UnknownKeypair, "folder '" + folder->record.name + "' is not shared with '" + accessKey + "'");
  }
  auto keypair = keypairOf(accessKey);
  if (!keypair) return Failure{keypair.error()};
  auto proxy = proxyOf(folder->record.host);
  if (!proxy) return Failure{proxy.error()};
  auto access = proxy->first->client.removeAccess(proxy->second, folder->record.id, keypair->uid);
  if (!access) return Failure{refusalOf(access.error())};
  auto written = store_.write([&](StoreTransaction& tx) { return tx.removeVfolderShare(folder->record.id, accessKey); });
  if (!written) return Failure{storeFailed(written.error())};
  return {};
}

Outcome<IssuedGrant> VfolderService::grant(const Caller& caller, const std::string& ref, GrantOperation operation,
                                           const std::string& path) {
  auto folder = resolve(caller, ref);
  if (!folder) return Failure{folder.error()};
  if (operation == GrantOperation::Upload && !writes(folder->access)) {
    return refuse(ErrorKind::VfolderReadOnly, "folder '" + folder->record.name + "' is shared with you read-only; no upload");
  }
  auto normalised = normalizeFolderPath(path);
  if (!normalised) return refuse(ErrorKind::InvalidPath, normalised.error().message, "path");
  auto proxy = proxyOf(folder->record.host);
  if (!proxy) return Failure{proxy.error()};
  const std::int64_t expires = nowMillis() + std::chrono::milliseconds(grantTtl_).count();
  const Grant grant{operation, proxy->second, folder->record.id, *normalised, caller.accessKey, expires};
  return IssuedGrant{proxy->first->clientUrl, signGrant(grant, proxy->first->grantKey), *normalised, expires};
}

Outcome<std::vector<StorageHost>> VfolderService::hosts() {
  if (auto ready = requireStorage(); !ready) return Failure{ready.error()};
  std::vector<StorageHost> out;
  for (const auto& [name, proxy] : proxies_) {
    auto volumes = proxy.client.volumes();
    if (!volumes) return Failure{refusalOf(volumes.error())};
    for (auto& volume : *volumes) out.push_back({name + ":" + volume.name, std::move(volume)});
  }
  return out;
}

}  // namespace bai::manager
