// The exported identity and entry point of the cuda-device plugin: the GPU inventory of
// accelerators/common/ as it stands, every GPU whole and every MIG slice on its own.
#include "gpu_accelerator.hpp"

BAI_ACCELERATOR_PLUGIN(bai::nvml::GpuAccelerator, "cuda-device", "NVIDIA", "1.0.0", "cuda",
                       "Whole NVIDIA GPUs and MIG slices through NVML (dlopen-ed; no driver means no devices)")
