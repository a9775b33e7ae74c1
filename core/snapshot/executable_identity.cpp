#include "core/snapshot/executable_identity.h"

#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"
#include "core/snapshot/checksum.h"

namespace uffdlazy::snap {

namespace {

// pread that insists on the whole range: a short read means the file lies about its layout.
bool read_exact(int fd, void* buf, size_t n, uint64_t off) {
  return sys::pread(fd, buf, n, long(off)) == long(n);
}

struct Segment {
  uint32_t type;
  uint64_t offset;
  uint64_t filesz;
  uint64_t align;
};

// Reads program header i of either ELF class into the common shape.
bool read_phdr(int fd, bool is64, uint64_t phoff, uint32_t entsize, uint32_t i, Segment* s) {
  if (is64) {
    Elf64_Phdr ph;
    if (entsize < sizeof ph || !read_exact(fd, &ph, sizeof ph, phoff + uint64_t(i) * entsize)) return false;
    *s = Segment{ph.p_type, ph.p_offset, ph.p_filesz, ph.p_align};
  } else {
    Elf32_Phdr ph;
    if (entsize < sizeof ph || !read_exact(fd, &ph, sizeof ph, phoff + uint64_t(i) * entsize)) return false;
    *s = Segment{ph.p_type, ph.p_offset, ph.p_filesz, ph.p_align};
  }
  return true;
}

// Walks the notes of one PT_NOTE segment; returns the build-id length or 0.
long find_build_id_note(int fd, const Segment& seg, uint8_t id[kMaxIdLength]) {
  const uint64_t align = seg.align == 8 ? 8 : 4;
  uint64_t pos = seg.offset;
  const uint64_t end = seg.offset + seg.filesz;
  while (pos + 12 <= end) {
    uint32_t hdr[3];  // namesz, descsz, type: the same in both ELF classes
    if (!read_exact(fd, hdr, sizeof hdr, pos)) return 0;
    const uint64_t name_at = pos + 12;
    const uint64_t desc_at = name_at + align_up(hdr[0], align);
    const uint64_t next = desc_at + align_up(hdr[1], align);
    if (next > end || next <= pos) return 0;
    if (hdr[2] == NT_GNU_BUILD_ID && hdr[0] == 4 && hdr[1] > 0 && hdr[1] <= kMaxIdLength) {
      char name[4];
      if (read_exact(fd, name, 4, name_at) && !memcmp(name, "GNU", 4) && read_exact(fd, id, hdr[1], desc_at)) {
        return long(hdr[1]);
      }
    }
    pos = next;
  }
  return 0;
}

// XXH3-64 of the whole file, through a private read-only mapping (no buffer to allocate).
int hash_file(int fd, uint64_t* out) {
  struct stat st;
  long r = sys::fstat(fd, &st);
  if (r < 0) return int(r);
  if (st.st_size == 0) {
    *out = checksum("", 0);
    return 0;
  }
  long m = mmap_aside(size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  if (sys::failed(m)) return int(m);
  *out = checksum(reinterpret_cast<const void*>(m), size_t(st.st_size));
  sys::munmap(reinterpret_cast<void*>(m), size_t(st.st_size));
  return 0;
}

}  // namespace

bool ModuleIdentity::set_path(const char* p, size_t n) {
  if (n > kMaxPathLength) {
    path[0] = 0;
    path_length = 0;
    return false;
  }
  memcpy(path, p, n);
  path[n] = 0;
  path_length = uint32_t(n);
  return true;
}

long read_gnu_build_id(int fd, uint8_t id[kMaxIdLength]) {
  unsigned char ident[EI_NIDENT];
  if (!read_exact(fd, ident, sizeof ident, 0) || memcmp(ident, ELFMAG, SELFMAG) != 0 ||
      ident[EI_DATA] != ELFDATA2LSB) {
    return -ENOEXEC;
  }
  const bool is64 = ident[EI_CLASS] == ELFCLASS64;
  if (!is64 && ident[EI_CLASS] != ELFCLASS32) return -ENOEXEC;
  uint64_t phoff;
  uint32_t phentsize, phnum;
  if (is64) {
    Elf64_Ehdr eh;
    if (!read_exact(fd, &eh, sizeof eh, 0)) return -ENOEXEC;
    phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
  } else {
    Elf32_Ehdr eh;
    if (!read_exact(fd, &eh, sizeof eh, 0)) return -ENOEXEC;
    phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
  }
  // Loaded images always have program headers; the PT_NOTE segments hold .note.gnu.build-id.
  for (uint32_t i = 0; i < phnum && i < 4096; i++) {
    Segment seg;
    if (!read_phdr(fd, is64, phoff, phentsize, i, &seg)) return -ENOEXEC;
    if (seg.type != PT_NOTE) continue;
    long n = find_build_id_note(fd, seg, id);
    if (n > 0) return n;
  }
  return 0;
}

namespace {

// Reads the identity of the open file `opened` into out (whose path the caller has set).
int identify_file(const char* opened, ModuleIdentity* out, bool hash_fallback) {
  out->id_kind = IdKind::kNone;
  out->id_length = 0;
  long fd = sys::openat(AT_FDCWD, opened, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return int(fd);
  int result = 0;
  long n = read_gnu_build_id(int(fd), out->id);
  if (n > 0) {
    out->id_kind = IdKind::kGnuBuildId;
    out->id_length = uint32_t(n);
  } else if (n < 0 && n != -ENOEXEC) {
    result = int(n);
  } else {
    if (n < 0) result = int(n);
    uint64_t h = 0;
    if (hash_fallback && hash_file(int(fd), &h) == 0) {
      memcpy(out->id, &h, sizeof h);
      out->id_kind = IdKind::kContentXxh3;
      out->id_length = sizeof h;
      result = 0;
    }
  }
  sys::close(int(fd));
  return result;
}

}  // namespace

int read_module_identity(const char* path, ModuleIdentity* out, bool hash_fallback) {
  if (!out->set_path(path, strlen(path))) return -ENAMETOOLONG;
  return identify_file(path, out, hash_fallback);
}

int read_executable_identity(ModuleIdentity* out, bool hash_fallback) {
  char buf[kMaxPathLength + 1];
  long n = sys::call6(SYS_readlinkat, AT_FDCWD, (long)"/proc/self/exe", (long)buf, sizeof buf);
  if (n < 0) return int(n);
  if (size_t(n) >= sizeof buf) return -ENAMETOOLONG;
  out->set_path(buf, size_t(n));
  // The link's target may have been replaced or deleted since exec; /proc/self/exe still opens
  // the image that is actually running.
  return identify_file("/proc/self/exe", out, hash_fallback);
}

bool same_module(const ModuleIdentity& a, const ModuleIdentity& b) {
  if (a.has_id() && b.has_id() && a.id_kind == b.id_kind) {
    return a.id_length == b.id_length && !memcmp(a.id, b.id, a.id_length);
  }
  return a.path_length == b.path_length && !memcmp(a.path, b.path, a.path_length);
}

}  // namespace uffdlazy::snap
