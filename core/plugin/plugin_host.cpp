#include "plugin/plugin_host.hpp"

#include "module_loader.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <regex>
#include <system_error>

namespace bai::core {
namespace {

// The 1.0 call table ends after `health`: a smaller table is from a broken build.
constexpr std::size_t kMinimumVtableSize = offsetof(bai_accelerator_vtable, health) + sizeof(void*);

bool validName(const std::string& name) {
  static const std::regex pattern("^[a-z0-9][a-z0-9._-]*$");
  return std::regex_match(name, pattern);
}

}  // namespace

namespace {

Result<std::string> infoString(const char* field, std::size_t size, const char* what) {
  const void* nul = std::memchr(field, '\0', size);
  if (nul == nullptr) return fail(ErrorCode::InvalidArgument, std::string("the info record's ") + what + " is not NUL-terminated");
  return std::string(field, static_cast<const char*>(nul));
}

}  // namespace

Result<PluginIdentity> readIdentity(const LoadedModule& module) {
  const auto* info = static_cast<const bai_plugin_info*>(module.symbol(BAI_ACCELERATOR_INFO_SYMBOL));
  if (info == nullptr) return fail(ErrorCode::InvalidArgument, "no bai_accelerator_info symbol: not a bai accelerator plugin");
  if (info->abi_major != BAI_ACCELERATOR_ABI_MAJOR) {
    return fail(ErrorCode::InvalidArgument, "built for plugin ABI " + std::to_string(info->abi_major) + "." +
                                                std::to_string(info->abi_minor) + ", this agent speaks " +
                                                std::to_string(BAI_ACCELERATOR_ABI_MAJOR) + ".x");
  }
  PluginIdentity identity;
  for (auto [field, size, what, target] :
       {std::tuple{info->name, sizeof info->name, "name", &identity.name},
        std::tuple{info->vendor, sizeof info->vendor, "vendor", &identity.vendor},
        std::tuple{info->version, sizeof info->version, "version", &identity.version},
        std::tuple{info->key, sizeof info->key, "key", &identity.key},
        std::tuple{info->description, sizeof info->description, "description", &identity.description}}) {
    auto text = infoString(field, size, what);
    if (!text) return Failure{text.error()};
    *target = std::move(*text);
  }
  identity.abiMajor = info->abi_major;
  identity.abiMinor = info->abi_minor;
  identity.file = module.path();
  if (!validName(identity.name)) {
    return fail(ErrorCode::InvalidArgument, "invalid plugin name '" + identity.name + "' (use a-z, 0-9, '.', '_', '-')");
  }
  if (identity.key != BAI_PLUGIN_KEY_DYNAMIC && !SlotName::parse(identity.key).ok()) {
    return fail(ErrorCode::InvalidArgument, "invalid device key '" + identity.key + "'");
  }
  return identity;
}

Result<const bai_accelerator_vtable*> readCallTable(const LoadedModule& module) {
  auto entry = reinterpret_cast<bai_accelerator_entry_fn>(module.symbol(BAI_ACCELERATOR_ENTRY_SYMBOL));
  if (entry == nullptr) return fail(ErrorCode::InvalidArgument, "no bai_accelerator_entry symbol");
  const bai_accelerator_vtable* vtable = entry();
  if (vtable == nullptr) return fail(ErrorCode::InvalidArgument, "bai_accelerator_entry returned no call table");
  if (vtable->abi_major != BAI_ACCELERATOR_ABI_MAJOR) {
    return fail(ErrorCode::InvalidArgument, "call table is for ABI major " + std::to_string(vtable->abi_major) +
                                                ", this agent speaks " + std::to_string(BAI_ACCELERATOR_ABI_MAJOR));
  }
  if (vtable->struct_size < kMinimumVtableSize) {
    return fail(ErrorCode::InvalidArgument, "call table struct_size " + std::to_string(vtable->struct_size) +
                                                " is smaller than the ABI 1.0 table (" +
                                                std::to_string(kMinimumVtableSize) + ")");
  }
  if (vtable->create == nullptr || vtable->destroy == nullptr || vtable->free_string == nullptr) {
    return fail(ErrorCode::InvalidArgument, "call table lacks create, destroy or free_string");
  }
  return vtable;
}

PluginHost::PluginHost(PluginHostOptions options) : options_(std::move(options)) {
  if (!options_.log) options_.log = stderrLogSink();
  if (!options_.configFor) options_.configFor = [](const std::string&, const std::string&) { return std::string("{}"); };
}

PluginHost::~PluginHost() = default;

bool PluginHost::allowedLocked(const std::string& name) const {
  const bool inAllow = options_.allow.empty() || std::count(options_.allow.begin(), options_.allow.end(), name) > 0;
  return inAllow && std::count(options_.block.begin(), options_.block.end(), name) == 0;
}

bool PluginHost::allowed(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return allowedLocked(name);
}

void PluginHost::reconfigure(std::vector<std::string> allow, std::vector<std::string> block,
                             std::function<std::string(const std::string& name, const std::string& key)> configFor) {
  std::lock_guard<std::mutex> lock(mutex_);
  options_.allow = std::move(allow);
  options_.block = std::move(block);
  if (configFor) options_.configFor = std::move(configFor);
}

std::vector<std::shared_ptr<AcceleratorPlugin>> PluginHost::plugins() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plugins_;
}

std::vector<SkippedPlugin> PluginHost::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

std::nullptr_t PluginHost::skip(const std::filesystem::path& file, const std::string& name, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    skipped_.push_back({file, name, reason});
  }
  options_.log(LogLevel::Error, "host", "plugin " + file.string() + (name.empty() ? "" : " (" + name + ")") +
                                            " skipped: " + reason);
  return nullptr;
}

std::vector<std::shared_ptr<AcceleratorPlugin>> PluginHost::loadAll() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    skipped_.clear();  // describes the latest scan
  }
  std::vector<std::shared_ptr<AcceleratorPlugin>> loaded;
  for (const auto& dir : options_.searchPath) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      options_.log(LogLevel::Warning, "host", "plugin directory " + dir.string() + " does not exist; skipped");
      continue;
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".so") files.push_back(std::filesystem::absolute(entry.path()));
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      if (auto plugin = loadFile(file)) loaded.push_back(std::move(plugin));
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  options_.log(LogLevel::Info, "host", std::to_string(plugins_.size()) + " accelerator plugin(s) loaded, " +
                                           std::to_string(skipped_.size()) + " skipped");
  return loaded;
}

// A name or key that is taken, by a serving or a withdrawn plugin.
std::optional<std::string> PluginHost::refusalLocked(const std::string& name, const std::string& key) const {
  for (const auto& p : plugins_) {
    if (p->identity().name == name) {
      return "a plugin named '" + name + "' is already loaded from " + p->identity().file.string();
    }
    if (key != BAI_PLUGIN_KEY_DYNAMIC && p->identity().key == key) {
      return "device key '" + key + "' is already provided by " + p->identity().file.string() + " (" +
             p->identity().name + "); allow only one of them";
    }
  }
  return std::nullopt;
}

// Plugin calls run without mutex_: only the list checks and the final insertion hold it.
std::shared_ptr<AcceleratorPlugin> PluginHost::loadFile(const std::filesystem::path& file) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (const auto& p : plugins_) {
    if (p->identity().file == file) return nullptr;  // already loaded by an earlier scan
  }
  lock.unlock();
  auto opened = LoadedModule::open(file);
  if (!opened) return skip(file, "", opened.error().message);
  auto module = std::make_shared<LoadedModule>(std::move(*opened));

  // Identity before code: the info record is plain data, read before any plugin call.
  auto read = readIdentity(*module);
  if (!read) return skip(file, "", read.error().message);
  PluginIdentity identity = std::move(*read);
  lock.lock();
  if (!allowedLocked(identity.name)) {
    lock.unlock();
    options_.log(LogLevel::Info, "host", "plugin " + file.string() + " (" + identity.name +
                                             ") not loaded: excluded by allow-plugins/block-plugins");
    return nullptr;
  }
  auto taken = refusalLocked(identity.name, identity.key);
  const std::string config = options_.configFor(identity.name, identity.key);
  lock.unlock();
  if (taken) return skip(file, identity.name, *taken);

  auto vtable = readCallTable(*module);
  if (!vtable) return skip(file, identity.name, vtable.error().message);

  auto started = AcceleratorPlugin::start(module, identity, *vtable, config,
                                          PluginCallOptions{options_.callDeadline, options_.log});
  if (!started) return skip(file, identity.name, started.error().message);
  std::shared_ptr<AcceleratorPlugin> plugin = std::move(*started);
  const std::string key = plugin->identity().key;
  lock.lock();
  if (auto resolved = refusalLocked(identity.name, key)) {  // a dynamic key resolved to one that is taken
    lock.unlock();
    return skip(file, identity.name, *resolved);
  }
  plugins_.push_back(plugin);
  lock.unlock();
  options_.log(LogLevel::Info, "host", "plugin " + identity.name + " " + identity.version + " (key " + key + ", ABI " +
                                           std::to_string(identity.abiMajor) + "." + std::to_string(identity.abiMinor) +
                                           ") loaded from " + file.string() + ": " +
                                           std::to_string(plugin->discovery().devices.size()) + " device(s)");
  return plugin;
}

AcceleratorPlugin* PluginHost::find(std::string_view key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& p : plugins_) {
    if (p->identity().key == key) return p.get();
  }
  return nullptr;
}

std::shared_ptr<AcceleratorPlugin> PluginHost::unload(const AcceleratorPlugin* plugin) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find_if(plugins_.begin(), plugins_.end(), [&](const auto& p) { return p.get() == plugin; });
  if (it == plugins_.end()) return nullptr;
  std::shared_ptr<AcceleratorPlugin> out = std::move(*it);
  plugins_.erase(it);
  return out;
}

}  // namespace bai::core
