// push, pull, inspect and verify against a real S3 store (radosgw) and a real HTTP server (nginx),
// both started by the ctest fixture (scripts/remote_servers.sh). What a user relies on: the bytes
// that come back are the bytes that went up, a remote snapshot reads exactly as the local file,
// every bad source is one line and a non-zero status, and transient failures are retried.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"
#include "tests/remote/remote_servers.h"

namespace uffdlazy::test {
namespace {

ProcessResult cli(const std::vector<std::string>& args, RunOptions opt = s3_options()) {
  std::vector<std::string> argv = {cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, opt);
}

// A snapshot of tests/targets/snapshot_rules (every kind of page), recorded once.
std::string rules_snapshot() {
  static TempDir dir;
  static std::string path;
  if (path.empty()) {
    path = dir.file("rules.snap");
    ProcessResult r = record(path, {}, {target_path("snapshot_rules"), "fill"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return path;
}

std::string random_file(const TempDir& dir, const std::string& name, size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(bytes, '\0');
  for (auto& c : data) c = char(rng());
  write_file(dir.file(name), data);
  return dir.file(name);
}

// stdout of `uffdlazy inspect` without its first line (which names the file or URL).
std::string inspect_body(const std::string& where) {
  ProcessResult r = cli({"inspect", where});
  EXPECT_EQ(r.exit_code, 0) << where << ": " << r.err;
  return r.out.substr(r.out.find('\n') + 1);
}

std::string digest_printed_by_push(const std::string& out) {
  const std::string key = "index digest sha256=";
  const size_t at = out.find(key);
  return at == std::string::npos ? "" : out.substr(at + key.size(), 64);
}

// The one line a bad source gets: "uffdlazy: LOCATION: PROBLEM".
void expect_one_line(const ProcessResult& r, int status, const std::string& location, const std::string& problem) {
  EXPECT_EQ(r.exit_code, status) << r.err;
  EXPECT_EQ(count_of(r.err, "\n"), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("uffdlazy: " + location + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(problem), std::string::npos) << "wanted '" << problem << "' in: " << r.err;
}

TEST(RemoteCli, SnapshotPushedToS3InspectsVerifiesAndPullsBackIdentical) {
  TempDir dir;
  const std::string local = rules_snapshot(), url = s3_url("rules.snap");
  ProcessResult push = cli({"push", local, url});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_NE(push.out.find("verified (size and ETag)"), std::string::npos) << push.out;
  const std::string digest = digest_printed_by_push(push.out);
  ASSERT_EQ(digest.size(), 64u) << push.out;
  // The digest push printed is the one inspect shows, locally and remotely.
  EXPECT_NE(cli({"inspect", local}).out.find("digest      sha256=" + digest), std::string::npos);
  EXPECT_EQ(inspect_body(url), inspect_body(local));
  ProcessResult verify = cli({"verify", url + "#sha256=" + digest});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_NE(verify.out.find("ok (7 regions, 496 pages"), std::string::npos) << verify.out;
  ProcessResult pull = cli({"pull", url, dir.file("back.snap")});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_EQ(read_file(dir.file("back.snap")), read_file(local));
  EXPECT_FALSE(file_exists(dir.file("back.snap.part")));
}

TEST(RemoteCli, MultipartUploadIsVerifiedAndComesBackIdentical) {
  TempDir dir;
  const std::string file = random_file(dir, "big", (12u << 20) + 12345, 1), url = s3_url("big");
  ProcessResult push = cli({"push", "--part-size", "5M", file, url});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_NE(push.out.find("in 3 parts, verified (size and ETag)"), std::string::npos) << push.out;
  ProcessResult pull = cli({"pull", url, dir.file("back")});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_EQ(read_file(dir.file("back")), read_file(file));
}

TEST(RemoteCli, SnapshotOnAnHttpServerInspectsVerifiesAndPulls) {
  TempDir dir;
  const std::string local = rules_snapshot(), url = http_url_of(local, "rules.snap");
  EXPECT_EQ(inspect_body(url), inspect_body(local));
  ProcessResult verify = cli({"verify", url});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  ProcessResult pull = cli({"pull", url, dir.file("back.snap")});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_EQ(read_file(dir.file("back.snap")), read_file(local));
}

TEST(RemoteCli, EveryBadRemoteSourceIsOneLineNamingIt) {
  TempDir dir;
  const std::string local = rules_snapshot(), url = s3_url("rules.snap");
  ASSERT_EQ(cli({"push", local, url}).exit_code, 0);
  const std::string missing = s3_url("no-such.snap");
  expect_one_line(cli({"inspect", missing}), 2, missing, "HTTP 404 Not Found (NoSuchKey");
  const std::string http_missing = servers().at("UFFDLAZY_TEST_HTTP") + "/no-such.snap";
  expect_one_line(cli({"inspect", http_missing}), 2, http_missing, "HTTP 404 Not Found");
  RunOptions wrong = s3_options();
  wrong.env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret";
  expect_one_line(cli({"inspect", url}, wrong), 2, url, "HTTP 403 Forbidden (SignatureDoesNotMatch");
  RunOptions none = s3_options();
  none.unset.insert(none.unset.end(), {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"});
  none.env["HOME"] = dir.path();  // no ~/.aws either
  none.env.erase("AWS_ACCESS_KEY_ID");
  none.env.erase("AWS_SECRET_ACCESS_KEY");
  expect_one_line(cli({"inspect", url}, none), 2, url, "no S3 credentials");
  const std::string not_snapshot = s3_url("random");
  ASSERT_EQ(cli({"push", random_file(dir, "random", 100000, 2), not_snapshot}).exit_code, 0);
  expect_one_line(cli({"inspect", not_snapshot}), 2, not_snapshot, "not a uffdlazy snapshot");
  const std::string wrong_digest(64, '0');
  expect_one_line(cli({"inspect", url + "#sha256=" + wrong_digest}), 2, url, "index digest mismatch");
  ProcessResult verify = cli({"verify", "--digest", wrong_digest, url});
  EXPECT_EQ(verify.exit_code, 1) << verify.err;
  EXPECT_NE(verify.err.find("index digest mismatch"), std::string::npos) << verify.err;
  expect_one_line(cli({"inspect", "s3://bucket-only"}), 2, "s3://bucket-only", "needs a bucket and a key");
  // A snapshot is not a process image: said in one line, before anything runs. (Restore and
  // resume from a URL: remote_restore_test.cpp.)
  expect_one_line(cli({"resume", url}), 2, "resume " + url, "not a process image");
}

TEST(RemoteCli, PullContinuesWhereAnInterruptedPullOfTheSameObjectStopped) {
  TempDir dir;
  const std::string file = random_file(dir, "data", (9u << 20) + 77, 3), url = s3_url("data");
  ProcessResult push = cli({"push", file, url});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  const std::string etag = push.out.substr(push.out.find("ETag ") + 5, 34);
  const std::string content = read_file(file);
  // What an interrupted pull leaves: the first part of the object and the object's identity.
  const std::string target = dir.file("back");
  write_file(target + ".part", content.substr(0, 3u << 20));
  write_file(target + ".part.etag", etag + " " + std::to_string(content.size()) + " " + url + "\n");
  ProcessResult pull = cli({"pull", url, target});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_NE(pull.err.find("continuing at 3145728 of"), std::string::npos) << pull.err;
  EXPECT_EQ(read_file(target), content);
  // Bytes of another object (another ETag) are never continued: the pull starts over.
  write_file(target + ".part", std::string(5u << 20, 'x'));
  write_file(target + ".part.etag", "\"another\" " + std::to_string(content.size()) + " " + url + "\n");
  pull = cli({"pull", url, dir.file("back")});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_EQ(pull.err.find("continuing"), std::string::npos) << pull.err;
  EXPECT_EQ(read_file(target), content);
}

TEST(RemoteCli, ConnectionsResetMidBodyAreRetried) {
  TempDir dir;
  const std::string file = random_file(dir, "data", 3u << 20, 4);
  const std::string url = http_url_of(file, "data");
  const int port = std::stoi(url.substr(url.rfind(':') + 1));
  // Three connections reset after 64 KiB of their answer, then a good one.
  BreakingProxy proxy(port, 3, 64 * 1024);
  const std::string via = "http://127.0.0.1:" + std::to_string(proxy.port()) + url.substr(url.find('/', 7));
  ProcessResult pull = cli({"pull", via, dir.file("back")});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_EQ(read_file(dir.file("back")), read_file(file));
  EXPECT_GE(proxy.connections(), 4);
  // A server that never answers whole: retried until UFFDLAZY_FETCH_TIMEOUT, then one line.
  BreakingProxy broken(port, 1 << 30, 1000);
  const std::string via_broken = "http://127.0.0.1:" + std::to_string(broken.port()) + url.substr(url.find('/', 7));
  RunOptions quick = s3_options();
  quick.env["UFFDLAZY_FETCH_TIMEOUT"] = "2";
  ProcessResult failed = cli({"pull", via_broken, dir.file("never")}, quick);
  EXPECT_EQ(failed.exit_code, 1) << failed.err;
  EXPECT_NE(failed.err.find("attempts in"), std::string::npos) << failed.err;
  EXPECT_GE(broken.connections(), 2);
  EXPECT_FALSE(file_exists(dir.file("never")));
}

TEST(RemoteCli, ObjectReplacedDuringAPullIsDetectedAndNeverMixed) {
  TempDir dir;
  const std::string a = random_file(dir, "a", (9u << 20) + 5, 5), b = random_file(dir, "b", (9u << 20) + 5, 6);
  const std::string url = s3_url("replaced");
  ASSERT_EQ(cli({"push", a, url}).exit_code, 0);
  // The pull's first connection is reset 1 MiB into its first 8 MiB; before its retry reaches the
  // store, the object is replaced by another of the same size.
  const std::string endpoint = servers().at("AWS_ENDPOINT_URL");
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  BreakingProxy proxy(port, 1, 1u << 20, [&](int n) {
    if (n == 1) {
      EXPECT_EQ(cli({"push", b, url}).exit_code, 0);
    }
  });
  RunOptions via = s3_options();
  via.env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:" + std::to_string(proxy.port());
  ProcessResult pull = cli({"pull", url, dir.file("back")}, via);
  EXPECT_EQ(pull.exit_code, 1) << pull.err;
  EXPECT_NE(pull.err.find("HTTP 412 Precondition Failed (PreconditionFailed: the object was replaced (its ETag changed))"),
            std::string::npos) << pull.err;
  EXPECT_FALSE(file_exists(dir.file("back")));
  // Pulled again: the new object whole, nothing of the old one continued.
  pull = cli({"pull", url, dir.file("back")});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_EQ(pull.err.find("continuing"), std::string::npos) << pull.err;
  EXPECT_EQ(read_file(dir.file("back")), read_file(b));
}

TEST(RemoteCli, StoreThatGoesAwayIsRetriedAndThenReportedAndComesBack) {
  TempDir dir;
  const std::string local = rules_snapshot(), url = s3_url("rules.snap");
  ASSERT_EQ(cli({"push", local, url}).exit_code, 0);
  stop_gateway();
  RunOptions quick = s3_options();
  quick.env["UFFDLAZY_FETCH_TIMEOUT"] = "2";
  ProcessResult down = cli({"inspect", url}, quick);
  start_gateway();
  expect_one_line(down, 2, url, "attempts in");
  EXPECT_EQ(inspect_body(url), inspect_body(local));
}

TEST(RemoteCli, RecordWritesStraightToS3KeepingTheLocalCopyOnlyWhenAsked) {
  TempDir dir;
  const std::string url = s3_url("recorded.snap");
  auto record_in_dir = [&](const std::string& extra) {
    return run_process({"/bin/sh", "-c", "cd '" + dir.path() + "' && exec '" + cli_path() + "' record -o " + url +
                                             " " + extra + " -- '" + target_path("snapshot_rules") + "' fill"},
                       s3_options());
  };
  ProcessResult r = record_in_dir("");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("uffdlazy record: " + url + ": uploaded"), std::string::npos) << r.err;
  EXPECT_TRUE(dir.list().empty());  // nothing left behind
  ProcessResult verify = cli({"verify", url});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_NE(verify.out.find("ok (7 regions, 496 pages"), std::string::npos) << verify.out;

  r = record_in_dir("--keep-local");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(dir.list(), std::vector<std::string>{"recorded.snap"});
  const std::string key = "index digest sha256=";
  const size_t at = r.err.find(key);
  ASSERT_NE(at, std::string::npos) << r.err;
  // The local copy is the uploaded snapshot: the same digest, and the object pulls back identical.
  EXPECT_NE(cli({"inspect", dir.file("recorded.snap")}).out.find("sha256=" + r.err.substr(at + key.size(), 64)),
            std::string::npos);
  ASSERT_EQ(cli({"pull", url, dir.file("back.snap")}).exit_code, 0);
  EXPECT_EQ(read_file(dir.file("back.snap")), read_file(dir.file("recorded.snap")));

  // A location that cannot work is refused before the program runs.
  RunOptions none = s3_options();
  none.env.erase("AWS_ACCESS_KEY_ID");
  none.env.erase("AWS_SECRET_ACCESS_KEY");
  none.unset.insert(none.unset.end(), {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"});
  none.env["HOME"] = dir.path();
  ProcessResult refused = run_process({cli_path(), "record", "-o", url, "--", target_path("snapshot_rules"), "fill"}, none);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("no S3 credentials"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out.find("fill regions"), std::string::npos) << refused.out;
}

}  // namespace
}  // namespace uffdlazy::test
