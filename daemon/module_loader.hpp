// Loads a shared object by absolute path with RTLD_NOW | RTLD_LOCAL (Boost.DLL), and
// looks up its symbols. Shared by the agent (accelerators) and the manager (policies).
// Internal to bai: not an installed header.
#pragma once

#include <bai/result.hpp>

#include <filesystem>
#include <memory>
#include <string>

namespace bai {

class LoadedModule {
 public:
  // Errors carry dlerror()'s text: a missing file, a missing dependency, an undefined symbol.
  static Result<LoadedModule> open(const std::filesystem::path& path);

  LoadedModule(LoadedModule&&) noexcept;
  LoadedModule& operator=(LoadedModule&&) noexcept;
  ~LoadedModule();

  const std::filesystem::path& path() const;
  // The address of an exported symbol, or nullptr.
  void* symbol(const char* name) const;
  // Keeps the code mapped for the rest of the process: a plugin thread that hung may
  // still be running in it, and unmapping would crash the process later.
  void keepLoadedForever();

 private:
  struct Impl;
  explicit LoadedModule(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bai
