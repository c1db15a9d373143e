// cuda_probe: what a CUDA program sees in its environment — the visible devices, their
// names, UUIDs, SMs and memory, and the memory free in a context. Uses the CUDA driver
// API through dlopen("libcuda.so.1"), so it builds with g++ alone (no CUDA Toolkit) and
// runs on any machine with an NVIDIA driver. Exit 77: no driver or no device.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <initializer_list>

namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st*;
struct CUuuid {
  unsigned char bytes[16];
};
constexpr CUresult kSuccess = 0;
constexpr CUresult kNoDevice = 100;
constexpr int kMultiprocessorCount = 16;  // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT

template <class F>
F symbol(void* library, const char* name) {
  return reinterpret_cast<F>(dlsym(library, name));
}

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "(unset)";
}

}  // namespace

int main() {
  for (const char* name : {"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",
                           "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "CUDA_MPS_PIPE_DIRECTORY"}) {
    std::printf("%s=%s\n", name, env(name));
  }
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) {
    std::printf("no CUDA driver: %s\n", dlerror());
    return 77;
  }
  auto cuInit = symbol<CUresult (*)(unsigned)>(cuda, "cuInit");
  auto cuDeviceGetCount = symbol<CUresult (*)(int*)>(cuda, "cuDeviceGetCount");
  auto cuDeviceGet = symbol<CUresult (*)(CUdevice*, int)>(cuda, "cuDeviceGet");
  auto cuDeviceGetName = symbol<CUresult (*)(char*, int, CUdevice)>(cuda, "cuDeviceGetName");
  auto cuDeviceTotalMem = symbol<CUresult (*)(size_t*, CUdevice)>(cuda, "cuDeviceTotalMem_v2");
  auto cuDeviceGetUuid = symbol<CUresult (*)(CUuuid*, CUdevice)>(cuda, "cuDeviceGetUuid");
  auto cuDeviceGetAttribute = symbol<CUresult (*)(int*, int, CUdevice)>(cuda, "cuDeviceGetAttribute");
  auto cuDevicePrimaryCtxRetain = symbol<CUresult (*)(CUcontext*, CUdevice)>(cuda, "cuDevicePrimaryCtxRetain");
  auto cuCtxSetCurrent = symbol<CUresult (*)(CUcontext)>(cuda, "cuCtxSetCurrent");
  auto cuMemGetInfo = symbol<CUresult (*)(size_t*, size_t*)>(cuda, "cuMemGetInfo_v2");
  auto cuDevicePrimaryCtxRelease = symbol<CUresult (*)(CUdevice)>(cuda, "cuDevicePrimaryCtxRelease_v2");
  if (cuDevicePrimaryCtxRelease == nullptr) cuDevicePrimaryCtxRelease = symbol<CUresult (*)(CUdevice)>(cuda, "cuDevicePrimaryCtxRelease");
  if (!cuInit || !cuDeviceGetCount || !cuDeviceGet || !cuDeviceGetName || !cuDeviceTotalMem || !cuDeviceGetAttribute) {
    std::printf("libcuda.so.1 lacks a basic driver API call\n");
    return 1;
  }
  const CUresult init = cuInit(0);
  if (init == kNoDevice) {
    std::printf("cuInit: no CUDA device visible\n");
    return 77;
  }
  if (init != kSuccess) {
    std::printf("cuInit failed with %d\n", init);
    return 1;
  }
  int count = 0;
  cuDeviceGetCount(&count);
  std::printf("visible devices: %d\n", count);
  for (int i = 0; i < count; ++i) {
    CUdevice device = 0;
    if (cuDeviceGet(&device, i) != kSuccess) return 1;
    char name[256] = {};
    size_t total = 0;
    int sms = 0;
    cuDeviceGetName(name, sizeof name, device);
    cuDeviceTotalMem(&total, device);
    cuDeviceGetAttribute(&sms, kMultiprocessorCount, device);
    std::printf("device %d: %s, %d SMs, %zu MiB", i, name, sms, total >> 20);
    CUuuid uuid{};
    if (cuDeviceGetUuid != nullptr && cuDeviceGetUuid(&uuid, device) == kSuccess) {
      std::printf(", GPU-");
      for (int b = 0; b < 16; ++b) std::printf(b == 4 || b == 6 || b == 8 || b == 10 ? "-%02x" : "%02x", uuid.bytes[b]);
    }
    CUcontext context = nullptr;
    if (cuDevicePrimaryCtxRetain != nullptr && cuCtxSetCurrent != nullptr && cuMemGetInfo != nullptr &&
        cuDevicePrimaryCtxRetain(&context, device) == kSuccess && cuCtxSetCurrent(context) == kSuccess) {
      size_t freeBytes = 0, totalBytes = 0;
      if (cuMemGetInfo(&freeBytes, &totalBytes) == kSuccess) std::printf(", %zu MiB free in a context", freeBytes >> 20);
      if (cuDevicePrimaryCtxRelease != nullptr) cuDevicePrimaryCtxRelease(device);
    }
    std::printf("\n");
  }
  return 0;
}
