/* A complete accelerator plugin in plain C11: "cdev" devices (one, or as many as the
 * config's `devices` says), slot cdev.device. It shows what the ABI asks for without any
 * C++ runtime, and writes and reads every payload with <bai/json.h>. */
#include <bai/accelerator.h>
#include <bai/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 16

/* The ids of sessions prepared and not yet released, so that a second prepare or an
 * unknown release is refused as the ABI asks. */
typedef struct prepared_session {
  char* id;
  struct prepared_session* next;
} prepared_session;

struct bai_accelerator {
  const bai_host_services* host;
  int64_t device_count;
  prepared_session* sessions;
};

static void log_error(const bai_accelerator* self, const char* what, const char* why) {
  char line[256];
  snprintf(line, sizeof line, "c-example: %s: %s", what, why);
  self->host->log(self->host->context, BAI_LOG_ERROR, line);
}

/* Hands a finished document to the host, which frees it with free_string. */
static bai_status finish(const bai_accelerator* self, bai_json_writer* w, const char* call, char** out) {
  const bai_json_status status = bai_json_writer_finish(w, out);
  if (status == BAI_JSON_OK) return BAI_OK;
  log_error(self, call, bai_json_status_name(status));
  return status == BAI_JSON_ERR_NO_MEMORY ? BAI_ERR_OUT_OF_MEMORY : BAI_ERR_INTERNAL;
}

/* Starts {"<key>": [, the opening of every list the ABI asks for. */
static void begin_list(bai_json_writer* w, const char* key) {
  bai_json_writer_init_growable(w);
  bai_json_begin_object(w);
  bai_json_key(w, key);
  bai_json_begin_array(w);
}

/* Closes what begin_list opened and hands the document over. */
static bai_status end_list(const bai_accelerator* self, bai_json_writer* w, const char* call, char** out) {
  bai_json_end_array(w);
  bai_json_end_object(w);
  return finish(self, w, call, out);
}

/* Starts a device's object with its "id"; the ids are "0", "1", ... */
static void begin_device(bai_json_writer* w, int64_t device) {
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)device);
  bai_json_begin_object(w);
  bai_json_key(w, "id");
  bai_json_write_string(w, id);
}

static void write_string_member(bai_json_writer* w, const char* key, const char* value) {
  bai_json_key(w, key);
  bai_json_write_string(w, value);
}

/* The config is {} or {"devices": N}, 1 <= N <= MAX_DEVICES; other keys are ignored. */
static bai_status read_config(const bai_host_services* host, const char* config_json, int64_t* device_count) {
  bai_json_value config, devices;
  *device_count = 1;
  if (bai_json_parse(config_json, strlen(config_json), &config) != BAI_JSON_OK) {
    host->log(host->context, BAI_LOG_ERROR, "c-example: the config is not a JSON object");
    return BAI_ERR_INVALID_ARGUMENT;
  }
  if (bai_json_get(&config, "devices", &devices) == BAI_JSON_ERR_NOT_FOUND) return BAI_OK;
  if (bai_json_read_int(&devices, device_count) != BAI_JSON_OK || *device_count < 1 || *device_count > MAX_DEVICES) {
    host->log(host->context, BAI_LOG_ERROR, "c-example: devices must be an integer from 1 to 16");
    return BAI_ERR_INVALID_ARGUMENT;
  }
  return BAI_OK;
}

static bai_status create(const bai_host_services* host, const char* config_json, bai_accelerator** out) {
  int64_t device_count = 0;
  const bai_status configured = read_config(host, config_json, &device_count);
  if (configured != BAI_OK) return configured;
  bai_accelerator* self = calloc(1, sizeof *self);
  if (self == NULL) return BAI_ERR_OUT_OF_MEMORY;
  self->host = host;
  self->device_count = device_count;
  host->log(host->context, BAI_LOG_INFO, "c-example: devices found");
  *out = self;
  return BAI_OK;
}

static void destroy(bai_accelerator* self) {
  while (self->sessions != NULL) {
    prepared_session* next = self->sessions->next;
    free(self->sessions->id);
    free(self->sessions);
    self->sessions = next;
  }
  free(self);
}

static void free_string(char* text) { free(text); }

static bai_status describe(bai_accelerator* self, char** out) {
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_begin_object(&w);
  write_string_member(&w, "key", "cdev");
  bai_json_key(&w, "extra_info");
  bai_json_begin_object(&w);
  write_string_member(&w, "language", "C11");
  bai_json_end_object(&w);
  bai_json_end_object(&w);
  return finish(self, &w, "describe", out);
}

static bai_status list_devices(bai_accelerator* self, char** out) {
  bai_json_writer w;
  begin_list(&w, "devices");
  for (int64_t device = 0; device < self->device_count; ++device) {
    begin_device(&w, device);
    write_string_member(&w, "model", "C Device");
    bai_json_key(&w, "memory");
    bai_json_write_decimal(&w, "17179869184"); /* quantities are decimal strings */
    bai_json_key(&w, "numa_node");
    bai_json_write_int(&w, 0);
    write_string_member(&w, "health", "healthy");
    bai_json_end_object(&w);
  }
  return end_list(self, &w, "list_devices", out);
}

static bai_status slot_types(bai_accelerator* self, char** out) {
  bai_json_writer w;
  begin_list(&w, "slots");
  bai_json_begin_object(&w);
  write_string_member(&w, "name", "cdev.device");
  write_string_member(&w, "type", "count");
  bai_json_end_object(&w);
  return end_list(self, &w, "slot_types", out);
}

static bai_status alloc_map_spec(bai_accelerator* self, char** out) {
  bai_json_writer w;
  begin_list(&w, "maps");
  bai_json_begin_object(&w);
  write_string_member(&w, "slot", "cdev.device");
  write_string_member(&w, "kind", "discrete");
  write_string_member(&w, "strategy", "fill");
  bai_json_key(&w, "devices");
  bai_json_begin_array(&w);
  for (int64_t device = 0; device < self->device_count; ++device) {
    begin_device(&w, device);
    bai_json_key(&w, "capacity");
    bai_json_write_decimal(&w, "1");
    bai_json_end_object(&w);
  }
  bai_json_end_array(&w);
  bai_json_end_object(&w);
  return end_list(self, &w, "alloc_map_spec", out);
}

/* Reads {"session_id", "allocation"}: `*id` becomes a malloc-ed copy of the id, and
 * `*allocation` a view of the allocation object inside `session_json`. */
static bai_status read_session(const bai_accelerator* self, const char* session_json, bai_json_value* root,
                               char** id, bai_json_value* allocation) {
  bai_json_value session_id;
  size_t needed = 0;
  if (bai_json_parse(session_json, strlen(session_json), root) != BAI_JSON_OK ||
      bai_json_get(root, "session_id", &session_id) != BAI_JSON_OK ||
      bai_json_get(root, "allocation", allocation) != BAI_JSON_OK || allocation->type != BAI_JSON_OBJECT ||
      bai_json_read_string(&session_id, NULL, 0, &needed) == BAI_JSON_ERR_TYPE || needed == 0) {
    log_error(self, "session", "expected {\"session_id\": \"...\", \"allocation\": {...}}");
    return BAI_ERR_INVALID_ARGUMENT;
  }
  *id = malloc(needed);
  if (*id == NULL) return BAI_ERR_OUT_OF_MEMORY;
  if (bai_json_read_string(&session_id, *id, needed, NULL) != BAI_JSON_OK) {
    free(*id);
    log_error(self, "session", "the session id holds a NUL character");
    return BAI_ERR_INVALID_ARGUMENT;
  }
  return BAI_OK;
}

static prepared_session** find_session(bai_accelerator* self, const char* id) {
  prepared_session** link = &self->sessions;
  while (*link != NULL && strcmp((*link)->id, id) != 0) link = &(*link)->next;
  return link;
}

/* {"env": {"CDEV_VISIBLE": "0,2"}}: the ids of this plugin's devices the session got,
 * an empty value when it got none. */
static bai_status write_session_env(const bai_accelerator* self, const bai_json_value* allocation, char** out) {
  char visible[MAX_DEVICES * 4] = "";
  bai_json_value devices, id, amount;
  bai_json_iter it;
  if (bai_json_get(allocation, "cdev.device", &devices) == BAI_JSON_OK &&
      bai_json_iterate(&devices, &it) == BAI_JSON_OK) {
    while (bai_json_next(&it, &id, &amount)) {
      char device[4];
      const size_t used = strlen(visible);
      if (bai_json_read_string(&id, device, sizeof device, NULL) != BAI_JSON_OK ||
          used + strlen(device) + 2 > sizeof visible) {
        log_error(self, "prepare_session", "the allocation names a device this plugin does not have");
        return BAI_ERR_INVALID_ARGUMENT;
      }
      snprintf(visible + used, sizeof visible - used, "%s%s", used > 0 ? "," : "", device);
    }
  }
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_begin_object(&w);
  bai_json_key(&w, "env");
  bai_json_begin_object(&w);
  write_string_member(&w, "CDEV_VISIBLE", visible);
  bai_json_end_object(&w);
  bai_json_end_object(&w);
  return finish(self, &w, "prepare_session", out);
}

static bai_status prepare_session(bai_accelerator* self, const char* session_json, char** out) {
  bai_json_value root, allocation;
  char* id = NULL;
  const bai_status read = read_session(self, session_json, &root, &id, &allocation);
  if (read != BAI_OK) return read;
  prepared_session* session = NULL;
  bai_status status = BAI_ERR_INVALID_ARGUMENT;
  if (*find_session(self, id) != NULL) log_error(self, "prepare_session", "this session is already prepared");
  else if ((session = malloc(sizeof *session)) == NULL) status = BAI_ERR_OUT_OF_MEMORY;
  else status = write_session_env(self, &allocation, out);
  if (status != BAI_OK) {
    free(session);
    free(id);
    return status;
  }
  session->id = id;
  session->next = self->sessions;
  self->sessions = session;
  return BAI_OK;
}

static bai_status release_session(bai_accelerator* self, const char* session_json) {
  bai_json_value root, allocation;
  char* id = NULL;
  const bai_status read = read_session(self, session_json, &root, &id, &allocation);
  if (read != BAI_OK) return read;
  prepared_session** link = find_session(self, id);
  free(id);
  if (*link == NULL) return BAI_ERR_NOT_FOUND;
  prepared_session* released = *link;
  *link = released->next;
  free(released->id);
  free(released);
  return BAI_OK;
}

static bai_status node_measures(bai_accelerator* self, char** out) {
  bai_json_writer w;
  begin_list(&w, "measures");
  bai_json_begin_object(&w);
  write_string_member(&w, "key", "temperature");
  write_string_member(&w, "unit", "celsius");
  bai_json_key(&w, "value");
  bai_json_write_decimal_scaled(&w, 415, 1); /* 41.5, exactly: no double on the way */
  bai_json_end_object(&w);
  return end_list(self, &w, "node_measures", out);
}

static bai_status session_measures(bai_accelerator* self, const char* session_json, char** out) {
  (void)session_json;
  return node_measures(self, out);
}

static bai_status health(bai_accelerator* self, char** out) {
  bai_json_writer w;
  begin_list(&w, "devices");
  for (int64_t device = 0; device < self->device_count; ++device) {
    begin_device(&w, device);
    write_string_member(&w, "health", "healthy");
    bai_json_end_object(&w);
  }
  return end_list(self, &w, "health", out);
}

static const bai_accelerator_vtable table = {
    BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_accelerator_vtable), 0,
    create, destroy, free_string, describe, list_devices, slot_types, alloc_map_spec,
    prepare_session, release_session, node_measures, session_measures, health,
};

BAI_PLUGIN_EXPORT const bai_plugin_info bai_accelerator_info = {
    BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, "c-example", "bai", "0.1.0", "cdev",
    "a plain-C example plugin"};

BAI_PLUGIN_EXPORT const bai_accelerator_vtable* bai_accelerator_entry(void) { return &table; }
