// Sockets, made again in passes so that each can find what it connects to:
//   1. every socket that is not one end of a connection: made, its options set, bound to its
//      address again, listening again (a stale socket file of the checkpointed process is
//      removed first; one that another socket listens on is refused);
//   2. connections: through the listener that accepted them when it is still there (names and
//      all), otherwise as a socketpair, bound to their names when they had any; a stream whose
//      peer was closed gets a peer of its own, closed once its queue is in;
//   3. datagram sockets connected by name;
//   4. connections waiting in a listener's queue, connected again in queue order;
//   5. every receive queue, sent again by the peer (a datagram socket with none: by an unnamed
//      socket to its name), then the shutdowns.
// Every socket is nonblocking meanwhile; placing it gives it the program's flags.
#include <cerrno>
#include <fcntl.h>
#include <linux/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "tools/restorer/restorer.h"

namespace restorer {

namespace {

constexpr int kMaxBound = 256;
// Paths this resume bound a socket to: removed again if the resume is refused later.
const char* g_bound[kMaxBound];
int g_bound_count = 0;
int g_ghost_peer[kMaxObjects];  // a stream whose peer is gone: the peer we make to send its queue

const snap::SocketState& sock(uint32_t i) { return g_image.object(i).socket; }
bool is_socket(const snap::ObjectRecord& o) {
  return o.kind == uint32_t(snap::ObjectKind::kUnixSocket) || o.kind == uint32_t(snap::ObjectKind::kInetSocket);
}

[[noreturn]] void fail(uint32_t i, const char* what, long err) {
  Line l;
  resume_line(l).s("cannot make a socket again (").s(what);
  const snap::ObjectRecord& o = g_image.object(i);
  if (o.kind == uint32_t(snap::ObjectKind::kUnixSocket) && o.path.length > 2 && g_image.object_string(o.path)[2]) {
    l.s(" ").s(g_image.object_string(o.path) + 2);
  }
  l.s("): ").err(err);
  refuse_objects(l);
}

void set_int(int fd, int level, int name, int value) {
  sys::call6(SYS_setsockopt, fd, level, name, long(&value), sizeof value);
}

int make(uint32_t i) {
  const snap::SocketState& s = sock(i);
  const long fd = sys::call6(SYS_socket, s.family, s.type | SOCK_CLOEXEC | SOCK_NONBLOCK, s.protocol);
  if (fd < 0) fail(i, "socket", fd);
  const int staged = stage(fd, "a socket");
  if (s.options & snap::kSocketPassCred) set_int(staged, SOL_SOCKET, SO_PASSCRED, 1);
  if (s.options & snap::kSocketReusePort) set_int(staged, SOL_SOCKET, SO_REUSEPORT, 1);
  if (s.options & snap::kSocketKeepAlive) set_int(staged, SOL_SOCKET, SO_KEEPALIVE, 1);
  if (s.options & snap::kSocketBroadcast) set_int(staged, SOL_SOCKET, SO_BROADCAST, 1);
  if (s.options & snap::kSocketNoDelay) set_int(staged, IPPROTO_TCP, TCP_NODELAY, 1);
  if (s.family == AF_INET6) set_int(staged, IPPROTO_IPV6, IPV6_V6ONLY, (s.options & snap::kSocketV6Only) ? 1 : 0);
  // Buffer sizes the program chose (the kernel doubles what it is given).
  int fresh = 0;
  socklen_t n = sizeof fresh;
  sys::call6(SYS_getsockopt, staged, SOL_SOCKET, SO_RCVBUF, long(&fresh), long(&n));
  if (s.rcvbuf && int(s.rcvbuf) != fresh) set_int(staged, SOL_SOCKET, SO_RCVBUF, int(s.rcvbuf / 2));
  sys::call6(SYS_getsockopt, staged, SOL_SOCKET, SO_SNDBUF, long(&fresh), long(&n));
  if (s.sndbuf && int(s.sndbuf) != fresh) set_int(staged, SOL_SOCKET, SO_SNDBUF, int(s.sndbuf / 2));
  g_made[i].fd = staged;
  return staged;
}

// The object's own address as a sockaddr (its raw bytes), and its length; 0 when unbound.
socklen_t address(snap::StringRef ref, const void** out) {
  *out = g_image.object_string(ref);
  return ref.length;
}

bool unix_path(const sockaddr_un* a, socklen_t len) { return len > sizeof(sa_family_t) && a->sun_path[0]; }

// Binds to a path whose missing directories are made first; the socket file and those
// directories are removed again (the caller wanted the name, not the file).
long bind_in_made_directories(int fd, const sockaddr_un* a, socklen_t len) {
  static char path[sizeof a->sun_path + 1];
  memcpy(path, a->sun_path, sizeof a->sun_path);
  path[sizeof a->sun_path] = 0;
  size_t made[16];
  int count = 0;
  for (size_t k = 1; path[k] && count < 16; k++) {
    if (path[k] != '/') continue;
    path[k] = 0;
    if (sys::call6(SYS_mkdirat, AT_FDCWD, long(path), 0700) == 0) made[count++] = k;
    path[k] = '/';
  }
  const long r = sys::call6(SYS_bind, fd, long(a), len);
  if (r == 0) sys::unlinkat(AT_FDCWD, path, 0);
  while (count) {
    const size_t k = made[--count];
    path[k] = 0;
    sys::unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
  }
  return r;
}

// Binds a unix socket to its name again. A socket file left by the checkpointed process is
// removed first, unless a socket still listens on it.
void bind_unix(uint32_t i, int fd) {
  const snap::ObjectRecord& o = g_image.object(i);
  const void* raw;
  const socklen_t len = address(o.path, &raw);
  if (len <= sizeof(sa_family_t)) return;
  static sockaddr_un a;
  memset(&a, 0, sizeof a);
  memcpy(&a, raw, len);
  if (unix_path(&a, len)) {
    struct stat st;
    if (sys::call6(SYS_newfstatat, AT_FDCWD, long(a.sun_path), long(&st), AT_SYMLINK_NOFOLLOW) == 0) {
      if ((st.st_mode & 0170000) != 0140000) fail(i, "its path is taken by a file that is not a socket:", -EADDRINUSE);
      const long probe = sys::call6(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      const long r = probe >= 0 ? sys::call6(SYS_connect, probe, long(&a), len) : -ECONNREFUSED;
      if (probe >= 0) sys::close(int(probe));
      if (r == 0 || r == -EAGAIN) fail(i, "another socket listens on", -EADDRINUSE);
      sys::unlinkat(AT_FDCWD, a.sun_path, 0);
    }
  }
  long r = sys::call6(SYS_bind, fd, long(&a), len);
  if (r == -ENOENT && (o.flags & snap::kObjectDeleted) && unix_path(&a, len)) {
    // Its directory went with it: made for the bind, removed again with the name.
    r = bind_in_made_directories(fd, &a, len);
  }
  if (r < 0) fail(i, "bind", r);
  if (unix_path(&a, len) && sock(i).file_mode && !(o.flags & snap::kObjectDeleted)) {
    sys::call6(SYS_fchmodat, AT_FDCWD, long(a.sun_path), sock(i).file_mode, 0);
  }
  if (unix_path(&a, len)) {
    if (o.flags & snap::kObjectDeleted) {
      sys::unlinkat(AT_FDCWD, a.sun_path, 0);  // it had been removed: the name stays, the file goes
    } else if (g_bound_count < kMaxBound) {
      g_bound[g_bound_count++] = g_image.object_string(o.path) + sizeof(sa_family_t);
    }
  }
}

void bind_inet(uint32_t i, int fd) {
  const snap::ObjectRecord& o = g_image.object(i);
  const void* raw;
  const socklen_t len = address(o.path, &raw);
  if (!len) return;
  const auto* in4 = static_cast<const sockaddr_in*>(raw);
  const auto* in6 = static_cast<const sockaddr_in6*>(raw);
  static const uint8_t kAny6[16] = {};
  const bool any = sock(i).family == AF_INET ? in4->sin_port == 0 && in4->sin_addr.s_addr == 0
                                              : in6->sin6_port == 0 && !memcmp(&in6->sin6_addr, kAny6, 16);
  if (any) return;  // never bound
  // The checkpointed process's connections may linger in TIME_WAIT on this port: reuse it for
  // the bind, then give the socket the setting the program had.
  set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  const long r = sys::call6(SYS_bind, fd, long(raw), len);
  if (r < 0) fail(i, "bind to its address", r);
  set_int(fd, SOL_SOCKET, SO_REUSEADDR, (sock(i).options & snap::kSocketReuseAddr) ? 1 : 0);
}

void connect_to(uint32_t i, int fd, snap::StringRef to, const char* what) {
  const void* raw;
  const socklen_t len = address(to, &raw);
  const long r = sys::call6(SYS_connect, fd, long(raw), len);
  if (r < 0 && r != -EINPROGRESS) fail(i, what, r);
}

bool same_address(snap::StringRef a, snap::StringRef b) {
  return a.length == b.length && a.length > sizeof(sa_family_t) &&
         !memcmp(g_image.object_string(a), g_image.object_string(b), a.length);
}

// The listener of the image whose address this accepted socket carries, or -1.
long listener_of(uint32_t i) {
  const snap::ObjectRecord& o = g_image.object(i);
  if (!(o.flags & snap::kObjectNameFromListener)) return -1;
  for (uint32_t k = 0; k < g_image.object_count; k++) {
    const snap::ObjectRecord& l = g_image.object(k);
    if (l.kind == o.kind && l.socket.state == uint32_t(snap::SocketConnection::kListening) &&
        l.socket.type == o.socket.type && same_address(l.path, o.path)) {
      return long(k);
    }
  }
  return -1;
}

void connection(uint32_t i) {
  const snap::SocketState& s = sock(i);
  const int p = s.peer;
  if (p < 0) {
    // Its peer was closed: a peer of our own sends its queue, then goes (end of file after it).
    int pair[2];
    const long r = sys::call6(SYS_socketpair, AF_UNIX, s.type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, long(pair));
    if (r < 0) fail(i, "socketpair", r);
    g_made[i].fd = stage(pair[0], "a socket");
    g_ghost_peer[i] = stage(pair[1], "a socket");
    if (!(g_image.object(i).flags & snap::kObjectNameFromListener)) bind_unix(i, g_made[i].fd);
    return;
  }
  // The accepting end carries its listener's name: accept it from that listener again.
  long listener = listener_of(i), client = p, server = i;
  if (listener < 0) {
    listener = listener_of(uint32_t(p));
    client = i;
    server = p;
  }
  if (listener >= 0 && g_made[listener].fd >= 0) {
    const int c = make(uint32_t(client));
    bind_unix(uint32_t(client), c);
    connect_to(uint32_t(client), c, g_image.object(uint32_t(listener)).path, "connect to its listener");
    const long a = sys::call6(SYS_accept4, g_made[listener].fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (a < 0) fail(uint32_t(server), "accept", a);
    g_made[server].fd = stage(a, "a socket");
    return;
  }
  int pair[2];
  const long r = sys::call6(SYS_socketpair, AF_UNIX, s.type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, long(pair));
  if (r < 0) fail(i, "socketpair", r);
  g_made[i].fd = stage(pair[0], "a socket");
  g_made[p].fd = stage(pair[1], "a socket");
  // A socketpair end may be bound afterwards; a name an accepted end shared with a listener that
  // is gone is not given back (binding it would take the listener's address).
  if (!(g_image.object(i).flags & snap::kObjectNameFromListener)) bind_unix(i, g_made[i].fd);
  if (!(g_image.object(uint32_t(p)).flags & snap::kObjectNameFromListener)) bind_unix(uint32_t(p), g_made[p].fd);
}

void send_queue(uint32_t i) {
  const snap::ObjectRecord& o = g_image.object(i);
  if (!o.data_length) return;
  const snap::SocketState& s = o.socket;
  int from = g_ghost_peer[i] >= 0 ? g_ghost_peer[i] : s.peer >= 0 ? g_made[s.peer].fd : -1;
  bool unnamed_sender = false;
  if (from < 0) {
    // A datagram socket without a peer: an unnamed socket sends to its name.
    const long fd = sys::call6(SYS_socket, AF_UNIX, s.type | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(i, "socket", fd);
    from = int(fd);
    unnamed_sender = true;
  }
  const uint8_t* data = g_image.data_of(o);
  if (s.type == SOCK_STREAM) {
    for (uint64_t done = 0; done < o.data_length;) {
      const long n = sys::call6(SYS_sendto, from, long(data + done), long(o.data_length - done), MSG_DONTWAIT, 0, 0);
      if (n <= 0) fail(i, "queue its bytes again", n < 0 ? n : -EIO);
      done += uint64_t(n);
    }
  } else {
    const void* to = nullptr;
    const socklen_t to_len = unnamed_sender ? address(o.path, &to) : 0;
    uint64_t at = 0;
    for (uint32_t k = 0; k < s.datagrams && at + 4 <= o.data_length; k++) {
      uint32_t len;
      memcpy(&len, data + at, 4);
      const long n = sys::call6(SYS_sendto, from, long(data + at + 4), len, MSG_DONTWAIT, long(to), to_len);
      if (n != long(len)) fail(i, "queue its messages again", n < 0 ? n : -EIO);
      at += 4 + (uint64_t(len) + 3) / 4 * 4;
    }
  }
  if (unnamed_sender) sys::close(from);
}

}  // namespace

void make_sockets() {
  const uint32_t n = g_image.object_count;
  for (uint32_t i = 0; i < n; i++) g_ghost_peer[i] = -1;
  // 1. Sockets on their own: unconnected, listening, and every datagram socket. Those whose name
  // was removed first: bound and unbound again, they free the name for one that still has it.
  for (uint32_t k = 0; k < 2 * n; k++) {
    const uint32_t i = k % n;
    const snap::ObjectRecord& o = g_image.object(i);
    if (!is_socket(o) || bool(o.flags & snap::kObjectDeleted) != (k < n)) continue;
    const snap::SocketState& s = o.socket;
    const bool connected_stream = s.type != SOCK_DGRAM && (s.state == uint32_t(snap::SocketConnection::kConnected) ||
                                                            s.state == uint32_t(snap::SocketConnection::kPending));
    const bool datagram_pair = o.kind == uint32_t(snap::ObjectKind::kUnixSocket) && s.type == SOCK_DGRAM &&
                               s.peer >= 0 && sock(uint32_t(s.peer)).peer == int32_t(i) && !o.path.length &&
                               !g_image.object(uint32_t(s.peer)).path.length;
    // A socket whose peer was closed gets a peer of its own in pass 2.
    const bool peer_gone = o.kind == uint32_t(snap::ObjectKind::kUnixSocket) &&
                           s.state == uint32_t(snap::SocketConnection::kConnected) && s.peer < 0 &&
                           o.peer_path.length <= sizeof(sa_family_t);
    if (connected_stream || datagram_pair || peer_gone) continue;
    const int fd = make(i);
    if (o.kind == uint32_t(snap::ObjectKind::kInetSocket)) {
      bind_inet(i, fd);
    } else {
      bind_unix(i, fd);
    }
    if (s.state == uint32_t(snap::SocketConnection::kListening)) {
      const long r = sys::call6(SYS_listen, fd, s.backlog);
      if (r < 0) fail(i, "listen", r);
    }
    if (o.kind == uint32_t(snap::ObjectKind::kInetSocket) && s.state == uint32_t(snap::SocketConnection::kConnected)) {
      connect_to(i, fd, o.peer_path, "connect");
    }
  }
  // 2. Connections (and unnamed datagram pairs), each pair once.
  for (uint32_t i = 0; i < n; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kUnixSocket) || g_made[i].fd >= 0) continue;
    if (o.socket.state == uint32_t(snap::SocketConnection::kPending)) continue;
    if (o.socket.peer >= 0 && sock(uint32_t(o.socket.peer)).state == uint32_t(snap::SocketConnection::kPending)) continue;
    connection(i);
  }
  // 3. Datagram sockets connected by name (to the process's own or to another's).
  for (uint32_t i = 0; i < n; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kUnixSocket) || o.socket.type != SOCK_DGRAM) continue;
    if (o.socket.state != uint32_t(snap::SocketConnection::kConnected) || o.peer_path.length <= sizeof(sa_family_t)) continue;
    connect_to(i, g_made[i].fd, o.peer_path, "connect to its peer");
  }
  // 4. Connections waiting to be accepted, in the listener's queue order.
  for (uint32_t i = 0; i < n; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kUnixSocket) || o.socket.state != uint32_t(snap::SocketConnection::kPending)) {
      continue;
    }
    const uint32_t client = uint32_t(o.socket.peer);
    const int c = make(client);
    bind_unix(client, c);
    connect_to(client, c, g_image.object(uint32_t(o.socket.listener)).path, "connect to its listener");
  }
  // 5. Queues, then shutdowns (a peer's shutdown comes after the bytes it sent).
  for (uint32_t i = 0; i < n; i++) {
    if (g_image.object(i).kind == uint32_t(snap::ObjectKind::kUnixSocket)) send_queue(i);
  }
  for (uint32_t i = 0; i < n; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (!is_socket(o) || g_made[i].fd < 0) continue;
    const uint32_t how = o.socket.shutdown;
    if (how == 3) sys::call6(SYS_shutdown, g_made[i].fd, SHUT_RDWR);
    else if (how == 1) sys::call6(SYS_shutdown, g_made[i].fd, SHUT_RD);
    else if (how == 2) sys::call6(SYS_shutdown, g_made[i].fd, SHUT_WR);
    if (o.socket.peek_offset >= 0) set_int(g_made[i].fd, SOL_SOCKET, SO_PEEK_OFF, o.socket.peek_offset);
    if (g_ghost_peer[i] >= 0) sys::close(g_ghost_peer[i]);
  }
}

void unbind_sockets() {
  for (int i = 0; i < g_bound_count; i++) sys::unlinkat(AT_FDCWD, g_bound[i], 0);
  g_bound_count = 0;
}

}  // namespace restorer
