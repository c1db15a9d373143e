// Virtual folders: the manager's records of folders on storage proxies' volumes, who may
// use them, and the calls that make the proxies act (storage_client). The manager never
// carries a folder's bytes: clients get a short-lived signed grant and talk to the proxy.
//
// A folder `ref` names the caller's own folder of that name, else one shared with the
// caller, else a folder id the caller may see; a folder the caller may not see is
// UnknownVfolder, exactly as one that does not exist.
//
// Threads: API threads. Never holds the ledger's lock: proxy calls are made between
// store transactions, and a failed proxy call leaves no row behind.
#pragma once

#include "caller.hpp"
#include "domain_error.hpp"
#include "log_sink.hpp"
#include "manager_config.hpp"
#include "storage_client.hpp"
#include "store/store.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bai::manager {

struct NewVfolder {
  std::string name;                 // 1 to 64 of [A-Za-z0-9._-], not starting with '.'
  std::optional<std::string> host = std::nullopt;  // "PROXY:VOLUME"; nullopt: [storage] default-host
  std::optional<std::uint64_t> quotaBytes = std::nullopt;
  storage_protocol::Permission permission = storage_protocol::Permission::ReadWrite;
};

// What a caller may do with a folder.
enum class VfolderAccess { Owner, ReadWrite, ReadOnly };
const char* vfolderAccessName(VfolderAccess access);  // "owner", "rw", "ro"

struct VfolderView {
  VfolderRecord record;
  VfolderAccess access = VfolderAccess::ReadOnly;
  bool manages = false;  // the owner or an admin: sees its shares, may share and delete it
  std::vector<VfolderShareRecord> shares = {};  // filled only when `manages`
  std::optional<storage_protocol::FolderInfo> usage = std::nullopt;  // measured now (info only)
};

struct IssuedGrant {
  std::string url;    // the proxy's client API
  std::string token;  // the signed grant; never logged
  std::string path;   // normalised
  std::int64_t expiresAtMillis = 0;
};

struct StorageHost {
  std::string host;  // "PROXY:VOLUME"
  storage_protocol::VolumeInfo volume;
};

// A folder a new session asks to mount (POST /v1/sessions "mounts").
struct MountRequest {
  std::string folder;                 // a ref
  std::optional<std::string> target;  // nullopt: /home/work/<folder name>
  bool readOnly = false;

  bool operator==(const MountRequest&) const = default;
};

// A name for folders: 1 to 64 of [A-Za-z0-9._-], not starting with '.'.
bool isVfolderName(std::string_view name);

class VfolderService {
 public:
  VfolderService(Store& store, const StorageSettings& storage, std::chrono::milliseconds timeout, LogSink log);

  Outcome<VfolderView> create(const Caller& caller, const NewVfolder& request);
  // The caller's own and those shared with them; every folder for an admin asking `all`.
  Outcome<std::vector<VfolderView>> list(const Caller& caller, bool all);
  Outcome<VfolderView> info(const Caller& caller, const std::string& ref);
  Outcome<void> remove(const Caller& caller, const std::string& ref);
  Outcome<VfolderView> share(const Caller& caller, const std::string& ref, const std::string& accessKey,
                             std::optional<storage_protocol::Permission> permission);
  Outcome<void> unshare(const Caller& caller, const std::string& ref, const std::string& accessKey);
  Outcome<IssuedGrant> grant(const Caller& caller, const std::string& ref, storage_protocol::GrantOperation operation,
                             const std::string& path);
  Outcome<std::vector<storage_protocol::FileEntry>> listFiles(const Caller& caller, const std::string& ref,
                                                              const std::string& path, bool recursive);
  // mkdir, delete or move ({"path", "parents"}, {"path", "recursive"}, {"from", "to"}):
  // paths normalised, relayed; the status the proxy answered. Needs rw access.
  Outcome<int> changeFiles(const Caller& caller, const std::string& ref, const std::string& operation,
                           const std::string& body);
  Outcome<std::vector<StorageHost>> hosts();
  // The session's mounts as the agent gets them: each folder visible to the caller, a
  // read-only share forcing read-only, targets below /home/work and unique.
  Outcome<std::vector<SessionMount>> resolveMounts(const Caller& caller, const std::vector<MountRequest>& requests);

 private:
  struct Proxy {
    StorageClient client;
    std::string clientUrl;
    std::string grantKey;  // storage_protocol::grantKey(token)
  };
  struct Resolved {
    VfolderRecord record;
    VfolderAccess access;
    bool manages;
  };

  Outcome<void> requireStorage() const;
  Outcome<Resolved> resolve(const Caller& caller, const std::string& ref);
  Outcome<Resolved> resolveManaged(const Caller& caller, const std::string& ref);
  // The proxy serving `host` and the volume's name.
  Outcome<std::pair<const Proxy*, std::string>> proxyOf(const std::string& host) const;
  Outcome<VfolderView> viewOf(const Resolved& folder);
  Outcome<KeypairRecord> keypairOf(const std::string& accessKey);
  void log(LogLevel level, const std::string& message) const;

  Store& store_;
  std::map<std::string, Proxy> proxies_;
  std::string defaultHost_;
  std::chrono::seconds grantTtl_;
  LogSink log_;
};

}  // namespace bai::manager
