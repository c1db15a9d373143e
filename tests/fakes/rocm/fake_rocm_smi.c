/*
 * A fake ROCm SMI (librocm_smi64.so.1) for testing the rocm plugin without an AMD GPU.
 *
 * rsmi_init reads the JSON file named by BAI_FAKE_ROCM_SMI_CONFIG (no variable: zero
 * devices):
 *
 *   {"init_error": false,
 *    "unsupported": ["rsmi_dev_busy_percent_get"],       -- these answer NOT_SUPPORTED
 *    "devices": [{"name": "AMD Instinct MI250X", "unique_id": "0x7a3b0c1d2e3f4051",
 *                 "pci_bus": "0000:c1:00.0", "numa_node": 0,
 *                 "vram_total": 68702699520, "vram_used": 1073741824, "busy_percent": 12}]}
 *
 * Signatures follow rocm_smi.h of ROCm SMI 5.2.3 (Debian's librocm-smi-dev). Init and
 * shut-down are reference counted like the real library's, and thread-safe.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef enum {
  RSMI_STATUS_SUCCESS = 0,
  RSMI_STATUS_INVALID_ARGS = 1,
  RSMI_STATUS_NOT_SUPPORTED = 2,
  RSMI_STATUS_FILE_ERROR = 3,
  RSMI_STATUS_INIT_ERROR = 8,
} rsmi_status_t;

typedef enum { RSMI_MEM_TYPE_VRAM = 0 } rsmi_memory_type_t;

#define MAX_DEVICES 64
#define MAX_UNSUPPORTED 16

struct fake_device {
  char name[128];
  uint64_t unique_id;
  uint64_t bdfid;
  uint32_t numa_node;
  uint64_t vram_total;
  uint64_t vram_used;
  uint32_t busy_percent;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
static uint32_t device_count;
static struct fake_device devices[MAX_DEVICES];
static char unsupported[MAX_UNSUPPORTED][64];
static int unsupported_count;

/* Lets a test tell this fake from the real library. */
EXPORT const int bai_fake_rocm_smi = 1;

/* ---- A JSON reader just big enough for the scenario files ------------------------------ */

struct reader {
  const char* p;
  int failed;
};

static void skip_space(struct reader* r) {
  while (*r->p != '\0' && isspace((unsigned char)*r->p)) r->p++;
}

static int accept(struct reader* r, char c) {
  skip_space(r);
  if (*r->p != c) return 0;
  r->p++;
  return 1;
}

/* Copies a string (escapes kept simple: \" \\ \/ and others taken literally) into out. */
static void read_string(struct reader* r, char* out, size_t size) {
  size_t n = 0;
  if (!accept(r, '"')) {
    r->failed = 1;
    return;
  }
  while (*r->p != '\0' && *r->p != '"') {
    char c = *r->p++;
    if (c == '\\' && *r->p != '\0') c = *r->p++;
    if (out != NULL && n + 1 < size) out[n++] = c;
  }
  if (out != NULL && size > 0) out[n] = '\0';
  if (!accept(r, '"')) r->failed = 1;
}

static void skip_value(struct reader* r);

static uint64_t read_number(struct reader* r) {
  char* end = NULL;
  skip_space(r);
  unsigned long long value = strtoull(r->p, &end, 0);
  if (end == r->p) r->failed = 1;
  r->p = end;
  return value;
}

/* A number, or a string holding one ("0x7a3b..."). */
static uint64_t read_integer(struct reader* r) {
  skip_space(r);
  if (*r->p != '"') return read_number(r);
  char text[64];
  read_string(r, text, sizeof text);
  char* end = NULL;
  unsigned long long value = strtoull(text, &end, 0);
  if (end == text || *end != '\0') r->failed = 1;
  return value;
}

static int read_bool(struct reader* r) {
  skip_space(r);
  if (strncmp(r->p, "true", 4) == 0) {
    r->p += 4;
    return 1;
  }
  if (strncmp(r->p, "false", 5) == 0) {
    r->p += 5;
    return 0;
  }
  r->failed = 1;
  return 0;
}

static void skip_value(struct reader* r) {
  skip_space(r);
  if (*r->p == '"') {
    read_string(r, NULL, 0);
  } else if (accept(r, '{')) {
    if (accept(r, '}')) return;
    do {
      read_string(r, NULL, 0);
      if (!accept(r, ':')) r->failed = 1;
      skip_value(r);
    } while (!r->failed && accept(r, ','));
    if (!accept(r, '}')) r->failed = 1;
  } else if (accept(r, '[')) {
    if (accept(r, ']')) return;
    do skip_value(r);
    while (!r->failed && accept(r, ','));
    if (!accept(r, ']')) r->failed = 1;
  } else {
    while (*r->p != '\0' && strchr(",}] \t\r\n", *r->p) == NULL) r->p++;
  }
}

/* "DDDD:BB:DD.F" to the bdfid layout of rsmi_dev_pci_id_get. */
static uint64_t parse_pci_bus(struct reader* r, const char* text) {
  unsigned domain = 0, bus = 0, device = 0, function = 0;
  if (sscanf(text, "%x:%x:%x.%x", &domain, &bus, &device, &function) != 4) r->failed = 1;
  return ((uint64_t)domain << 32) | ((bus & 0xffu) << 8) | ((device & 0x1fu) << 3) | (function & 0x7u);
}

static void read_device(struct reader* r, struct fake_device* d) {
  char key[64];
  char text[64];
  if (!accept(r, '{')) {
    r->failed = 1;
    return;
  }
  if (accept(r, '}')) return;
  do {
    read_string(r, key, sizeof key);
    if (!accept(r, ':')) r->failed = 1;
    if (strcmp(key, "name") == 0) {
      read_string(r, d->name, sizeof d->name);
    } else if (strcmp(key, "unique_id") == 0) {
      d->unique_id = read_integer(r);
    } else if (strcmp(key, "pci_bus") == 0) {
      read_string(r, text, sizeof text);
      d->bdfid = parse_pci_bus(r, text);
    } else if (strcmp(key, "numa_node") == 0) {
      skip_space(r);
      /* -1: no NUMA affinity, which the real library reports as 0xffffffff */
      char* end = NULL;
      d->numa_node = (uint32_t)strtol(r->p, &end, 10);
      if (end == r->p) r->failed = 1;
      r->p = end;
    } else if (strcmp(key, "vram_total") == 0) {
      d->vram_total = read_integer(r);
    } else if (strcmp(key, "vram_used") == 0) {
      d->vram_used = read_integer(r);
    } else if (strcmp(key, "busy_percent") == 0) {
      d->busy_percent = (uint32_t)read_integer(r);
    } else {
      skip_value(r);
    }
  } while (!r->failed && accept(r, ','));
  if (!accept(r, '}')) r->failed = 1;
}

/* Fills the globals from the file; returns 0, or an rsmi status. Called under `lock`. */
static rsmi_status_t load_config(void) {
  device_count = 0;
  unsupported_count = 0;
  const char* path = getenv("BAI_FAKE_ROCM_SMI_CONFIG");
  if (path == NULL || *path == '\0') return RSMI_STATUS_SUCCESS;
  FILE* file = fopen(path, "rb");
  if (file == NULL) return RSMI_STATUS_FILE_ERROR;
  static char text[1 << 16];
  size_t size = fread(text, 1, sizeof text - 1, file);
  fclose(file);
  text[size] = '\0';

  struct reader r = {text, 0};
  char key[64];
  int init_error = 0;
  if (!accept(&r, '{')) return RSMI_STATUS_FILE_ERROR;
  if (!accept(&r, '}')) {
    do {
      read_string(&r, key, sizeof key);
      if (!accept(&r, ':')) r.failed = 1;
      if (strcmp(key, "init_error") == 0) {
        init_error = read_bool(&r);
      } else if (strcmp(key, "devices") == 0) {
        if (!accept(&r, '[')) r.failed = 1;
        if (!accept(&r, ']')) {
          do {
            if (device_count == MAX_DEVICES) {
              r.failed = 1;
              break;
            }
            struct fake_device* d = &devices[device_count++];
            memset(d, 0, sizeof *d);
            read_device(&r, d);
          } while (!r.failed && accept(&r, ','));
          if (!accept(&r, ']')) r.failed = 1;
        }
      } else if (strcmp(key, "unsupported") == 0) {
        if (!accept(&r, '[')) r.failed = 1;
        if (!accept(&r, ']')) {
          do {
            char* slot = unsupported_count < MAX_UNSUPPORTED ? unsupported[unsupported_count++] : NULL;
            read_string(&r, slot, slot != NULL ? sizeof unsupported[0] : 0);
          } while (!r.failed && accept(&r, ','));
          if (!accept(&r, ']')) r.failed = 1;
        }
      } else {
        skip_value(&r);
      }
    } while (!r.failed && accept(&r, ','));
    if (!accept(&r, '}')) r.failed = 1;
  }
  if (r.failed) {
    fprintf(stderr, "fake_rocm_smi: cannot parse %s near \"%.20s\"\n", path, r.p);
    device_count = 0;
    return RSMI_STATUS_FILE_ERROR;
  }
  return init_error ? RSMI_STATUS_INIT_ERROR : RSMI_STATUS_SUCCESS;
}

/* ---- The API ------------------------------------------------------------------------------ */

static int supported(const char* function) {
  for (int i = 0; i < unsupported_count; ++i) {
    if (strcmp(unsupported[i], function) == 0) return 0;
  }
  return 1;
}

/* Checks init, the index and the out pointer; NOT_SUPPORTED where the scenario says so. */
static rsmi_status_t enter(const char* function, uint32_t index, const void* out) {
  rsmi_status_t status = RSMI_STATUS_SUCCESS;
  pthread_mutex_lock(&lock);
  if (init_count == 0) status = RSMI_STATUS_INIT_ERROR;
  else if (!supported(function)) status = RSMI_STATUS_NOT_SUPPORTED;
  else if (out == NULL || index >= device_count) status = RSMI_STATUS_INVALID_ARGS;
  pthread_mutex_unlock(&lock);
  return status;
}

EXPORT rsmi_status_t rsmi_init(uint64_t init_flags) {
  (void)init_flags;
  rsmi_status_t status = RSMI_STATUS_SUCCESS;
  pthread_mutex_lock(&lock);
  if (init_count == 0) status = load_config();
  if (status == RSMI_STATUS_SUCCESS) init_count++;
  pthread_mutex_unlock(&lock);
  return status;
}

EXPORT rsmi_status_t rsmi_shut_down(void) {
  rsmi_status_t status = RSMI_STATUS_SUCCESS;
  pthread_mutex_lock(&lock);
  if (init_count == 0) status = RSMI_STATUS_INIT_ERROR;
  else init_count--;
  pthread_mutex_unlock(&lock);
  return status;
}

EXPORT rsmi_status_t rsmi_num_monitor_devices(uint32_t* num_devices) {
  if (num_devices == NULL) return RSMI_STATUS_INVALID_ARGS;
  pthread_mutex_lock(&lock);
  rsmi_status_t status = init_count == 0 ? RSMI_STATUS_INIT_ERROR : RSMI_STATUS_SUCCESS;
  if (status == RSMI_STATUS_SUCCESS) *num_devices = device_count;
  pthread_mutex_unlock(&lock);
  return status;
}

EXPORT rsmi_status_t rsmi_dev_name_get(uint32_t dv_ind, char* name, size_t len) {
  rsmi_status_t status = enter("rsmi_dev_name_get", dv_ind, name);
  if (status != RSMI_STATUS_SUCCESS || len == 0) return status;
  snprintf(name, len, "%s", devices[dv_ind].name);
  return RSMI_STATUS_SUCCESS;
}

/* A getter that copies one field of a device out once enter() lets it. */
#define FIELD_GETTER(function, type, field)                          \
  EXPORT rsmi_status_t function(uint32_t dv_ind, type* out) {        \
    rsmi_status_t status = enter(#function, dv_ind, out);            \
    if (status == RSMI_STATUS_SUCCESS) *out = devices[dv_ind].field; \
    return status;                                                   \
  }

/* The same for memory, where the fake knows only VRAM. */
#define VRAM_GETTER(function, field)                                                                         \
  EXPORT rsmi_status_t function(uint32_t dv_ind, rsmi_memory_type_t mem_type, uint64_t* out) {               \
    rsmi_status_t status = enter(#function, dv_ind, out);                                                    \
    if (status == RSMI_STATUS_SUCCESS && mem_type != RSMI_MEM_TYPE_VRAM) status = RSMI_STATUS_NOT_SUPPORTED; \
    if (status == RSMI_STATUS_SUCCESS) *out = devices[dv_ind].field;                                         \
    return status;                                                                                           \
  }

FIELD_GETTER(rsmi_dev_unique_id_get, uint64_t, unique_id)
FIELD_GETTER(rsmi_dev_pci_id_get, uint64_t, bdfid)
FIELD_GETTER(rsmi_topo_numa_affinity_get, uint32_t, numa_node)
VRAM_GETTER(rsmi_dev_memory_total_get, vram_total)
VRAM_GETTER(rsmi_dev_memory_usage_get, vram_used)
FIELD_GETTER(rsmi_dev_busy_percent_get, uint32_t, busy_percent)

EXPORT rsmi_status_t rsmi_status_string(rsmi_status_t status, const char** status_string) {
  if (status_string == NULL) return RSMI_STATUS_INVALID_ARGS;
  switch (status) {
    case RSMI_STATUS_SUCCESS:
      *status_string = "RSMI_STATUS_SUCCESS: The function has been executed successfully.";
      break;
    case RSMI_STATUS_INVALID_ARGS:
      *status_string = "RSMI_STATUS_INVALID_ARGS: The provided arguments do not meet the preconditions.";
      break;
    case RSMI_STATUS_NOT_SUPPORTED:
      *status_string = "RSMI_STATUS_NOT_SUPPORTED: The requested information or action is not available.";
      break;
    case RSMI_STATUS_FILE_ERROR:
      *status_string = "RSMI_STATUS_FILE_ERROR: Problem accessing a file.";
      break;
    case RSMI_STATUS_INIT_ERROR:
      *status_string = "RSMI_STATUS_INIT_ERROR: An error occurred during initialization.";
      break;
    default:
      *status_string = "An unknown error occurred";
      break;
  }
  return RSMI_STATUS_SUCCESS;
}
