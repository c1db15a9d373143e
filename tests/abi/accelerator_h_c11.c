/* accelerator.h on its own as strict C11 (no extensions), with its layout pinned. */
#include <bai/accelerator.h>

#include "accelerator_layout.h"

int main(void) {
  bai_plugin_info info = {BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, "n", "v", "1", "k", "d"};
  return info.abi_major == 1u && info.key[0] == 'k' ? 0 : 1;
}
