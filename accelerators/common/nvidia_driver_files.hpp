// The NVIDIA driver's user-space files a container needs to use a GPU when no CDI spec
// makes its engine inject them: the files that the NVIDIA Container Toolkit mounts for the
// "compute" and "utility" capabilities (the default of CUDA images), from where the
// plugin's NVML was found.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace bai::nvml {

// The driver files present on this node, each to be mounted read-only at its own path:
// the libraries in `libraryDir` (the directory NVML was loaded from), the ones named by
// the driver version ("libnvidia-gpucomp.so.550.54.15") when it is known, and the
// binaries in `binaryDirs` (the first dir that has each wins).
std::vector<std::string> nvidiaDriverFiles(const std::string& libraryDir, const std::optional<std::string>& driverVersion,
                                           const std::vector<std::string>& binaryDirs);

}  // namespace bai::nvml
