/* A complete accelerator plugin in plain C11: one "cdev" device, slot cdev.device.
 * It shows what the ABI asks for without any C++ runtime. */
#include <bai/accelerator.h>

#include <stdlib.h>
#include <string.h>

struct bai_accelerator {
  const bai_host_services* host;
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
  bai_accelerator* self = malloc(sizeof *self);
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

static bai_status prepare_session(bai_accelerator* self, const char* session, char** out) {
  (void)self;
  const int has_device = strstr(session, "\"cdev.device\"") != NULL;
  return reply(has_device ? "{\"env\": {\"CDEV_VISIBLE\": \"0\"}}" : "{\"env\": {\"CDEV_VISIBLE\": \"\"}}", out);
}

static bai_status release_session(bai_accelerator* self, const char* session) {
  (void)self;
  (void)session;
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
