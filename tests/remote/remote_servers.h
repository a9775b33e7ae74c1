// What the remote tests share: the servers the ctest fixture started (scripts/remote_servers.sh:
// radosgw on a single-node Ceph, and nginx), and a TCP proxy that breaks connections on purpose.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {

// The fixture's settings (DIR/env): AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, UFFDLAZY_TEST_BUCKET, UFFDLAZY_TEST_HTTP, UFFDLAZY_TEST_HTTP_ROOT. Fails the test
// (never skips it) when the servers are not up.
const std::map<std::string, std::string>& servers();
// RunOptions whose environment reaches the S3 store (and nothing of the caller's AWS_* settings).
RunOptions s3_options();
// s3://BUCKET/<test name>/<name>: every test its own keys.
std::string s3_url(const std::string& name);
// The HTTP server's URL of a file copied into its root.
std::string http_url_of(const std::string& local_file, const std::string& name);
// The S3 store's gateway, stopped and started again (scripts/s3_server.sh).
void stop_gateway();
void start_gateway();

// Forwards 127.0.0.1:port() to an upstream port. The first `bad_connections` connections it
// accepts pass the request on but relay only `good_bytes` of the answer, then reset the
// connection (RST): a server that dies mid-body. Later connections are forwarded whole.
class BreakingProxy {
 public:
  // before_forwarding(n), when given, runs as connection n (from 0) is accepted, before anything
  // of it is forwarded: a change made there lands between two requests of the client.
  BreakingProxy(int upstream_port, int bad_connections, size_t good_bytes,
                std::function<void(int)> before_forwarding = nullptr);
  ~BreakingProxy();
  int port() const { return port_; }
  int connections() const { return accepted_.load(); }

 private:
  void serve();
  void relay(int client, int n);
  int listen_fd_ = -1;
  int port_ = 0;
  int upstream_;
  int bad_;
  size_t good_bytes_;
  std::function<void(int)> before_forwarding_;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> relays_;  // the serving thread's only
};

}  // namespace uffdlazy::test
