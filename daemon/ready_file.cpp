#include "ready_file.hpp"

#include "runtime/atomic_file.hpp"

#include <string>

namespace bai {

Result<void> writeReadyFile(const std::filesystem::path& file, std::string_view address) {
  return core::writeFileAtomically(file, std::string(address) + "\n");
}

}  // namespace bai
