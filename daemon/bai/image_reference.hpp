// Image references as users write them and engines list them, shared by the manager
// (allow-lists, placement by image) and the agent (what its engine has).
#pragma once

#include <string>
#include <string_view>

namespace bai::protocol {

// An image reference as users write it: [registry[:port]/]path[:tag][@sha256:<64 hex>],
// path components of lowercase letters, digits and single '.', '_', '__' or '-' runs, a
// tag of 1 to 128 of [A-Za-z0-9_.-] not starting with '.' or '-'; 255 characters at most.
bool isImageReference(std::string_view reference);
// The name two spellings of one image share: the default registry and namespace
// ("docker.io/library/", "docker.io/", "localhost/") dropped, ":latest" added when neither
// tag nor digest is given. "busybox" and "docker.io/library/busybox:latest" both give
// "busybox:latest"; "localhost/bai-test/busybox:1" gives "bai-test/busybox:1".
std::string imageKey(std::string_view reference);

// Whether `reference` matches an allow-list entry: the pattern is compared with the
// reference's imageKey, after the same default prefixes are dropped from the pattern, and
// a '*' in it stands for any run of characters ("bai-test/*", "*/pytorch:*", "*").
bool imageAllowed(std::string_view reference, std::string_view pattern);

}  // namespace bai::protocol
