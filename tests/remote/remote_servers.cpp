#include "tests/remote/remote_servers.h"

#include <algorithm>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <vector>

namespace uffdlazy::test {

namespace {

std::map<std::string, std::string> load() {
  std::map<std::string, std::string> out;
  std::ifstream in(std::string(UFFDLAZY_REMOTE_STATE) + "/env");
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::string test_prefix() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
}

void run_script(const std::string& action) {
  const std::string cmd = std::string(UFFDLAZY_SOURCE_DIR) + "/scripts/s3_server.sh " + action + " " +
                          UFFDLAZY_REMOTE_STATE + "/s3";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace

const std::map<std::string, std::string>& servers() {
  static const std::map<std::string, std::string> env = load();
  EXPECT_TRUE(env.count("AWS_ENDPOINT_URL") && env.count("UFFDLAZY_TEST_HTTP"))
      << "the remote servers are not running: " << UFFDLAZY_REMOTE_STATE
      << "/env is missing (ctest starts them with the remote_servers_start fixture)";
  return env;
}

RunOptions s3_options() {
  RunOptions o;
  for (const char* k : {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}) {
    auto it = servers().find(k);
    if (it != servers().end()) o.env[k] = it->second;
  }
  o.unset = {"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION",
             "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_S3_ADDRESSING_STYLE"};
  return o;
}

std::string s3_url(const std::string& name) {
  auto it = servers().find("UFFDLAZY_TEST_BUCKET");
  return "s3://" + (it == servers().end() ? std::string("missing") : it->second) + "/" + test_prefix() + "/" + name;
}

std::string http_url_of(const std::string& local_file, const std::string& name) {
  auto root = servers().find("UFFDLAZY_TEST_HTTP_ROOT");
  auto url = servers().find("UFFDLAZY_TEST_HTTP");
  if (root == servers().end() || url == servers().end()) return "http://127.0.0.1:1/missing";
  // A parameterized test's name holds a '/': one file in the root, not a directory that is not there.
  std::string file = test_prefix() + "-" + name;
  std::replace(file.begin(), file.end(), '/', '_');
  std::ifstream in(local_file, std::ios::binary);
  std::ofstream out(root->second + "/" + file, std::ios::binary);
  out << in.rdbuf();
  return url->second + "/" + file;
}

void stop_gateway() { run_script("stop-gateway"); }
void start_gateway() { run_script("start-gateway"); }

BreakingProxy::BreakingProxy(int upstream_port, int bad_connections, size_t good_bytes,
                             std::function<void(int)> before_forwarding)
    : upstream_(upstream_port), bad_(bad_connections), good_bytes_(good_bytes),
      before_forwarding_(std::move(before_forwarding)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(listen_fd_, 16) == 0 &&
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port_ = ntohs(a.sin_port);
  }
  thread_ = std::thread([this] { serve(); });
}

BreakingProxy::~BreakingProxy() {
  stop_ = true;
  thread_.join();
  for (std::thread& t : relays_) t.join();
  close(listen_fd_);
}

void BreakingProxy::serve() {
  // Each connection relayed by a thread of its own: a client may hold several at once (the
  // fetcher's keep-alive connections), and one that is kept open must not hold up the next.
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    const int n = accepted_.fetch_add(1);
    if (before_forwarding_) before_forwarding_(n);
    relays_.emplace_back([this, client, n] { relay(client, n); });
  }
}

void BreakingProxy::relay(int client, int n) {
  const bool breaks = n < bad_;
  {
    const int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(upstream_));
    if (connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(up);
      close(client);
      return;
    }
    size_t relayed = 0;
    char buf[65536];
    bool open = true;
    while (open && !stop_) {
      pollfd fds[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
      if (poll(fds, 2, 100) <= 0) continue;
      for (int i = 0; i < 2 && open; i++) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t got = read(fds[i].fd, buf, sizeof buf);
        if (got <= 0) {
          open = false;
          break;
        }
        size_t send_now = size_t(got);
        if (i == 1 && breaks) {
          // The answer: only the first good_bytes_ of it, then a reset.
          send_now = relayed >= good_bytes_ ? 0 : std::min(send_now, good_bytes_ - relayed);
          relayed += send_now;
        }
        if (send_now && write(fds[1 - i].fd, buf, send_now) != ssize_t(send_now)) open = false;
        if (i == 1 && breaks && relayed >= good_bytes_) {
          linger l{1, 0};  // close with RST: the connection was reset mid-body
          setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          open = false;
        }
      }
    }
    close(up);
    close(client);
  }
}

}  // namespace uffdlazy::test
