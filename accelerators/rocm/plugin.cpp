// The exported identity and entry point of the rocm accelerator plugin.
#include "rocm_accelerator.hpp"

BAI_ACCELERATOR_PLUGIN(bai::rocm::RocmAccelerator, "rocm", "bai", "1.0.0", "rocm",
                       "AMD GPUs through ROCm SMI (dlopened): whole devices as rocm.device")
