// scheduler.h on its own as C++20, with the layout pinned and the symbols declared the way
// a C++ policy does (extern "C", at global scope).
#include <bai/scheduler.h>

#include "scheduler_layout.h"

#include <type_traits>

static_assert(std::is_standard_layout_v<bai_policy_vtable>);
static_assert(std::is_trivially_copyable_v<bai_policy_identity>);
static_assert(std::is_standard_layout_v<bai_pending_view> && std::is_standard_layout_v<bai_candidate_view>);

extern "C" BAI_POLICY_EXPORT const bai_policy_identity bai_policy_info = {
    BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, BAI_POLICY_SEQUENCER, "none", "1.0", "orders nothing"};

extern "C" BAI_POLICY_EXPORT const bai_policy_vtable* bai_policy_entry(void) {
  static const bai_policy_vtable table = {BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, sizeof(bai_policy_vtable),
                                          nullptr, nullptr, nullptr, nullptr, 0};
  return &table;
}

int main() {
  const bai_policy_entry_fn entry = bai_policy_entry;
  return entry()->struct_size == sizeof(bai_policy_vtable) && bai_policy_info.kind == BAI_POLICY_SEQUENCER ? 0 : 1;
}
