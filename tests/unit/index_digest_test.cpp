// The snapshot's index digest: core's SHA-256 agrees with OpenSSL's, the writer records the
// digest of what it wrote, and any change to the metadata changes it.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/index_digest.h"
#include "core/snapshot/sha256.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

namespace {

std::string openssl_sha256(const void* p, size_t n) {
  uint8_t out[32];
  unsigned len = 0;
  EVP_Digest(p, n, out, &len, EVP_sha256(), nullptr);
  char hex[65];
  sha256_hex(out, hex);
  return hex;
}

std::string ours(const void* p, size_t n, size_t step) {
  Sha256 s;
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; i += step) s.update(b + i, n - i < step ? n - i : step);
  uint8_t out[32];
  s.finish(out);
  char hex[65];
  sha256_hex(out, hex);
  return hex;
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(ours("", 0, 1), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ours("abc", 3, 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char* two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(ours(two_blocks, strlen(two_blocks), 7),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, AgreesWithOpenSslAtEveryLengthAndSplit) {
  std::mt19937_64 rng(16);
  std::vector<uint8_t> data(3000);
  for (auto& b : data) b = uint8_t(rng());
  // Every length around the block and padding boundaries, fed in pieces of several sizes.
  for (size_t n = 0; n < 300; n++) {
    for (size_t step : {size_t(1), size_t(13), size_t(64), size_t(1000)}) {
      ASSERT_EQ(ours(data.data(), n, step), openssl_sha256(data.data(), n)) << n << " bytes, step " << step;
    }
  }
  EXPECT_EQ(ours(data.data(), data.size(), 999), openssl_sha256(data.data(), data.size()));
}

struct Pages final : PageProvider {
  std::vector<uint8_t> bytes;
  const void* page(uint64_t i) override { return bytes.data() + i * 4096; }
};

std::vector<uint8_t> write_snapshot(const std::string& path) {
  SnapshotWriter w;
  WriterOptions o;
  o.page_size = 4096;
  o.sync = false;
  EXPECT_TRUE(w.open(path.c_str(), o).ok());
  ModuleIdentity exe;
  exe.set_path("/bin/app", 8);
  EXPECT_TRUE(w.begin(exe, 0).ok());
  Pages p;
  p.bytes.resize(8 * 4096);
  for (size_t i = 0; i < p.bytes.size(); i++) p.bytes[i] = uint8_t(i * 7 + i / 4096);
  RegionInfo info;
  info.start = 0x10000;
  info.length = 8 * 4096;
  info.prot = PROT_READ | PROT_WRITE;
  info.map_flags = MAP_PRIVATE | MAP_ANONYMOUS;
  EXPECT_TRUE(w.add_region(info, p).ok());
  EXPECT_TRUE(w.commit().ok());
  FILE* f = fopen(path.c_str(), "rb");
  std::vector<uint8_t> file;
  uint8_t buf[4096];
  size_t n;
  while (f && (n = fread(buf, 1, sizeof buf, f)) > 0) file.insert(file.end(), buf, buf + n);
  if (f) fclose(f);
  return file;
}

TEST(IndexDigest, WriterRecordsTheDigestOfWhatItWrote) {
  const std::string path = "/tmp/uffdlazy-digest-" + std::to_string(getpid()) + ".snap";
  std::vector<uint8_t> file = write_snapshot(path);
  ASSERT_GT(file.size(), sizeof(FileHeader));
  SnapshotReader r;
  ASSERT_TRUE(r.open(path.c_str(), false).ok());
  EXPECT_EQ(r.header().version_major, kVersionMajor);  // 2.0 keeps 1.1's digest at offset 160
  ASSERT_TRUE(has_index_digest(r.recorded_index_digest()));
  uint8_t now[32];
  ASSERT_TRUE(r.compute_index_digest(now));
  EXPECT_EQ(0, memcmp(now, r.recorded_index_digest(), 32));
  r.close();
  unlink(path.c_str());

  // Any byte of the metadata (here: a page checksum in the index) changes the digest; a byte of
  // page data does not (each page has its own checksum in the index).
  uint8_t base[32], changed[32];
  ASSERT_TRUE(compute_index_digest(file.data(), file.size(), base));
  FileHeader h;
  memcpy(&h, file.data(), sizeof h);
  std::vector<uint8_t> index_changed = file;
  index_changed[h.section_table_offset - 1] ^= 1;  // the last byte of the last table before it
  ASSERT_TRUE(compute_index_digest(index_changed.data(), index_changed.size(), changed));
  EXPECT_NE(0, memcmp(base, changed, 32));
  std::vector<uint8_t> data_changed = file;
  data_changed[4096 + 10] ^= 1;
  ASSERT_TRUE(compute_index_digest(data_changed.data(), data_changed.size(), changed));
  EXPECT_EQ(0, memcmp(base, changed, 32));
  // The header's own checksum and digest fields are read as zeros.
  std::vector<uint8_t> fields_changed = file;
  fields_changed[offsetof(FileHeader, header_checksum)] ^= 1;
  fields_changed[offsetof(FileHeader, index_digest)] ^= 1;
  ASSERT_TRUE(compute_index_digest(fields_changed.data(), fields_changed.size(), changed));
  EXPECT_EQ(0, memcmp(base, changed, 32));
  std::vector<uint8_t> exe_changed = file;
  exe_changed[sizeof(FileHeader) + 1] ^= 1;  // the executable path
  ASSERT_TRUE(compute_index_digest(exe_changed.data(), exe_changed.size(), changed));
  EXPECT_NE(0, memcmp(base, changed, 32));
}

}  // namespace
