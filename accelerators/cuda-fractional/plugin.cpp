// The exported identity and entry point of the cuda-fractional plugin.
#include "cuda_fractional_accelerator.hpp"

BAI_ACCELERATOR_PLUGIN(bai::cuda::CudaFractionalAccelerator, "cuda-fractional", "NVIDIA", "1.0.0", "cuda",
                       "NVIDIA GPU shares (MPS limits), whole GPUs and MIG slices per GPU through NVML (dlopen-ed)")
