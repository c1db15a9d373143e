/*
 * bai scheduling policy ABI, version 1.
 *
 * A policy is a shared object that bai-manager loads with dlopen(RTLD_NOW|RTLD_LOCAL).
 * It exports exactly two symbols:
 *
 *   const bai_policy_identity bai_policy_info;         -- identity, read first
 *   const bai_policy_vtable* bai_policy_entry(void);    -- the call table
 *
 * The manager reads `bai_policy_info` before running any policy code and refuses a policy
 * whose ABI major differs from BAI_POLICY_ABI_MAJOR. Then it calls `bai_policy_entry` and
 * checks the table's own {abi_major, abi_minor, struct_size}. Within one major version,
 * structs only grow at the end; a reader uses a member only when `struct_size` covers it.
 *
 * Two kinds:
 *   - a SEQUENCER orders the pending sessions of one scaling group (FIFO, LIFO, DRF, ...);
 *   - a SELECTOR picks one agent among candidates that all fit a session (concentrated,
 *     dispersed, round-robin, ...).
 * The manager keeps what must be exact: which agents fit (exact decimal arithmetic on
 * every slot, largest-allocatable included), the reservation and quotas. Policies rank.
 *
 * Views are read-only structs of arrays, valid for the call only: `x[slot][i]` is the
 * amount of slot `slot_names[slot]` for session or agent `i`. Amounts are doubles in the
 * slot's unit (bytes for bytes slots, devices or shares for counts): good for ranking,
 * never used for fitting. Slots are listed in the scaling group's priority order
 * (accelerators first by default, then cpu, then mem, then others).
 *
 * Threading: calls into one instance are serialised by the manager; distinct instances
 * may be called from different threads at once. A policy must not do work in static
 * constructors, must not keep pointers into a view after the call returns, and must not
 * call back into the manager. Nothing crosses this boundary but these C types.
 *
 * This header depends only on <stdint.h> and <stddef.h>; it compiles as C11 and as C++.
 */
#ifndef BAI_SCHEDULER_H
#define BAI_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BAI_POLICY_ABI_MAJOR 1
#define BAI_POLICY_ABI_MINOR 1

#define BAI_POLICY_NAME_SIZE 64
#define BAI_POLICY_VERSION_SIZE 32
#define BAI_POLICY_DESCRIPTION_SIZE 128

/* Marks the two exported symbols; policies build with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define BAI_POLICY_EXPORT __attribute__((visibility("default")))
#else
#define BAI_POLICY_EXPORT
#endif

/* bai_policy_identity.kind */
#define BAI_POLICY_SEQUENCER 1u
#define BAI_POLICY_SELECTOR 2u

/* bai_policy_vtable.preference: which candidates a selector wants to see first when the
 * manager offers a window of them rather than every fitting agent (large groups). */
#define BAI_PREFER_LEAST_REMAINING 0u /* packing: the fullest agents that still fit */
#define BAI_PREFER_MOST_REMAINING 1u  /* spreading: the emptiest agents */
#define BAI_PREFER_ANY 2u             /* no preference: a rotating window */

/* The type of the exported `bai_policy_info` record. Named apart from the symbol: C (and C++)
 * cannot declare an object with the name of a typedef in the same scope. */
typedef struct bai_policy_identity {
  uint32_t abi_major; /* BAI_POLICY_ABI_MAJOR the policy was built against */
  uint32_t abi_minor; /* BAI_POLICY_ABI_MINOR the policy was built against */
  uint32_t kind;      /* BAI_POLICY_SEQUENCER or BAI_POLICY_SELECTOR */
  char name[BAI_POLICY_NAME_SIZE];       /* what scaling groups name: "drf", "concentrated" */
  char version[BAI_POLICY_VERSION_SIZE]; /* the policy's own version */
  char description[BAI_POLICY_DESCRIPTION_SIZE];
} bai_policy_identity;

/* The pending sessions of one scaling group, for a sequencer. */
typedef struct bai_pending_view {
  uint32_t struct_size;
  uint32_t session_count;
  uint32_t slot_count;
  const char* const* slot_names;        /* [slot] */
  const char* const* session_ids;       /* [session] */
  const char* const* owners;            /* [session] the access key that submitted it */
  const uint64_t* enqueue_seq;          /* [session] smaller means submitted earlier; unique */
  const double* const* requested;       /* [slot][session] */
  const double* group_capacity;         /* [slot] capacity of the group's live agents */
  const double* const* owner_allocated; /* [slot][session] what the session's owner holds in the group now */
} bai_pending_view;

/* One session to place, for a selector; its slots are the candidate view's. */
typedef struct bai_session_view {
  uint32_t struct_size;
  const char* session_id;
  const char* owner;
  const double* requested; /* [slot] */
} bai_session_view;

/* Agents that all fit the session, for a selector. */
typedef struct bai_candidate_view {
  uint32_t struct_size;
  uint32_t agent_count; /* at least 1 */
  uint32_t slot_count;
  const char* const* slot_names;  /* [slot] */
  const char* const* agent_ids;   /* [agent] */
  const double* const* capacity;  /* [slot][agent] */
  const double* const* remaining; /* [slot][agent] capacity less the manager's reservations */
  const double* const* largest;   /* [slot][agent] the largest amount one session can get there now */
  const uint32_t* shared_devices; /* [agent] fractional devices that already hold a session (anti-fragmentation) */
  /* Since ABI 1.1 (read it only when struct_size covers it): 1 where the slot's type is
   * "fraction" (shares of devices that sessions share, such as cuda.shares), else 0.
   * Packing policies key on this, never on a slot's name. */
  const uint8_t* slot_is_fraction; /* [slot] */
} bai_candidate_view;

typedef struct bai_policy bai_policy; /* opaque, owned by the policy */

typedef struct bai_policy_vtable {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size; /* sizeof(bai_policy_vtable) as the policy was built */

  /* Makes an instance for one scaling group. `options_json` is the group's options for this
   * policy as a JSON object ("{}" when none). On failure writes a NUL-terminated reason of
   * at most `error_size` bytes to `error` and returns NULL. The manager calls `destroy`
   * exactly once for each instance it got. */
  bai_policy* (*create)(const char* options_json, char* error, size_t error_size);
  void (*destroy)(bai_policy* policy);

  /* Sequencers (NULL in a selector): writes to `order` (room for session_count entries) a
   * permutation of 0..session_count-1, the order in which to try the sessions. Returns 0;
   * any other value makes the manager log it and fall back to submission order. */
  int (*order)(bai_policy* policy, const bai_pending_view* pending, uint32_t* order);

  /* Selectors (NULL in a sequencer): writes to `chosen` the index of one candidate.
   * Returns 0; any other value, or an index out of range, makes the manager log it and
   * take the first candidate. */
  int (*select)(bai_policy* policy, const bai_session_view* session, const bai_candidate_view* candidates,
                uint32_t* chosen);

  /* Selectors: BAI_PREFER_*; sequencers: 0. */
  uint32_t preference;
} bai_policy_vtable;

/* The entry point's type. The returned table is static and valid while the module is loaded. */
typedef const bai_policy_vtable* (*bai_policy_entry_fn)(void);

#define BAI_POLICY_INFO_SYMBOL "bai_policy_info"
#define BAI_POLICY_ENTRY_SYMBOL "bai_policy_entry"

#ifdef __cplusplus
}
#endif

#endif /* BAI_SCHEDULER_H */
