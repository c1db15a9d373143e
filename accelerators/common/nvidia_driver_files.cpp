#include "nvidia_driver_files.hpp"

#include <filesystem>

namespace bai::nvml {
namespace {

// libnvidia-container's "utility" (NVML, nvidia-smi's config) and "compute" (CUDA driver,
// its JIT compilers, debugger, OpenCL, allocator) libraries, by the soname a CUDA
// program or runtime dlopens; graphics, video and display libraries are left out.
constexpr const char* kLibraries[] = {
    "libnvidia-ml.so.1",   "libnvidia-cfg.so.1",        "libcuda.so.1",          "libcudadebugger.so.1",
    "libnvidia-nvvm.so.4", "libnvidia-ptxjitcompiler.so.1", "libnvidia-opencl.so.1", "libnvidia-allocator.so.1",
};
// Libraries only named with the driver version (used by the JIT compilers since 530).
constexpr const char* kVersionedLibraries[] = {"libnvidia-gpucomp.so."};
// nvidia-smi for users, the MPS control and server for cuda-fractional's shares.
constexpr const char* kBinaries[] = {"nvidia-smi", "nvidia-debugdump", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"};

}  // namespace

std::vector<std::string> nvidiaDriverFiles(const std::string& libraryDir, const std::optional<std::string>& driverVersion,
                                           const std::vector<std::string>& binaryDirs) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code error;
  auto addIfPresent = [&](const fs::path& path) {
    if (!fs::is_regular_file(path, error)) return false;  // follows a soname's link; a dangling one is absent
    files.push_back(path.string());
    return true;
  };
  for (const char* library : kLibraries) addIfPresent(fs::path(libraryDir) / library);
  if (driverVersion) {
    for (const char* library : kVersionedLibraries) addIfPresent(fs::path(libraryDir) / (library + *driverVersion));
  }
  for (const char* binary : kBinaries) {
    for (const std::string& dir : binaryDirs) {
      if (addIfPresent(fs::path(dir) / binary)) break;
    }
  }
  return files;
}

}  // namespace bai::nvml
