/* scheduler.h on its own as strict C11 (no extensions), with its layout pinned. Defines the
 * two exported symbols the way a C policy does, so their declarations stay legal C. */
#include <bai/scheduler.h>

#include "scheduler_layout.h"

static bai_policy* create(const char* options_json, char* error, size_t error_size) {
  (void)options_json;
  if (error_size > 0) error[0] = '\0';
  return NULL;
}
static void destroy(bai_policy* policy) { (void)policy; }
static int select_first(bai_policy* policy, const bai_session_view* session, const bai_candidate_view* candidates,
                        uint32_t* chosen) {
  (void)policy, (void)session, (void)candidates;
  *chosen = 0;
  return 0;
}

BAI_POLICY_EXPORT const bai_policy_identity bai_policy_info = {
    BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, BAI_POLICY_SELECTOR, "first", "1.0", "takes the first candidate"};

static const bai_policy_vtable table = {BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, sizeof(bai_policy_vtable),
                                        create, destroy, NULL, select_first, BAI_PREFER_ANY};

BAI_POLICY_EXPORT const bai_policy_vtable* bai_policy_entry(void) { return &table; }

int main(void) {
  bai_policy_entry_fn entry = bai_policy_entry;
  uint32_t chosen = 7;
  int status = entry()->select(NULL, NULL, NULL, &chosen);
  return status == 0 && chosen == 0 && bai_policy_info.kind == BAI_POLICY_SELECTOR ? 0 : 1;
}
