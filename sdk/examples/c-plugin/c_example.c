/* A complete accelerator plugin in plain C11: one "cdev" device, slot cdev.device.
 * It shows what the ABI asks for without any C++ runtime. */
#include <bai/accelerator.h>

#include <stdlib.h>
#include <string.h>

#define MAX_SESSIONS 64
#define SESSION_ID_SIZE 128

struct bai_accelerator {
  const bai_host_services* host;
  char prepared[MAX_SESSIONS][SESSION_ID_SIZE]; /* ids of the prepared sessions; "" is a free entry */
};

static bai_status reply(const char* json, char** out) {
  size_t size = strlen(json) + 1;
  *out = malloc(size);
  if (*out == NULL) return BAI_ERR_OUT_OF_MEMORY;
  memcpy(*out, json, size);
  return BAI_OK;
}

static bai_status create(const bai_host_services* host, const char* config_json, bai_accelerator** out) {
  (void)config_json;
  bai_accelerator* self = calloc(1, sizeof *self);
  if (self == NULL) return BAI_ERR_OUT_OF_MEMORY;
  self->host = host;
  host->log(host->context, BAI_LOG_INFO, "c-example: one device found");
  *out = self;
  return BAI_OK;
}

static void destroy(bai_accelerator* self) { free(self); }
static void free_string(char* text) { free(text); }

static bai_status describe(bai_accelerator* self, char** out) {
  (void)self;
  return reply("{\"key\": \"cdev\", \"extra_info\": {\"language\": \"C11\"}}", out);
}

static bai_status list_devices(bai_accelerator* self, char** out) {
  (void)self;
  return reply("{\"devices\": [{\"id\": \"0\", \"model\": \"C Device\", \"numa_node\": 0, \"health\": \"healthy\"}]}", out);
}

static bai_status slot_types(bai_accelerator* self, char** out) {
  (void)self;
  return reply("{\"slots\": [{\"name\": \"cdev.device\", \"type\": \"count\"}]}", out);
}

static bai_status alloc_map_spec(bai_accelerator* self, char** out) {
  (void)self;
  return reply("{\"maps\": [{\"slot\": \"cdev.device\", \"kind\": \"discrete\", \"strategy\": \"fill\","
               " \"devices\": [{\"id\": \"0\", \"capacity\": \"1\"}]}]}", out);
}

/* Copies the session document's "session_id" into `id`; 0 when it has none that fits. */
static int session_id_of(const char* session, char id[SESSION_ID_SIZE]) {
  const char* field = strstr(session, "\"session_id\":");
  const char* start = field != NULL ? strchr(field + strlen("\"session_id\":"), '"') : NULL;
  const char* end = start != NULL ? strchr(start + 1, '"') : NULL;
  if (end == NULL || end == start + 1 || (size_t)(end - start - 1) >= SESSION_ID_SIZE) return 0;
  memcpy(id, start + 1, (size_t)(end - start - 1));
  id[end - start - 1] = '\0';
  return 1;
}

/* The entry holding `id` ("" finds a free one); NULL when there is none. */
static char* prepared_entry(bai_accelerator* self, const char* id) {
  for (int i = 0; i < MAX_SESSIONS; ++i) {
    if (strcmp(self->prepared[i], id) == 0) return self->prepared[i];
  }
  return NULL;
}

/* Each session id is prepared once until it is released. */
static bai_status prepare_session(bai_accelerator* self, const char* session, char** out) {
  char id[SESSION_ID_SIZE];
  if (!session_id_of(session, id)) return BAI_ERR_INVALID_ARGUMENT;
  if (prepared_entry(self, id) != NULL) return BAI_ERR_INVALID_ARGUMENT;
  char* entry = prepared_entry(self, "");
  if (entry == NULL) return BAI_ERR_UNAVAILABLE;
  const int has_device = strstr(session, "\"cdev.device\"") != NULL;
  bai_status status =
      reply(has_device ? "{\"env\": {\"CDEV_VISIBLE\": \"0\"}}" : "{\"env\": {\"CDEV_VISIBLE\": \"\"}}", out);
  if (status == BAI_OK) strcpy(entry, id);
  return status;
}

/* A session that is not prepared is BAI_ERR_NOT_FOUND (an agent that restarted may ask). */
static bai_status release_session(bai_accelerator* self, const char* session) {
  char id[SESSION_ID_SIZE];
  if (!session_id_of(session, id)) return BAI_ERR_INVALID_ARGUMENT;
  char* entry = prepared_entry(self, id);
  if (entry == NULL) return BAI_ERR_NOT_FOUND;
  entry[0] = '\0';
  return BAI_OK;
}

static bai_status node_measures(bai_accelerator* self, char** out) {
  (void)self;
  return reply("{\"measures\": [{\"key\": \"temperature\", \"unit\": \"celsius\", \"value\": \"41\"}]}", out);
}

static bai_status session_measures(bai_accelerator* self, const char* session, char** out) {
  (void)session;
  return node_measures(self, out);
}

static bai_status health(bai_accelerator* self, char** out) {
  (void)self;
  return reply("{\"devices\": [{\"id\": \"0\", \"health\": \"healthy\"}]}", out);
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
