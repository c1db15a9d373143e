// The exported identity and entry point of the cuda-device plugin.
#include "cuda_device_accelerator.hpp"

BAI_ACCELERATOR_PLUGIN(bai::cuda::CudaDeviceAccelerator, "cuda-device", "NVIDIA", "1.0.0", "cuda",
                       "Whole NVIDIA GPUs and MIG slices through NVML (dlopen-ed; no driver means no devices)")
