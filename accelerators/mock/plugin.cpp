// The exported identity and entry point of the mock accelerator plugin.
#include "mock_accelerator.hpp"

BAI_ACCELERATOR_PLUGIN(bai::mock::MockAccelerator, "mock", "bai", "1.0.0", BAI_PLUGIN_KEY_DYNAMIC,
                       "Mock accelerator: devices, MIG slices and faults described by a TOML file")
