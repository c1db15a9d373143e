/*
 * bai accelerator plugin ABI, version 1.
 *
 * A plugin is a shared object that the bai agent loads with dlopen(RTLD_NOW|RTLD_LOCAL).
 * It exports exactly two symbols:
 *
 *   const bai_plugin_info bai_accelerator_info;            -- identity, read first
 *   const bai_accelerator_vtable* bai_accelerator_entry(void);  -- the call table
 *
 * The host reads `bai_accelerator_info` before running any plugin code and refuses a
 * plugin whose ABI major differs from BAI_ACCELERATOR_ABI_MAJOR. Then it calls
 * `bai_accelerator_entry` and checks the table's own {abi_major, abi_minor, struct_size}.
 *
 * Compatibility: within one major version, structs only grow at the end. A host reads
 * a member only when `struct_size` covers it; a plugin reads a member of the host
 * services table only when that table's `struct_size` covers it. A plugin must not do
 * any work in static constructors: the host may load it only to read its identity.
 *
 * Payloads are UTF-8 JSON documents (schemas in docs/abi/). Quantities are decimal
 * strings ("0.5", "85899345920"), never JSON floats.
 *
 * Ownership: every `const char*` the host passes in is valid for the duration of the
 * call only. Every `char*` a plugin returns through an out parameter is allocated by
 * the plugin and released by the host with that plugin's `free_string`, never free().
 *
 * Threading: the host serializes calls into one instance (it calls each plugin from the
 * plugin's own worker thread). Distinct instances of one plugin may live at once and may
 * be called from different threads at the same time. `free_string` and the host services
 * callbacks are thread-safe.
 *
 * This header depends only on <stdint.h>, <stddef.h> and <stdbool.h>; it compiles as
 * C11 and as C++.
 */
#ifndef BAI_ACCELERATOR_H
#define BAI_ACCELERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A minor version adds to what a plugin may send or call; a plugin built against an
 * older minor keeps loading:
 *   1.0  the call table and payloads as first published;
 *   1.1  prepare_session's "devices" items may be objects {"path", "type", "major",
 *        "minor", "access"} beside paths, and "limits" is defined: exactly the keys
 *        "cpuset", "mems" and "memory" (docs/abi/prepare_session.schema.json). 1.0 left
 *        "limits" free-form and unapplied; a key outside these three now fails the
 *        session. A plugin that sends device objects needs an agent of 1.1 or later;
 *   1.2  prepare_session may return "cdi_devices" (CDI device names such as
 *        "nvidia.com/gpu=GPU-..."), which a container runtime passes to its engine
 *        instead of "devices" and "mounts", and "limits" takes "cpu_quota" (CPUs as a
 *        decimal string, "0.5"). A plugin that sends either needs an agent of 1.2. */
#define BAI_ACCELERATOR_ABI_MAJOR 1u
#define BAI_ACCELERATOR_ABI_MINOR 2u

/* Marks the two exported symbols; plugins build with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define BAI_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BAI_PLUGIN_EXPORT
#endif

/* ---- Status codes ------------------------------------------------------------------
 * Every call returns one. Details go through the host's log callback, not the code. */
typedef int32_t bai_status;
#define BAI_OK 0                     /* success; out parameters are set */
#define BAI_ERR_INVALID_ARGUMENT 1   /* bad config or bad input JSON from the host */
#define BAI_ERR_NOT_FOUND 2          /* e.g. a device id or session the plugin does not know */
#define BAI_ERR_UNAVAILABLE 3        /* the driver or device cannot answer now; try later */
#define BAI_ERR_UNSUPPORTED 4        /* this plugin does not implement the call */
#define BAI_ERR_OUT_OF_MEMORY 5
#define BAI_ERR_INTERNAL 6           /* a bug or an unexpected state in the plugin */
#define BAI_ERR_EXCEPTION 7          /* C++ helper: a std::exception reached the boundary */
#define BAI_ERR_UNKNOWN_EXCEPTION 8  /* C++ helper: a non-standard exception reached it */

/* ---- Identity -----------------------------------------------------------------------
 * Pointer-free so that it can be read right after dlopen, or from the ELF file.
 * Strings are NUL-terminated within their arrays. */
#define BAI_PLUGIN_NAME_SIZE 64
#define BAI_PLUGIN_VENDOR_SIZE 64
#define BAI_PLUGIN_VERSION_SIZE 32
#define BAI_PLUGIN_KEY_SIZE 32
#define BAI_PLUGIN_DESCRIPTION_SIZE 128

/* The value of `key` for a plugin whose device key comes from its config (the mock):
 * the host then asks `describe` for the key after `create`. */
#define BAI_PLUGIN_KEY_DYNAMIC "dynamic"

typedef struct bai_plugin_info {
  uint32_t abi_major; /* BAI_ACCELERATOR_ABI_MAJOR the plugin was built against */
  uint32_t abi_minor; /* BAI_ACCELERATOR_ABI_MINOR the plugin was built against */
  char name[BAI_PLUGIN_NAME_SIZE];       /* unique plugin name for allow/block lists: "cuda-device" */
  char vendor[BAI_PLUGIN_VENDOR_SIZE];   /* "NVIDIA", "Acme Corp." */
  char version[BAI_PLUGIN_VERSION_SIZE]; /* the plugin's own version: "1.2.0" */
  char key[BAI_PLUGIN_KEY_SIZE];         /* device key, the prefix of its slots: "cuda"; or "dynamic" */
  char description[BAI_PLUGIN_DESCRIPTION_SIZE];
} bai_plugin_info;

/* ---- Host services --------------------------------------------------------------------
 * Passed to `create`; valid until `destroy` returns. Versioned like the vtable. */
#define BAI_LOG_DEBUG 0
#define BAI_LOG_INFO 1
#define BAI_LOG_WARNING 2
#define BAI_LOG_ERROR 3

typedef struct bai_host_services {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size; /* sizeof(bai_host_services) as the host knows it */
  uint32_t reserved;    /* zero */
  void* context;        /* pass back as the first argument of every callback */

  /* Writes one log line attributed to the plugin. `level` is a BAI_LOG_* value;
   * `message` is UTF-8, copied before the call returns. Thread-safe. Never pass secrets. */
  void (*log)(void* context, int32_t level, const char* message);

  /* Looks up `key` (a dotted path, e.g. "devices" or "limits.max_mem") in the plugin's
   * config table and writes its value as JSON text plus a NUL into `buffer`.
   * Returns BAI_OK when it fitted; BAI_ERR_NOT_FOUND when the key is absent;
   * BAI_ERR_INVALID_ARGUMENT when `buffer_size` is too small. In every case but
   * NOT_FOUND, `*needed` (if not NULL) receives the size required including the NUL.
   * Thread-safe. */
  bai_status (*config_get)(void* context, const char* key, char* buffer, size_t buffer_size, size_t* needed);
} bai_host_services;

/* ---- Instances and the call table ------------------------------------------------ */
typedef struct bai_accelerator bai_accelerator; /* opaque, owned by the plugin */

typedef struct bai_accelerator_vtable {
  uint32_t abi_major;   /* BAI_ACCELERATOR_ABI_MAJOR */
  uint32_t abi_minor;   /* BAI_ACCELERATOR_ABI_MINOR the table was built with */
  uint32_t struct_size; /* sizeof(bai_accelerator_vtable) as the plugin knows it */
  uint32_t reserved;    /* zero */

  /* Creates an instance. `host` stays valid until destroy; `config_json` is the plugin's
   * config table as a JSON object ("{}" when there is none), valid for this call only.
   * On BAI_OK `*out` is a new instance; on failure `*out` is untouched and the reason
   * was logged. Discovery (enumerating devices, loading the vendor library) happens here:
   * a missing driver is not a failure but zero devices and a reason in `describe`. */
  bai_status (*create)(const bai_host_services* host, const char* config_json, bai_accelerator** out);

  /* Destroys an instance created by `create`. Undoes everything create did. Never fails. */
  void (*destroy)(bai_accelerator* instance);

  /* Releases a string returned by any call of this plugin. NULL is allowed. Thread-safe. */
  void (*free_string)(char* text);

  /* {"key": "cuda", "extra_info": {...}}: the device key (resolves "dynamic") and free-form
   * facts for operators and the manager (driver version, why there are no devices). */
  bai_status (*describe)(bai_accelerator* instance, char** out_json);

  /* {"devices": [{"id", "model", "uuid", "pci_bus", "numa_node", "memory",
   *               "processing_units", "health", "extra"}]}: the devices found at create. */
  bai_status (*list_devices)(bai_accelerator* instance, char** out_json);

  /* {"slots": [{"name": "cuda.device", "type": "count"|"bytes"|"unique"|"unified"}]}.
   * Every slot name starts with "<key>." (the cpu plugin may also offer "cpu" and "mem"). */
  bai_status (*slot_types)(bai_accelerator* instance, char** out_json);

  /* {"exclusive": [["cuda.device", "cuda.shares", "cuda.device:*-mig"]],
   *  "maps": [{"slot", "kind": "discrete"|"fraction", "strategy": "fill"|"evenly",
   *            "quantum": "0.01", "fragmentation_guard": false,
   *            "devices": [{"id", "capacity"}]}]}: one allocation map per slot. */
  bai_status (*alloc_map_spec)(bai_accelerator* instance, char** out_json);

  /* Given {"session_id", "allocation": {"<slot>": {"<device id>": "<amount>"}}} returns
   * {"env": {...}, "devices": ["/dev/x" | {"path", "type", "major", "minor", "access"}],
   *  "mounts": [{"source", "target", "read_only"}], "limits": {"cpuset", "mems", "memory"}}:
   * what the session's process needs, every member optional. The agent adds `env` to the
   * session's environment, lets the session open exactly the listed device nodes (its
   * device cgroup and its /dev), bind-mounts `mounts`, and applies `limits` to its cgroup;
   * a payload it cannot apply (unknown limit key, missing node or mount source) fails the
   * session's start naming the plugin and the key (docs/plugin-guide.md#what-a-session-receives).
   * The host calls it for EVERY
   * plugin before EVERY session, with an empty allocation when the session asked for
   * none of this plugin's slots (hide your devices from it: e.g. an empty visibility
   * variable). Every successful call is paired with exactly one release_session for the
   * same session id; preparing an id that is prepared and not yet released returns
   * BAI_ERR_INVALID_ARGUMENT (bai-plugin-check tests it). The output is freed with
   * free_string. */
  bai_status (*prepare_session)(bai_accelerator* instance, const char* session_json, char** out_json);

  /* Undoes prepare_session for {"session_id", "allocation"}: stops MPS clients, frees
   * MIG handles. Called once per successful prepare, also after the session failed.
   * A session id that is not prepared, unknown or released already, returns
   * BAI_ERR_NOT_FOUND (bai-plugin-check tests it; an agent that restarted may release
   * sessions a previous instance prepared). */
  bai_status (*release_session)(bai_accelerator* instance, const char* session_json);

  /* {"measures": [{"key", "unit", "value", "per_device": {"<id>": "<value>"}}]} for the node. */
  bai_status (*node_measures)(bai_accelerator* instance, char** out_json);

  /* Same shape, for one session given {"session_id", "allocation"}. */
  bai_status (*session_measures)(bai_accelerator* instance, const char* session_json, char** out_json);

  /* {"devices": [{"id", "health": "healthy"|"unhealthy"|"gone", "reason"}]}. Polled;
   * a plugin that watches driver events does so on its own thread and reports here. */
  bai_status (*health)(bai_accelerator* instance, char** out_json);
} bai_accelerator_vtable;

/* The entry point's type. The returned table is static and valid while the module is loaded. */
typedef const bai_accelerator_vtable* (*bai_accelerator_entry_fn)(void);

#define BAI_ACCELERATOR_INFO_SYMBOL "bai_accelerator_info"
#define BAI_ACCELERATOR_ENTRY_SYMBOL "bai_accelerator_entry"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BAI_ACCELERATOR_H */
