/* Pins the layout of the plugin ABI v1 structs on LP64 targets. Included from a C11 and
 * a C++20 translation unit: a change to these numbers breaks every shipped plugin. */
#ifndef BAI_TEST_ACCELERATOR_LAYOUT_H
#define BAI_TEST_ACCELERATOR_LAYOUT_H

#include <bai/accelerator.h>

#ifdef __cplusplus
#define BAI_STATIC_ASSERT static_assert
#else
#define BAI_STATIC_ASSERT _Static_assert
#endif

BAI_STATIC_ASSERT(sizeof(bai_status) == 4, "bai_status is int32_t");
BAI_STATIC_ASSERT(sizeof(bai_plugin_info) == 328, "bai_plugin_info size");
BAI_STATIC_ASSERT(offsetof(bai_plugin_info, abi_major) == 0, "info.abi_major");
BAI_STATIC_ASSERT(offsetof(bai_plugin_info, abi_minor) == 4, "info.abi_minor");
BAI_STATIC_ASSERT(offsetof(bai_plugin_info, name) == 8, "info.name");
BAI_STATIC_ASSERT(offsetof(bai_plugin_info, vendor) == 72, "info.vendor");
BAI_STATIC_ASSERT(offsetof(bai_plugin_info, version) == 136, "info.version");
BAI_STATIC_ASSERT(offsetof(bai_plugin_info, key) == 168, "info.key");
BAI_STATIC_ASSERT(offsetof(bai_plugin_info, description) == 200, "info.description");

#if UINTPTR_MAX == 0xffffffffffffffffu
BAI_STATIC_ASSERT(sizeof(bai_host_services) == 40, "bai_host_services size");
BAI_STATIC_ASSERT(offsetof(bai_host_services, struct_size) == 8, "host.struct_size");
BAI_STATIC_ASSERT(offsetof(bai_host_services, context) == 16, "host.context");
BAI_STATIC_ASSERT(offsetof(bai_host_services, log) == 24, "host.log");
BAI_STATIC_ASSERT(offsetof(bai_host_services, config_get) == 32, "host.config_get");

BAI_STATIC_ASSERT(sizeof(bai_accelerator_vtable) == 112, "vtable size");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, struct_size) == 8, "vtable.struct_size");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, create) == 16, "vtable.create");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, destroy) == 24, "vtable.destroy");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, free_string) == 32, "vtable.free_string");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, describe) == 40, "vtable.describe");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, list_devices) == 48, "vtable.list_devices");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, slot_types) == 56, "vtable.slot_types");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, alloc_map_spec) == 64, "vtable.alloc_map_spec");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, prepare_session) == 72, "vtable.prepare_session");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, release_session) == 80, "vtable.release_session");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, node_measures) == 88, "vtable.node_measures");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, session_measures) == 96, "vtable.session_measures");
BAI_STATIC_ASSERT(offsetof(bai_accelerator_vtable, health) == 104, "vtable.health");
#endif

#endif
