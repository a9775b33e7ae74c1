// Sockets. Unix sockets are examined through sock_diag (NETLINK_SOCK_DIAG, which any user may ask
// about the sockets of their network namespace): bound name, peer, pending connections, queue
// lengths, shutdown. Their receive queues are copied with MSG_PEEK from the SO_PEEK_OFF offset 0
// onward, so nothing is taken from the program. A connection is resumed when both its ends are the
// process's own (or its peer is gone); a connection to another process is refused, as is a
// descriptor in flight (SCM_RIGHTS). TCP sockets are resumed when listening (bound again to the
// same address) or not connected; UDP sockets when nothing is queued on them.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/object_capture.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxObjects = 1u << 16;
constexpr uint32_t kMaxPending = 4096;

// What sock_diag says of one unix socket.
struct UnixInfo {
  uint32_t state = 0;  // TCP_* numbering: 1 established, 7 close, 10 listen
  uint32_t peer = 0;   // peer's inode, 0: none
  uint32_t rqueue = 0, wqueue = 0;
  uint32_t shutdown = 0;
  uint32_t name_length = 0;
  char name[sizeof(sockaddr_un::sun_path) + 1] = {};
  uint32_t vfs_ino = 0, vfs_dev = 0;
  bool has_vfs = false;
  uint32_t icon_count = 0;
  uint32_t icons[kMaxPending] = {};
  bool icons_cut = false;
};

// Capture-time facts that do not go into the image.
struct Scratch {
  uint32_t peer_ino[kMaxObjects] = {};  // unix sockets: the peer's inode (0: none)
  uint32_t sent[kMaxObjects] = {};      // unix sockets: bytes sent not yet received by the peer
  struct Pending {
    uint32_t listener;    // object index
    uint32_t client_ino;  // the connecting socket
  } pending[kMaxPending] = {};
  uint32_t pending_count = 0;
  UnixInfo info;
  alignas(8) uint8_t reply[1 << 16] = {};
  alignas(8) uint8_t control[4096] = {};
};
constinit Scratch g;

constexpr uint32_t kEstablished = 1, kClose = 7, kListen = 10;

bool unix_diag(uint32_t ino, UnixInfo* out) {
  const long nl = sys::call6(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return false;
  struct {
    nlmsghdr h;
    unix_diag_req r;
  } req = {};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = ~0u;
  req.r.udiag_ino = ino;
  req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
  req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
  bool ok = false;
  if (sys::call6(SYS_sendto, nl, long(&req), sizeof req, 0, 0, 0) == long(sizeof req)) {
    const long n = sys::call6(SYS_recvfrom, nl, long(g.reply), sizeof g.reply, 0, 0, 0);
    const auto* h = reinterpret_cast<const nlmsghdr*>(g.reply);
    if (n >= long(sizeof(nlmsghdr) + sizeof(unix_diag_msg)) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
        h->nlmsg_len <= uint32_t(n)) {
      const auto* m = reinterpret_cast<const unix_diag_msg*>(NLMSG_DATA(h));
      *out = UnixInfo{};
      out->state = m->udiag_state;
      const uint8_t* a = reinterpret_cast<const uint8_t*>(m) + NLMSG_ALIGN(sizeof *m);
      const uint8_t* end = g.reply + h->nlmsg_len;
      while (a + sizeof(nlattr) <= end) {
        const auto* at = reinterpret_cast<const nlattr*>(a);
        if (at->nla_len < sizeof(nlattr) || a + at->nla_len > end) break;
        const uint8_t* v = a + NLA_HDRLEN;
        const uint32_t len = at->nla_len - NLA_HDRLEN;
        switch (at->nla_type) {
          case UNIX_DIAG_NAME:
            out->name_length = len < sizeof out->name - 1 ? len : uint32_t(sizeof out->name - 1);
            memcpy(out->name, v, out->name_length);
            break;
          case UNIX_DIAG_VFS:
            if (len >= sizeof(unix_diag_vfs)) {
              memcpy(&out->vfs_ino, v, 4);
              memcpy(&out->vfs_dev, v + 4, 4);
              out->has_vfs = true;
            }
            break;
          case UNIX_DIAG_PEER:
            if (len >= 4) memcpy(&out->peer, v, 4);
            break;
          case UNIX_DIAG_ICONS:
            out->icon_count = len / 4 < kMaxPending ? len / 4 : kMaxPending;
            out->icons_cut = len / 4 > kMaxPending;
            memcpy(out->icons, v, out->icon_count * 4);
            break;
          case UNIX_DIAG_RQLEN:
            if (len >= sizeof(unix_diag_rqlen)) {
              memcpy(&out->rqueue, v, 4);
              memcpy(&out->wqueue, v + 4, 4);
            }
            break;
          case UNIX_DIAG_SHUTDOWN:
            if (len >= 1) out->shutdown = *v;
            break;
          default:
            break;
        }
        a += NLA_ALIGN(at->nla_len);
      }
      ok = true;
    }
  }
  sys::close(int(nl));
  return ok;
}

int option(int fd, int level, int name) {
  int v = 0;
  socklen_t n = sizeof v;
  if (sys::call6(SYS_getsockopt, fd, level, name, long(&v), long(&n)) < 0) return 0;
  return v;
}

void common_options(int fd, snap::SocketState* s) {
  if (option(fd, SOL_SOCKET, SO_REUSEADDR)) s->options |= snap::kSocketReuseAddr;
  if (option(fd, SOL_SOCKET, SO_REUSEPORT)) s->options |= snap::kSocketReusePort;
  if (option(fd, SOL_SOCKET, SO_KEEPALIVE)) s->options |= snap::kSocketKeepAlive;
  if (option(fd, SOL_SOCKET, SO_BROADCAST)) s->options |= snap::kSocketBroadcast;
  s->rcvbuf = uint32_t(option(fd, SOL_SOCKET, SO_RCVBUF));
  s->sndbuf = uint32_t(option(fd, SOL_SOCKET, SO_SNDBUF));
}

snap::StringRef address_of(int fd, bool peer, ObjectTable* objects) {
  alignas(8) char addr[sizeof(sockaddr_storage)];
  socklen_t n = sizeof addr;
  const long r = sys::call6(peer ? SYS_getpeername : SYS_getsockname, fd, long(addr), long(&n));
  if (r < 0 || n <= sizeof(sa_family_t)) return snap::StringRef{0, 0};
  return objects->add_string(addr, n);
}

// Copies the receive queue into the object's data; false with why. Stream sockets: the bytes as
// they are. Datagram and seqpacket sockets: each message as a u32 length and its bytes padded to 4.
bool copy_queue(const OpenFile& f, snap::ObjectRecord* o, ObjectTable* objects, LineWriter* why) {
  const bool stream = o->socket.type == SOCK_STREAM;
  int saved = -1;
  socklen_t len = sizeof saved;
  sys::call6(SYS_getsockopt, f.fd, SOL_SOCKET, SO_PEEK_OFF, long(&saved), long(&len));
  o->socket.peek_offset = saved;
  int zero = 0;
  if (sys::call6(SYS_setsockopt, f.fd, SOL_SOCKET, SO_PEEK_OFF, long(&zero), sizeof zero) < 0) {
    about(why, f).str("cannot have its queue read without taking it (SO_PEEK_OFF)");
    return false;
  }
  bool ok = true;
  for (;;) {
    constexpr uint64_t kChunk = 1 << 16;
    uint8_t* dst = objects->grow_data(o, stream ? kChunk : kChunk + 4);
    if (!dst) {
      about(why, f).str("holds more queued bytes than a checkpoint keeps");
      ok = false;
      break;
    }
    sockaddr_un from = {};
    iovec iov = {stream ? dst : dst + 4, kChunk};
    msghdr m = {};
    m.msg_name = stream ? nullptr : &from;
    m.msg_namelen = stream ? 0 : sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = g.control;
    m.msg_controllen = sizeof g.control;
    const long n =
        sys::call6(SYS_recvmsg, f.fd, long(&m), MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | (stream ? 0 : MSG_TRUNC));
    bool rights = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); n >= 0 && c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      rights = true;
      // Peeking installed them in our table: they are not the program's.
      const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) sys::close(fds[k]);
    }
    if (rights || (n >= 0 && (m.msg_flags & MSG_CTRUNC))) {
      about(why, f).str("has descriptors in flight (SCM_RIGHTS) in its queue, which a resume cannot carry");
      ok = false;
      break;
    }
    if (n < 0 || (n == 0 && stream)) {
      objects->shrink_data(o, stream ? kChunk : kChunk + 4);
      if (n < 0 && n != -EAGAIN) {
        about(why, f).str("cannot have its queue read: ").errno_text(int(-n));
        ok = false;
      }
      break;
    }
    if (uint64_t(n) > kChunk) {
      about(why, f).str("has a queued message longer than ").u64(kChunk).str(" bytes");
      ok = false;
      break;
    }
    if (stream) {
      objects->shrink_data(o, kChunk - uint64_t(n));
      continue;
    }
    if (n == 0) {
      about(why, f).str("has an empty datagram queued, which a resume could not tell apart");
      ok = false;
      break;
    }
    if (m.msg_namelen > sizeof(sa_family_t)) {
      // A message from a named socket: a resume sends it again from the peer (or from an unnamed
      // socket), which must have the same name.
      const char* peer = o->peer_path.length ? objects->string_at(o->peer_path) : nullptr;
      if (!peer || o->peer_path.length != m.msg_namelen || memcmp(peer, &from, m.msg_namelen) != 0) {
        about(why, f).str("has a datagram queued from ");
        append_path(why, from.sun_path[0] ? from.sun_path : "an abstract address",
                    from.sun_path[0] ? strnlen(from.sun_path, sizeof from.sun_path) : 19);
        why->str(", which a resume could not send again from that address");
        ok = false;
        break;
      }
    }
    const uint32_t length = uint32_t(n);
    memcpy(dst, &length, 4);
    objects->shrink_data(o, kChunk - (uint64_t(n) + 3) / 4 * 4);
    o->socket.datagrams++;
  }
  sys::call6(SYS_setsockopt, f.fd, SOL_SOCKET, SO_PEEK_OFF, long(&saved), sizeof saved);
  return ok;
}

long capture_unix(const OpenFile& f, snap::ObjectRecord* o, ObjectTable* objects, LineWriter* why) {
  const uint32_t index = objects->count() - 1;
  UnixInfo& u = g.info;
  if (!unix_diag(uint32_t(f.st.st_ino), &u)) {
    about(why, f).str("cannot be examined (sock_diag)");
    return -1;
  }
  snap::SocketState& s = o->socket;
  if (u.name_length) {
    // As a sockaddr_un (bind and connect take it so), like the peer's address.
    sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, u.name, u.name_length);
    o->path = objects->add_string(reinterpret_cast<const char*>(&a), sizeof(sa_family_t) + u.name_length);
    // A path name without an inode of its own: the listener's, which accepted this socket.
    if (u.name[0] && !u.has_vfs) o->flags |= snap::kObjectNameFromListener;
    if (u.name[0] && u.has_vfs) {
      // Bound to a path: is the socket file still there?
      struct stat st;
      u.name[u.name_length] = 0;
      if (sys::call6(SYS_newfstatat, AT_FDCWD, long(u.name), long(&st), AT_SYMLINK_NOFOLLOW) < 0 ||
          uint64_t(st.st_ino) != u.vfs_ino) {
        o->flags |= snap::kObjectDeleted;
      } else {
        s.file_mode = uint32_t(st.st_mode) & 07777;
      }
    }
  }
  s.shutdown = u.shutdown & 3;
  if (option(f.fd, SOL_SOCKET, SO_PASSCRED)) s.options |= snap::kSocketPassCred;
  common_options(f.fd, &s);
  s.peer = -1;
  s.listener = -1;
  g.peer_ino[index] = u.peer;
  g.sent[index] = u.wqueue;
  if (u.state == kListen) {
    s.state = uint32_t(snap::SocketConnection::kListening);
    s.backlog = u.wqueue;
    if (u.icons_cut || g.pending_count + u.icon_count > kMaxPending) {
      about(why, f).str("has too many connections waiting to be accepted");
      return -1;
    }
    for (uint32_t i = 0; i < u.icon_count; i++) g.pending[g.pending_count++] = Scratch::Pending{index, u.icons[i]};
    return long(index);
  }
  if (u.peer) {
    s.state = uint32_t(snap::SocketConnection::kConnected);
    o->peer_path = address_of(f.fd, true, objects);
  } else {
    // Established with no peer: its peer is gone (getpeername still finds the closed peer), or,
    // for a datagram socket, others connected to it (Linux marks the socket connected to as
    // established too; it has no peer of its own: ENOTCONN). Made again as a peer-gone
    // connection, such a datagram socket would be given a peer, and the sockets that connect to
    // it would be refused (EPERM).
    alignas(8) char addr[sizeof(sockaddr_storage)];
    socklen_t n = sizeof addr;
    const bool has_peer = sys::call6(SYS_getpeername, f.fd, long(addr), long(&n)) == 0;
    s.state = u.state == kEstablished && (s.type != SOCK_DGRAM || has_peer)
                  ? uint32_t(snap::SocketConnection::kConnected)  // its peer is gone
                  : uint32_t(snap::SocketConnection::kUnconnected);
  }
  // A stream or seqpacket socket has a queue only once connected (recvmsg says EINVAL before).
  const bool connection_type = s.type == SOCK_STREAM || s.type == SOCK_SEQPACKET;
  if ((!connection_type || s.state == uint32_t(snap::SocketConnection::kConnected)) &&
      !copy_queue(f, o, objects, why)) {
    return -1;
  }
  return long(index);
}

long capture_inet(const OpenFile& f, snap::ObjectRecord* o, ObjectTable* objects, LineWriter* why) {
  snap::SocketState& s = o->socket;
  common_options(f.fd, &s);
  if (s.family == AF_INET6 && option(f.fd, IPPROTO_IPV6, IPV6_V6ONLY)) s.options |= snap::kSocketV6Only;
  s.peer = s.listener = -1;
  o->path = address_of(f.fd, false, objects);
  if (s.type == SOCK_STREAM && s.protocol == IPPROTO_TCP) {
    if (option(f.fd, IPPROTO_TCP, TCP_NODELAY)) s.options |= snap::kSocketNoDelay;
    tcp_info info = {};
    socklen_t n = sizeof info;
    sys::call6(SYS_getsockopt, f.fd, IPPROTO_TCP, TCP_INFO, long(&info), long(&n));
    if (info.tcpi_state == kListen) {
      if (info.tcpi_unacked) {
        about(why, f).str("is a listening TCP socket with ").u64(info.tcpi_unacked)
            .str(" connections not accepted yet; established connections cannot be resumed");
        return -1;
      }
      s.state = uint32_t(snap::SocketConnection::kListening);
      s.backlog = info.tcpi_sacked;
      return long(objects->count() - 1);
    }
    if (info.tcpi_state != kClose) {
      about(why, f).str("is a TCP connection; only listening and unconnected TCP sockets can be resumed");
      return -1;
    }
    s.state = uint32_t(snap::SocketConnection::kUnconnected);
    return long(objects->count() - 1);
  }
  if (s.type == SOCK_DGRAM && s.protocol == IPPROTO_UDP) {
    int queued = 0;
    if (sys::ioctl(f.fd, 0x541B /* FIONREAD */, &queued) == 0 && queued > 0) {
      about(why, f).str("is a UDP socket with datagrams queued, whose senders a resume could not be");
      return -1;
    }
    o->peer_path = address_of(f.fd, true, objects);
    s.state = uint32_t(o->peer_path.length ? snap::SocketConnection::kConnected : snap::SocketConnection::kUnconnected);
    return long(objects->count() - 1);
  }
  about(why, f).str("is an IP socket of type ").i64(s.type).str(" protocol ").i64(s.protocol)
      .str("; only TCP and UDP sockets can be resumed");
  return -1;
}

}  // namespace

long capture_socket(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  const int family = option(f.fd, SOL_SOCKET, SO_DOMAIN);
  if (family != AF_UNIX && family != AF_INET && family != AF_INET6) {
    about(why, f).str("is of family ").i64(family)
        .str(family == AF_NETLINK ? " (netlink)" : family == AF_PACKET ? " (packet)" : "")
        .str("; only unix, TCP and UDP sockets can be resumed");
    return -1;
  }
  snap::ObjectRecord* o = objects->add(family == AF_UNIX ? snap::ObjectKind::kUnixSocket : snap::ObjectKind::kInetSocket,
                                       uint64_t(f.st.st_ino));
  if (!o || objects->count() > kMaxObjects) {
    why->str("too many objects");
    return -1;
  }
  o->dev = uint64_t(f.st.st_dev);
  o->socket.family = family;
  o->socket.type = option(f.fd, SOL_SOCKET, SO_TYPE);
  o->socket.protocol = option(f.fd, SOL_SOCKET, SO_PROTOCOL);
  o->socket.peek_offset = -1;
  return family == AF_UNIX ? capture_unix(f, o, objects, why) : capture_inet(f, o, objects, why);
}

void reset_socket_capture() { g.pending_count = 0; }

bool check_socket_ends(const TableBuilder& descriptors, ObjectTable* objects, LineWriter* why) {
  auto find_unix = [&](uint32_t ino) -> long {
    for (uint32_t i = 0; i < objects->count(); i++) {
      const snap::ObjectRecord* o = objects->at(i);
      if (o->kind == uint32_t(snap::ObjectKind::kUnixSocket) && o->ino == ino) return long(i);
    }
    return -1;
  };
  auto fd_of = [&](uint32_t object) -> int {
    for (uint32_t k = 0; k < descriptors.count(); k++) {
      const auto* d = static_cast<const snap::DescriptorRecord*>(descriptors.record(k));
      if (d->object == object + 1) return d->fd;
    }
    return -1;
  };
  // Connections waiting in a listener's queue: the server end of each is an object of its own,
  // with no descriptor, made again by connecting the client (in queue order).
  for (uint32_t p = 0; p < g.pending_count; p++) {
    const long client = find_unix(g.pending[p].client_ino);
    if (client < 0) {
      why->str("descriptor ").i64(fd_of(g.pending[p].listener))
          .str(" is a listening socket with a connection from another process waiting to be accepted");
      return false;
    }
    if (g.sent[client]) {
      why->str("descriptor ").i64(fd_of(uint32_t(client)))
          .str(" is a connection not accepted yet that carries data, which a resume could not queue again");
      return false;
    }
    snap::ObjectRecord* server = objects->add(snap::ObjectKind::kUnixSocket, g.peer_ino[client]);
    if (!server) {
      why->str("too many objects");
      return false;
    }
    const snap::ObjectRecord* c = objects->at(uint32_t(client));
    server->socket.family = AF_UNIX;
    server->socket.type = c->socket.type;
    server->socket.state = uint32_t(snap::SocketConnection::kPending);
    server->socket.listener = int32_t(g.pending[p].listener);
    server->socket.peer = int32_t(client);
    server->socket.peek_offset = -1;
    g.peer_ino[objects->count() - 1] = 0;
    objects->at(uint32_t(client))->socket.peer = int32_t(objects->count() - 1);
  }
  // An abstract name a connected socket shares with a listener of the process is that listener's.
  for (uint32_t i = 0; i < objects->count(); i++) {
    snap::ObjectRecord* o = objects->at(i);
    if (o->kind != uint32_t(snap::ObjectKind::kUnixSocket) || o->path.length < 3 ||
        o->socket.state != uint32_t(snap::SocketConnection::kConnected)) {
      continue;
    }
    for (uint32_t k = 0; k < objects->count(); k++) {
      const snap::ObjectRecord* l = objects->at(k);
      if (l->kind == o->kind && l->socket.state == uint32_t(snap::SocketConnection::kListening) &&
          l->path.length == o->path.length &&
          !memcmp(objects->string_at(l->path), objects->string_at(o->path), o->path.length)) {
        o->flags |= snap::kObjectNameFromListener;
      }
    }
  }
  for (uint32_t i = 0; i < objects->count(); i++) {
    snap::ObjectRecord* o = objects->at(i);
    if (o->kind != uint32_t(snap::ObjectKind::kUnixSocket) || !g.peer_ino[i] || o->socket.peer >= 0) continue;
    const long peer = find_unix(g.peer_ino[i]);
    if (peer >= 0) {
      o->socket.peer = int32_t(peer);
      continue;
    }
    if (!unix_diag(g.peer_ino[i], &g.info)) {
      // The peer was closed (a closed socket leaves sock_diag): the socket keeps its queue (then
      // reads the end; a datagram socket's sends are refused). Made again with a peer of its own,
      // closed once the queue is in.
      o->peer_path = snap::StringRef{0, 0};
      continue;
    }
    // A datagram socket connected to a named socket of another process is connected again by name.
    if (o->socket.type == SOCK_DGRAM && o->peer_path.length > sizeof(sa_family_t)) {
      o->socket.state = uint32_t(snap::SocketConnection::kConnected);
      continue;
    }
    why->str("descriptor ").i64(fd_of(i)).str(" is a unix socket connected to ");
    if (o->peer_path.length > sizeof(sa_family_t)) {
      const char* name = objects->string_at(o->peer_path) + sizeof(sa_family_t);
      const size_t n = o->peer_path.length - sizeof(sa_family_t);
      if (name[0]) append_path(why, name, strnlen(name, n));
      else why->str("an abstract socket");
      why->str(" in another process");
    } else {
      why->str("a socket of another process");
    }
    why->str("; connections leaving the process cannot be resumed");
    return false;
  }
  return true;
}

}  // namespace uffdlazy::ckpt
