#include "module_loader.hpp"

#include <utility>  // Boost 1.74 Asio/DLL with GCC 12 in C++20 need std::exchange first

#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

namespace bai {

struct LoadedModule::Impl {
  boost::dll::shared_library library;
  std::filesystem::path path;
};

LoadedModule::LoadedModule(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LoadedModule::LoadedModule(LoadedModule&&) noexcept = default;
LoadedModule& LoadedModule::operator=(LoadedModule&&) noexcept = default;
LoadedModule::~LoadedModule() = default;

Result<LoadedModule> LoadedModule::open(const std::filesystem::path& path) {
  if (!path.is_absolute()) {
    return fail(ErrorCode::InvalidArgument, path.string() + ": plugin paths must be absolute");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  boost::dll::fs::error_code ec;
  (void)dlerror();  // clear a stale message
  impl->library.load(path, ec, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  if (ec) {
    // Boost reports only "Bad file descriptor"; dlerror() still holds the loader's reason.
    const char* reason = dlerror();
    return fail(ErrorCode::InvalidArgument,
                path.string() + ": cannot load: " + (reason != nullptr ? reason : ec.message()));
  }
  return LoadedModule(std::move(impl));
}

const std::filesystem::path& LoadedModule::path() const { return impl_->path; }

void* LoadedModule::symbol(const char* name) const {
  if (!impl_->library.has(name)) return nullptr;
  return &impl_->library.get<char>(name);
}

void LoadedModule::keepLoadedForever() {
  // One more reference that is never released: the later unload only drops Boost's.
  (void)dlopen(impl_->path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
}

}  // namespace bai
