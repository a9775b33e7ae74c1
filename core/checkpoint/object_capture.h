// The objects behind a checkpoint's special descriptors, captured by the checkpoint thread while
// every program thread is stopped: what each holds is read without taking it away from the
// program (a pipe's buffer through tee(2), a socket's queue with MSG_PEEK), so that in continue
// mode the program finds everything as it left it. Each capture adds the object the descriptor
// opens (or finds it, when another descriptor opened it first) and returns its index in the
// object table, or -1 with a one-line reason: what the object is and why a resume could not bring
// it back.
//
//   pipe_capture.cpp        pipes and FIFOs, with the bytes buffered in them
//   socket_capture.cpp      unix sockets (socketpairs, listeners, connections inside the process,
//                           their queues) and TCP/UDP sockets that are not connected
//   anon_inode_capture.cpp  eventfd, epoll, signalfd, timerfd, inotify (from fdinfo)
//   file_object_capture.cpp deleted files and directories, memfds
//   posix_timer_capture.cpp POSIX timers (not descriptors, but objects all the same)
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/stat.h>

#include "core/base/line_writer.h"
#include "core/checkpoint/object_table.h"

namespace uffdlazy::ckpt {

// One open descriptor as the descriptor capture found it.
struct OpenFile {
  int fd;
  const char* link;    // readlink of /proc/self/fd/N ("pipe:[123]", "anon_inode:[eventfd]", a path)
  size_t link_length;
  const char* info;    // /proc/self/fdinfo/N
  struct stat st;
  uint32_t flags;      // open flags from fdinfo (O_ACCMODE, O_NONBLOCK, ...)
};

long capture_pipe(const OpenFile& f, ObjectTable* objects, LineWriter* why);
long capture_socket(const OpenFile& f, ObjectTable* objects, LineWriter* why);
long capture_eventfd(const OpenFile& f, ObjectTable* objects, LineWriter* why);
long capture_signalfd(const OpenFile& f, ObjectTable* objects, LineWriter* why);
long capture_timerfd(const OpenFile& f, ObjectTable* objects, LineWriter* why);
long capture_epoll(const OpenFile& f, ObjectTable* objects, LineWriter* why);
long capture_inotify(const OpenFile& f, ObjectTable* objects, LineWriter* why);
// A deleted regular file, directory or FIFO (f.link ends in " (deleted)").
long capture_deleted_file(const OpenFile& f, ObjectTable* objects, LineWriter* why);
long capture_memfd(const OpenFile& f, ObjectTable* objects, LineWriter* why);

// Once every descriptor is known (descriptors: the DescriptorRecord table): a pipe the process
// holds only one end of must have nobody at the other end (check_pipe_ends), and a socket's peer
// must be one of the process's own, whose index it gets (check_socket_ends, which also adds the
// server ends of connections waiting in a listener's queue).
bool check_pipe_ends(const TableBuilder& descriptors, ObjectTable* objects, LineWriter* why);
bool check_socket_ends(const TableBuilder& descriptors, ObjectTable* objects, LineWriter* why);
// Before a checkpoint's first socket capture.
void reset_socket_capture();

// POSIX timers (posix_timer_capture.cpp): each an object of its own.
bool capture_posix_timers(ObjectTable* objects, LineWriter* why);
// Before the threads are stopped: a SIGEV_THREAD timer's helper thread blocks every signal, so
// the stop would only time out; true (with why) when there is one.
bool refuse_thread_timers(LineWriter* why);

// The process's descriptors, ascending, as the descriptor capture listed them.
const int* open_descriptors(long* count);

// "descriptor N (what) " at the start of a refusal.
LineWriter& about(LineWriter* why, const OpenFile& f);

}  // namespace uffdlazy::ckpt
