#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/latency/fault_trace.h"
#include "core/latency/latency_observer.h"

namespace uffdlazy {
namespace {

FaultRecord rec(uint64_t i) {
  return LatencyObserver::make_record(1000 + i * 10, 1000 + i * 10 + 500 + i, uint32_t(100 + i % 3),
                                      0x7f0000000000ull + i * 4096, i % 2, uint32_t(i % 5), Resolution(i % 6), 1);
}

std::string temp_path(const char* name) {
  return std::string(::testing::TempDir()) + "/" + name + "." + std::to_string(getpid());
}

TEST(LatencyTrace, KeepsFirstRecordsAndCountsDropped) {
  FaultTrace t;
  ASSERT_EQ(t.init(10), 0);
  for (uint64_t i = 0; i < 25; i++) t.append(rec(i));
  EXPECT_EQ(t.count(), 10u);
  EXPECT_EQ(t.dropped(), 15u);
  EXPECT_EQ(t.records()[9].timestamp_ns, rec(9).timestamp_ns);
  t.clear();
  EXPECT_EQ(t.count(), 0u);
  EXPECT_EQ(t.dropped(), 0u);
  t.release();
}

TEST(LatencyTrace, ZeroCapacityDropsEverything) {
  FaultTrace t;
  ASSERT_EQ(t.init(0), 0);
  t.append(rec(1));
  EXPECT_EQ(t.count(), 0u);
  EXPECT_EQ(t.dropped(), 1u);
}

TEST(LatencyTrace, FileHasHeaderThenRecords) {
  FaultTrace t;
  ASSERT_EQ(t.init(4), 0);
  for (uint64_t i = 0; i < 6; i++) t.append(rec(i));
  std::string path = temp_path("latency_trace.bin");
  ASSERT_EQ(t.write_file(path.c_str(), 1234, 1000, 4096), 0);
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_EQ(bytes.size(), sizeof(TraceFileHeader) + 4 * sizeof(FaultRecord));
  TraceFileHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  EXPECT_EQ(std::string(h.magic, 8), "UFFDTRC1");
  EXPECT_EQ(h.version, 1u);
  EXPECT_EQ(h.record_size, 40u);
  EXPECT_EQ(h.pid, 1234u);
  EXPECT_EQ(h.count, 4u);
  EXPECT_EQ(h.dropped, 2u);
  EXPECT_EQ(h.capacity, 4u);
  EXPECT_EQ(h.start_ns, 1000u);
  FaultRecord r3;
  std::memcpy(&r3, bytes.data() + sizeof h + 3 * sizeof(FaultRecord), sizeof r3);
  EXPECT_EQ(r3.address, rec(3).address);
  EXPECT_EQ(r3.latency_ns, 503u);
  EXPECT_EQ(r3.resolution, Resolution::kAlreadyPresent);
  EXPECT_TRUE(r3.write());
  std::remove(path.c_str());
}

TEST(LatencyTrace, UnwritablePathIsAnError) {
  FaultTrace t;
  ASSERT_EQ(t.init(4), 0);
  EXPECT_LT(t.write_file("/nonexistent-dir/x.bin", 1, 0, 4096), 0);
}

}  // namespace
}  // namespace uffdlazy
