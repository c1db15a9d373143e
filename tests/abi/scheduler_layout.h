/* Pins the layout of the scheduling policy ABI v1 structs on LP64 targets. Included from a
 * C11 and a C++20 translation unit: a change to these numbers breaks every shipped policy. */
#ifndef BAI_TEST_SCHEDULER_LAYOUT_H
#define BAI_TEST_SCHEDULER_LAYOUT_H

#include <bai/scheduler.h>

#ifdef __cplusplus
#define BAI_STATIC_ASSERT static_assert
#else
#define BAI_STATIC_ASSERT _Static_assert
#endif

/* Pointer-free, so the same on every target. */
BAI_STATIC_ASSERT(sizeof(bai_policy_identity) == 236, "bai_policy_identity size");
BAI_STATIC_ASSERT(offsetof(bai_policy_identity, abi_major) == 0, "info.abi_major");
BAI_STATIC_ASSERT(offsetof(bai_policy_identity, abi_minor) == 4, "info.abi_minor");
BAI_STATIC_ASSERT(offsetof(bai_policy_identity, kind) == 8, "info.kind");
BAI_STATIC_ASSERT(offsetof(bai_policy_identity, name) == 12, "info.name");
BAI_STATIC_ASSERT(offsetof(bai_policy_identity, version) == 76, "info.version");
BAI_STATIC_ASSERT(offsetof(bai_policy_identity, description) == 108, "info.description");

#if UINTPTR_MAX == 0xffffffffffffffffu
BAI_STATIC_ASSERT(sizeof(bai_pending_view) == 72, "bai_pending_view size");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, session_count) == 4, "pending.session_count");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, slot_count) == 8, "pending.slot_count");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, slot_names) == 16, "pending.slot_names");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, session_ids) == 24, "pending.session_ids");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, owners) == 32, "pending.owners");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, enqueue_seq) == 40, "pending.enqueue_seq");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, requested) == 48, "pending.requested");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, group_capacity) == 56, "pending.group_capacity");
BAI_STATIC_ASSERT(offsetof(bai_pending_view, owner_allocated) == 64, "pending.owner_allocated");

BAI_STATIC_ASSERT(sizeof(bai_session_view) == 32, "bai_session_view size");
BAI_STATIC_ASSERT(offsetof(bai_session_view, session_id) == 8, "session.session_id");
BAI_STATIC_ASSERT(offsetof(bai_session_view, owner) == 16, "session.owner");
BAI_STATIC_ASSERT(offsetof(bai_session_view, requested) == 24, "session.requested");

BAI_STATIC_ASSERT(sizeof(bai_candidate_view) == 72, "bai_candidate_view size");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, agent_count) == 4, "candidates.agent_count");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, slot_count) == 8, "candidates.slot_count");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, slot_names) == 16, "candidates.slot_names");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, agent_ids) == 24, "candidates.agent_ids");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, capacity) == 32, "candidates.capacity");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, remaining) == 40, "candidates.remaining");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, largest) == 48, "candidates.largest");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, shared_devices) == 56, "candidates.shared_devices");
BAI_STATIC_ASSERT(offsetof(bai_candidate_view, slot_is_fraction) == 64, "candidates.slot_is_fraction (ABI 1.1)");

BAI_STATIC_ASSERT(sizeof(bai_policy_vtable) == 56, "bai_policy_vtable size");
BAI_STATIC_ASSERT(offsetof(bai_policy_vtable, abi_minor) == 4, "vtable.abi_minor");
BAI_STATIC_ASSERT(offsetof(bai_policy_vtable, struct_size) == 8, "vtable.struct_size");
BAI_STATIC_ASSERT(offsetof(bai_policy_vtable, create) == 16, "vtable.create");
BAI_STATIC_ASSERT(offsetof(bai_policy_vtable, destroy) == 24, "vtable.destroy");
BAI_STATIC_ASSERT(offsetof(bai_policy_vtable, order) == 32, "vtable.order");
BAI_STATIC_ASSERT(offsetof(bai_policy_vtable, select) == 40, "vtable.select");
BAI_STATIC_ASSERT(offsetof(bai_policy_vtable, preference) == 48, "vtable.preference");
#endif

#endif
