// accelerator.h and plugin.hpp on their own as C++20, with the layout pinned.
#include <bai/accelerator.h>
#include <bai/plugin.hpp>

#include "accelerator_layout.h"

#include <type_traits>

static_assert(std::is_standard_layout_v<bai_accelerator_vtable>);
static_assert(std::is_trivially_copyable_v<bai_plugin_info>);

int main() {
  bai::plugin::StatusError error(BAI_ERR_NOT_FOUND, "x");
  return error.status() == BAI_ERR_NOT_FOUND ? 0 : 1;
}
