// `--mount NAME[:/path][:ro]` as `bai session run|create` take it.
#pragma once

#include <bai/client.hpp>

#include <string>

namespace bai::cli {

// "data" -> {data, "", rw}; "data:/home/work/in:ro" -> {data, /home/work/in, ro}. Errors
// name the spec and what is wrong with it.
Result<client::MountRequest> parseMountSpec(const std::string& spec);

}  // namespace bai::cli
