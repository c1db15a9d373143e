// The pure helpers of accelerators/common/nvml.cpp.
#include "nvml.hpp"

#include <temp_dir.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace bai::nvml {
namespace {

TEST(NvmlHelpers, SysfsBusIdFromNvmlBusId) {
  EXPECT_EQ(sysfsBusId("00000000:18:00.0"), "0000:18:00.0");
  EXPECT_EQ(sysfsBusId("00000000:DB:00.0"), "0000:db:00.0");
  EXPECT_EQ(sysfsBusId("0000:3B:00.0"), "0000:3b:00.0");
  EXPECT_EQ(sysfsBusId("00010000:01:00.0"), "00010000:01:00.0");  // a domain that does not fit 4 digits stays
}

TEST(NvmlHelpers, MigProfileFromName) {
  EXPECT_EQ(migProfileOf("NVIDIA H100 80GB HBM3 MIG 1g.10gb"), "1g.10gb");
  EXPECT_EQ(migProfileOf("NVIDIA A100-SXM4-40GB MIG 1g.5gb+me"), "1g.5gb+me");
  EXPECT_EQ(migProfileOf("NVIDIA H100 MIG 3G.40GB"), "3g.40gb");
  EXPECT_EQ(migProfileOf("NVIDIA H100 80GB HBM3"), "");
  EXPECT_EQ(migProfileOf("NVIDIA H100 MIG bad profile"), "");
}

TEST(NvmlHelpers, NumaNodeFromSysfs) {
  bai::test::TempDir root;
  std::filesystem::create_directories(root.path() / "bus/pci/devices/0000:18:00.0");
  std::ofstream(root.path() / "bus/pci/devices/0000:18:00.0/numa_node") << "1\n";
  std::filesystem::create_directories(root.path() / "bus/pci/devices/0000:19:00.0");
  std::ofstream(root.path() / "bus/pci/devices/0000:19:00.0/numa_node") << "-1\n";
  EXPECT_EQ(numaNodeOf(root.path().string(), "0000:18:00.0"), 1);
  EXPECT_EQ(numaNodeOf(root.path().string(), "0000:19:00.0"), -1);
  EXPECT_EQ(numaNodeOf(root.path().string(), "0000:20:00.0"), -1);
  EXPECT_EQ(numaNodeOf(root.path().string(), ""), -1);
}

TEST(NvmlHelpers, OpenReportsAMissingLibrary) {
  auto library = Library::open("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.error().code, ErrorCode::NotFound);
  EXPECT_NE(library.error().message.find("cannot load NVML"), std::string::npos);
}

}  // namespace
}  // namespace bai::nvml
