// `uffdlazy restore URL` and UFFDLAZY_SNAPSHOT=URL against the real S3 store (radosgw) and nginx
// the ctest fixture starts: the same programs and checks as the local restore tests
// (tests/e2e/snapshot_restore_test.cpp) give byte-identical results from S3 and from HTTP; every
// bad source is one line and status 2 before the program runs; a store that goes away while the
// program runs is retried, then the program is stopped (never zeros where data was owed); an
// object replaced mid-restore stops it; the host cache fetches each block once.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/resume_test_util.h"
#include "tests/e2e/snapshot_test_util.h"
#include "tests/remote/remote_servers.h"

namespace uffdlazy::test {
namespace {

const std::vector<std::string> kOnDemand = {"--prefetch", "none", "--readahead", "1"};

std::string rules() { return target_path("snapshot_rules"); }

ProcessResult cli(const std::vector<std::string>& args, RunOptions opt = s3_options()) {
  std::vector<std::string> argv = {cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, opt);
}

// A snapshot of snapshot_rules (every kind of page), recorded once, pushed to S3 and copied to
// the HTTP server's root once.
struct Shared {
  TempDir dir;
  std::string file, s3, http;
  long data_pages = -1;
};
Shared& shared() {
  static Shared s;
  if (s.file.empty()) {
    s.file = s.dir.file("rules.snap");
    ProcessResult r = record(s.file, {}, {rules(), "fill"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    s.data_pages = record_line(r.err, s.file).data;
    s.s3 = s3_url("rules.snap");
    ProcessResult push = cli({"push", s.file, s.s3});
    EXPECT_EQ(push.exit_code, 0) << push.err;
    s.http = http_url_of(s.file, "remote-restore-rules.snap");
  }
  return s;
}

// Restores through the servers, with a host cache of the test's own.
RunOptions restore_options(const TempDir& cache) {
  RunOptions o = s3_options();
  o.env["UFFDLAZY_CACHE_DIR"] = cache.file("cache");
  return o;
}

// "uffdlazy: remote URL: blocks fetched=F, from the host cache=C, requests=R, bytes fetched=B"
struct RemoteLine {
  bool found = false;
  long fetched = -1, cached = -1;
};
RemoteLine remote_line(const std::string& err) {
  std::smatch m;
  RemoteLine l;
  if (std::regex_search(err, m, std::regex("uffdlazy: remote [^:]+:[^:]*: blocks fetched=([0-9]+), from the host cache=([0-9]+)"))) {
    l.found = true;
    l.fetched = std::stol(m[1]);
    l.cached = std::stol(m[2]);
  }
  return l;
}

// The one line a bad source gets: "uffdlazy: LOCATION: PROBLEM", status 2, the program never ran.
void expect_refused(const ProcessResult& r, const std::string& location, const std::string& problem) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_of(r.err, "\n"), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("uffdlazy: " + location + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(problem), std::string::npos) << "wanted '" << problem << "' in: " << r.err;
  EXPECT_EQ(r.out, "") << r.out;
}

class RemoteRestoreScenario : public ::testing::TestWithParam<const char*> {};

TEST_P(RemoteRestoreScenario, SameResultAsTheLocalFileFromS3AndHttp) {
  Shared& s = shared();
  ASSERT_FALSE(s.http.empty());
  const std::string scenario = GetParam();
  const std::vector<std::string> program = {rules(), "check", scenario};
  ProcessResult local = restore(s.file, kOnDemand, program);
  ASSERT_EQ(local.exit_code, 0) << local.out << local.err;
  for (const std::string& url : {s.s3, s.http}) {
    // On demand (every fault parked until its block lands), and with readahead and the fetcher's
    // prefetch behind the faults (the defaults).
    for (const std::vector<std::string>& options : {kOnDemand, std::vector<std::string>{"--stats"}}) {
      TempDir cache;
      ProcessResult res = restore(url, options, program, restore_options(cache));
      EXPECT_EQ(res.exit_code, 0) << url << "\n" << res.out << res.err;
      EXPECT_EQ(res.signal, 0) << res.err;
      EXPECT_EQ(res.out, local.out) << url << "\n" << res.err;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RemoteRestore, RemoteRestoreScenario,
                         ::testing::Values("all", "dontneed", "munmap_remap", "mremap", "fork", "threads", "twice",
                                           "claim_lock"));

TEST(RemoteRestore, ForkedChildrenSeeTheRecordedMemory) {
  Shared& s = shared();
  for (const char* how : {"clone", "vfork", "posix_spawn"}) {
    TempDir cache;
    ProcessResult res = restore(s.s3, {}, {rules(), "check", "fork_via", how}, restore_options(cache));
    EXPECT_EQ(res.exit_code, 0) << how << "\n" << res.out << res.err;
    EXPECT_NE(res.out.find(std::string(how) + ": child ok\n"), std::string::npos) << res.out << res.err;
    EXPECT_NE(res.out.find("mismatches=0 failures=0"), std::string::npos) << res.out << res.err;
  }
}

TEST(RemoteRestore, EnvironmentRouteUnderPlainPreloadRestoresLikeTheCommand) {
  Shared& s = shared();
  ProcessResult local = restore(s.file, kOnDemand, {rules(), "check", "all"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  TempDir cache;
  RunOptions opt = restore_options(cache);
  opt.with_shim = true;
  opt.env["UFFDLAZY_SNAPSHOT"] = s.s3;
  // No UFFDLAZY_FETCHER: the shim finds uffdlazy-fetch itself (the build tree's bin/).
  ProcessResult res = run_process({rules(), "check", "all"}, opt);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, local.out) << res.err;
  // The fetcher it started is nothing the program can reap (no exit signal, a clone child).
  ProcessResult children = run_process({rules(), "check", "children"}, opt);
  EXPECT_EQ(children.exit_code, 0) << children.out << children.err;
  EXPECT_NE(children.out.find("children: waitpid=-1 ECHILD\n"), std::string::npos) << children.out << children.err;
}

TEST(RemoteRestore, BadSourcesAreOneLineAndStatusTwoBeforeTheProgramRuns) {
  Shared& s = shared();
  TempDir dir;
  RunOptions opt = restore_options(dir);
  const std::vector<std::string> program = {rules(), "check", "all"};
  expect_refused(restore("s3://bucket-only", {}, program, opt), "s3://bucket-only", "s3://BUCKET/KEY");
  const std::string missing = s3_url("missing.snap");
  expect_refused(restore(missing, {}, program, opt), missing, "404");
  expect_refused(restore(s.http + "-missing", {}, program, opt), s.http + "-missing", "404");
  RunOptions wrong = opt;
  wrong.env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret";
  expect_refused(restore(s.s3, {}, program, wrong), s.s3, "403");
  write_file(dir.file("text"), std::string(100000, 't'));
  const std::string text = s3_url("text");
  ASSERT_EQ(cli({"push", dir.file("text"), text}).exit_code, 0);
  expect_refused(restore(text, {}, program, opt), text, "not a uffdlazy snapshot");
  const std::string pinned = s.s3 + "#sha256=" + std::string(64, '0');
  expect_refused(restore(pinned, {}, program, opt), pinned, "index digest mismatch");
}

TEST(RemoteRestore, WorkingSetFromAUrlIsReplayedFirst) {
  Shared& s = shared();
  TempDir dir;
  const std::string ws = dir.file("all.ws");
  ProcessResult rec = restore(s.file, {"--ws-record", ws}, {rules(), "check", "all"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  ProcessResult local = restore(s.file, {"--ws", ws, "--prefetch", "ws"}, {rules(), "check", "all"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  const std::string ws_url = s3_url("all.ws");
  ASSERT_EQ(cli({"push", ws, ws_url}).exit_code, 0);
  ProcessResult res = restore(s.s3, {"--ws", ws_url, "--prefetch", "ws"}, {rules(), "check", "all"},
                              restore_options(dir));
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, local.out) << res.err;
  // A working set that is not there: one line naming it, before the program runs.
  const std::string missing = s3_url("missing.ws");
  expect_refused(restore(s.s3, {"--ws", missing}, {rules(), "check", "all"}, restore_options(dir)), missing, "404");
}

TEST(RemoteRestore, SecondRestoreFetchesNothingAndConcurrentRestoresFetchEachBlockOnce) {
  Shared& s = shared();
  ASSERT_GT(s.data_pages, 0);
  TempDir cache;
  const std::vector<std::string> program = {rules(), "check", "all"};
  ProcessResult first = restore(s.s3, {"--stats"}, program, restore_options(cache));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  RemoteLine a = remote_line(first.err);
  ASSERT_TRUE(a.found) << first.err;
  EXPECT_EQ(a.fetched + a.cached, s.data_pages) << first.err;
  ProcessResult second = restore(s.s3, {"--stats"}, program, restore_options(cache));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
  RemoteLine b = remote_line(second.err);
  ASSERT_TRUE(b.found) << second.err;
  EXPECT_EQ(b.fetched, 0) << second.err;
  EXPECT_EQ(b.cached, s.data_pages) << second.err;

  // Two at once, a cache of their own: every block comes over the network once, to one of them.
  TempDir shared_cache;
  ProcessResult r1, r2;
  std::thread t([&] { r1 = restore(s.s3, {"--stats"}, program, restore_options(shared_cache)); });
  r2 = restore(s.s3, {"--stats"}, program, restore_options(shared_cache));
  t.join();
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r1.out, first.out);
  EXPECT_EQ(r2.out, first.out);
  RemoteLine l1 = remote_line(r1.err), l2 = remote_line(r2.err);
  ASSERT_TRUE(l1.found && l2.found) << r1.err << r2.err;
  EXPECT_EQ(l1.fetched + l2.fetched, s.data_pages) << r1.err << r2.err;
}

TEST(RemoteRestore, ResumeFromS3ContinuesLikeTheLocalImage) {
  ResumeCase c("remote");
  c.args = {"--mb", "16", "--steps", "8", "--pause-at", "3"};
  c.checkpoint_extra = {"--signal-at", "3"};
  c.input = "y";
  c.reference();
  ASSERT_EQ(c.expected.exit_code, 0) << c.expected.err;
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.out << c.checkpoint.err;
  const std::string url = s3_url("process.img");
  ASSERT_EQ(cli({"push", c.image, url}).exit_code, 0);
  c.image = url;
  c.resume_env = s3_options().env;
  c.resume();
  EXPECT_EQ(c.resumed.exit_code, 0) << c.resumed.err;
  EXPECT_EQ(c.resumed.signal, 0) << c.resumed.err;
  EXPECT_EQ(c.checkpoint.out + c.resumed.out, c.expected.out) << c.resumed.err;
  EXPECT_EQ(read_file(c.dir + "/log"), read_file(c.dir + "/ref-log"));
  EXPECT_EQ(read_file(c.dir + "/data"), read_file(c.dir + "/ref-data"));
  // A missing image: one line naming it, nothing resumed.
  const std::string missing = s3_url("missing.img");
  ProcessResult r = cli({"resume", missing});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("uffdlazy: resume " + missing + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("404"), std::string::npos) << r.err;
}

TEST(RemoteRestore, DamagedCacheBlocksAreFetchedAgainNeverServed) {
  Shared& s = shared();
  TempDir cache;
  const std::vector<std::string> program = {rules(), "check", "all"};
  ProcessResult first = restore(s.s3, {"--stats"}, program, restore_options(cache));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // Every cached block overwritten (a disk that lied, a writer killed mid-block): the ready bytes
  // still say ready, the bytes are wrong.
  std::string data_file;
  for (const auto& e : std::filesystem::directory_iterator(cache.file("cache"))) {
    if (e.path().extension() == ".data") data_file = e.path();
  }
  ASSERT_FALSE(data_file.empty());
  const auto size = std::filesystem::file_size(data_file);
  write_file(data_file, std::string(size, '\x5a'));
  ProcessResult second = restore(s.s3, {"--stats"}, program, restore_options(cache));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
  RemoteLine l = remote_line(second.err);
  ASSERT_TRUE(l.found) << second.err;
  EXPECT_EQ(l.cached, 0) << second.err;
  EXPECT_EQ(l.fetched, s.data_pages) << second.err;
}

int s3_port() {
  const std::string endpoint = servers().at("AWS_ENDPOINT_URL");
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

TEST(RemoteRestore, StoreGoneForGoodStopsTheProgramNamingTheUrl) {
  Shared& s = shared();
  TempDir cache;
  // The open takes the first connections; the store goes away as the first page is asked for.
  bool stopped = false;
  BreakingProxy proxy(s3_port(), 0, 0, [&](int n) {
    if (n >= 2 && !stopped) {
      stopped = true;
      stop_gateway();
    }
  });
  RunOptions opt = restore_options(cache);
  opt.env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:" + std::to_string(proxy.port());
  opt.env["UFFDLAZY_FETCH_TIMEOUT"] = "3";
  ProcessResult res = restore(s.s3, kOnDemand, {rules(), "check", "all"}, opt);
  start_gateway();
  EXPECT_TRUE(stopped);
  // Killed (the command passes the signal on), with the one line that names the URL.
  EXPECT_EQ(res.signal, SIGKILL) << res.out << res.err;
  EXPECT_NE(res.err.find("uffdlazy: " + s.s3 + ": "), std::string::npos) << res.err;
  EXPECT_NE(res.err.find("so the process is stopped"), std::string::npos) << res.err;
  // Never zeros where data was owed: the check saw no mismatch before it was stopped.
  EXPECT_EQ(res.out.find("MISMATCH"), std::string::npos) << res.out;
}

TEST(RemoteRestore, StoreBackWithinTheTimeoutIsRetriedAndTheRestoreCompletes) {
  Shared& s = shared();
  ProcessResult local = restore(s.file, kOnDemand, {rules(), "check", "all"});
  TempDir cache;
  std::thread restarter;
  bool stopped = false;
  BreakingProxy proxy(s3_port(), 0, 0, [&](int n) {
    if (n >= 2 && !stopped) {
      stopped = true;
      stop_gateway();
      restarter = std::thread([] { start_gateway(); });
    }
  });
  RunOptions opt = restore_options(cache);
  opt.env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:" + std::to_string(proxy.port());
  opt.env["UFFDLAZY_FETCH_TIMEOUT"] = "120";
  ProcessResult res = restore(s.s3, kOnDemand, {rules(), "check", "all"}, opt);
  if (restarter.joinable()) restarter.join();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, local.out) << res.err;
}

TEST(RemoteRestore, ObjectReplacedMidRestoreStopsWithAClearMessage) {
  Shared& s = shared();
  TempDir dir;
  const std::string url = s3_url("replaced.snap");
  ASSERT_EQ(cli({"push", s.file, url}).exit_code, 0);
  // Other bytes replace it as the first page is asked for.
  const std::string other = dir.file("other");
  write_file(other, std::string(200000, 'o'));
  bool replaced = false;
  BreakingProxy proxy(s3_port(), 0, 0, [&](int n) {
    if (n >= 2 && !replaced) {
      replaced = true;
      EXPECT_EQ(cli({"push", other, url}).exit_code, 0);
    }
  });
  RunOptions opt = restore_options(dir);
  opt.env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:" + std::to_string(proxy.port());
  ProcessResult res = restore(url, kOnDemand, {rules(), "check", "all"}, opt);
  EXPECT_TRUE(replaced);
  // Killed (the command passes the signal on), with the one line that names the URL.
  EXPECT_EQ(res.signal, SIGKILL) << res.out << res.err;
  EXPECT_NE(res.err.find("uffdlazy: " + url + ": object replaced during the restore (ETag "), std::string::npos)
      << res.err;
  EXPECT_EQ(res.out.find("MISMATCH"), std::string::npos) << res.out;
}

}  // namespace
}  // namespace uffdlazy::test
