// The power-loss harness's LD_PRELOAD shim: it passes the file calls of the program under test
// through to libc and logs, in the order they happen, every write and sync to the files it tracks,
// plus the renames of those files and the syncs of the directories they were renamed into, and
// the completion marks the program reports (see event_log.hpp for the log, README.md for the
// model that replays it).
//
// Environment:
//   FABRIC_POWERLOSS_LOG    the log file (appended to); without it the shim only passes calls on
//   FABRIC_POWERLOSS_FILES  comma-separated base names of the files to track (default data.mdb)
//
// One lock is held across each tracked call and its log entry, so the log order is an order the
// calls really happened in: a mark logged after a sync was made after that sync returned.
#undef _FORTIFY_SOURCE  // the checked inline wrappers of open() and friends would clash with ours

#include "chaos/powerloss/event_log.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

namespace pl = fabric::testing::powerloss;

using open_fn = int (*)(const char*, int, ...);
using openat_fn = int (*)(int, const char*, int, ...);
using pwrite_fn = ssize_t (*)(int, const void*, size_t, off_t);
using write_fn = ssize_t (*)(int, const void*, size_t);
using writev_fn = ssize_t (*)(int, const struct iovec*, int);
using pwritev_fn = ssize_t (*)(int, const struct iovec*, int, off_t);
using pwritev2_fn = ssize_t (*)(int, const struct iovec*, int, off_t, int);
using fd_fn = int (*)(int);
using sync_file_range_fn = int (*)(int, off64_t, off64_t, unsigned int);
using msync_fn = int (*)(void*, size_t, int);
using mmap_fn = void* (*)(void*, size_t, int, int, int, off_t);
using ftruncate_fn = int (*)(int, off_t);
using lseek_fn = off_t (*)(int, off_t, int);
using dup2_fn = int (*)(int, int);
using dup3_fn = int (*)(int, int, int);
using fcntl_fn = int (*)(int, int, ...);
using sync_fn = void (*)();
using rename_fn = int (*)(const char*, const char*);
using renameat_fn = int (*)(int, const char*, int, const char*);
using renameat2_fn = int (*)(int, const char*, int, const char*, unsigned int);

struct libc_calls {
  open_fn open, open64;
  openat_fn openat, openat64;
  pwrite_fn pwrite, pwrite64;
  write_fn write;
  writev_fn writev;
  pwritev_fn pwritev, pwritev64;
  pwritev2_fn pwritev2, pwritev64v2;
  fd_fn fsync, fdatasync, close, dup, syncfs;
  sync_file_range_fn sync_file_range;
  msync_fn msync;
  mmap_fn mmap, mmap64;
  ftruncate_fn ftruncate, ftruncate64;
  lseek_fn lseek;
  dup2_fn dup2;
  dup3_fn dup3;
  fcntl_fn fcntl, fcntl64;
  sync_fn sync;
  rename_fn rename;
  renameat_fn renameat;
  renameat2_fn renameat2;
};

libc_calls libc{};
pthread_once_t resolved = PTHREAD_ONCE_INIT;
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

template <class Fn>
void find(Fn& slot, const char* name) {
  slot = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
}

// Files are told apart by device and inode, so two journals (or two names of one file) work.
struct file_identity {
  dev_t dev;
  ino_t ino;
};
constexpr std::uint32_t max_files = 256;
file_identity files[max_files];
std::uint32_t file_count = 0;
// The directories tracked files were renamed into: a sync of one makes those renames durable.
file_identity directories[max_files];
std::atomic<std::uint32_t> directory_count{0};

// Per descriptor: the tracked file's id (0 = not tracked) and the descriptor's flags.
struct descriptor {
  std::atomic<std::uint32_t> file{0};
  bool durable = false;  // O_DSYNC or O_SYNC: each write is durable when it returns
  bool append = false;   // O_APPEND: each write goes to the end of the file
};
constexpr int max_descriptors = 1 << 16;
descriptor descriptors[max_descriptors];

// Base names to track, from FABRIC_POWERLOSS_FILES.
constexpr std::size_t names_capacity = 1024;
char names[names_capacity] = "data.mdb";
bool enabled = false;
int log_fd = -1;

void resolve() {
  find(libc.open, "open");
  find(libc.open64, "open64");
  find(libc.openat, "openat");
  find(libc.openat64, "openat64");
  find(libc.pwrite, "pwrite");
  find(libc.pwrite64, "pwrite64");
  find(libc.write, "write");
  find(libc.writev, "writev");
  find(libc.pwritev, "pwritev");
  find(libc.pwritev64, "pwritev64");
  find(libc.pwritev2, "pwritev2");
  find(libc.pwritev64v2, "pwritev64v2");
  find(libc.fsync, "fsync");
  find(libc.fdatasync, "fdatasync");
  find(libc.close, "close");
  find(libc.dup, "dup");
  find(libc.syncfs, "syncfs");
  find(libc.sync_file_range, "sync_file_range");
  find(libc.msync, "msync");
  find(libc.mmap, "mmap");
  find(libc.mmap64, "mmap64");
  find(libc.ftruncate, "ftruncate");
  find(libc.ftruncate64, "ftruncate64");
  find(libc.lseek, "lseek");
  find(libc.dup2, "dup2");
  find(libc.dup3, "dup3");
  find(libc.fcntl, "fcntl");
  find(libc.fcntl64, "fcntl64");
  find(libc.sync, "sync");
  find(libc.rename, "rename");
  find(libc.renameat, "renameat");
  find(libc.renameat2, "renameat2");
  const char* log_path = std::getenv("FABRIC_POWERLOSS_LOG");
  if (log_path == nullptr || *log_path == '\0' || libc.open == nullptr) return;
  if (const char* wanted = std::getenv("FABRIC_POWERLOSS_FILES"); wanted != nullptr && *wanted != '\0') {
    std::strncpy(names, wanted, names_capacity - 1);
    names[names_capacity - 1] = '\0';
  }
  log_fd = libc.open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  enabled = log_fd >= 0;
}

void ensure_resolved() { ::pthread_once(&resolved, resolve); }

struct guard {
  guard() { ::pthread_mutex_lock(&lock); }
  ~guard() { ::pthread_mutex_unlock(&lock); }
  guard(const guard&) = delete;
  guard& operator=(const guard&) = delete;
};

// Keeps errno as the intercepted call left it, whatever logging does meanwhile.
struct errno_keeper {
  int saved = errno;
  ~errno_keeper() { errno = saved; }
};

std::uint32_t tracked_file(int fd) {
  if (!enabled || fd < 0 || fd >= max_descriptors) return 0;
  return descriptors[fd].file.load(std::memory_order_acquire);
}

bool write_fully(const struct iovec* iov, int count) {
  // Partial writes happen only on a full disk; a short log is then caught by the reader.
  std::size_t index = 0;
  struct iovec local[IOV_MAX];
  int n = 0;
  for (int i = 0; i < count; ++i) local[n++] = iov[i];
  while (index < static_cast<std::size_t>(n)) {
    const int batch = n - static_cast<int>(index) > IOV_MAX ? IOV_MAX : n - static_cast<int>(index);
    ssize_t done = libc.writev(log_fd, local + index, batch);
    if (done < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    while (done > 0 && index < static_cast<std::size_t>(n)) {
      const auto len = static_cast<std::size_t>(done);
      if (len >= local[index].iov_len) {
        done -= static_cast<ssize_t>(local[index].iov_len);
        ++index;
      } else {
        local[index].iov_base = static_cast<char*>(local[index].iov_base) + len;
        local[index].iov_len -= len;
        done = 0;
      }
    }
  }
  return true;
}

// Logs one event whose data is the first `size` bytes of `data` (at most `count` pieces, fewer
// than IOV_MAX). Called with the lock held.
void emit(pl::event_type type, std::uint16_t flags, std::uint32_t file, std::uint64_t offset,
          const struct iovec* data, int count, std::size_t size) {
  pl::event_header header{pl::event_magic, static_cast<std::uint16_t>(type), flags, file, 0, offset, size};
  struct iovec pieces[IOV_MAX];
  pieces[0] = {&header, sizeof header};
  int n = 1;
  std::size_t left = size;
  for (int i = 0; i < count && left > 0 && n < IOV_MAX; ++i) {
    const std::size_t take = data[i].iov_len < left ? data[i].iov_len : left;
    if (take == 0) continue;
    pieces[n++] = {data[i].iov_base, take};
    left -= take;
  }
  write_fully(pieces, n);
}

void emit_plain(pl::event_type type, std::uint32_t file, std::uint64_t offset, const void* data = nullptr,
                std::size_t size = 0, std::uint16_t flags = 0) {
  struct iovec one{const_cast<void*>(data), size};
  emit(type, flags, file, offset, &one, data != nullptr ? 1 : 0, data != nullptr ? size : 0);
}

bool name_is_tracked(const char* path) {
  const char* base = std::strrchr(path, '/');
  base = base != nullptr ? base + 1 : path;
  const std::size_t base_len = std::strlen(base);
  for (const char* p = names; *p != '\0';) {
    const char* end = std::strchr(p, ',');
    const std::size_t len = end != nullptr ? static_cast<std::size_t>(end - p) : std::strlen(p);
    if (len == base_len && std::strncmp(p, base, len) == 0) return true;
    if (end == nullptr) break;
    p = end + 1;
  }
  return false;
}

// The id of a file already tracked, or 0. Called with the lock held.
std::uint32_t known_id(const struct stat& st) {
  for (std::uint32_t i = 0; i < file_count; ++i)
    if (files[i].dev == st.st_dev && files[i].ino == st.st_ino) return i + 1;
  return 0;
}

// The id of a directory tracked files were renamed into; `add` registers a new one (0 when the
// table is full). Called with the lock held.
std::uint32_t directory_id(const struct stat& st, bool add) {
  const std::uint32_t count = directory_count.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < count; ++i)
    if (directories[i].dev == st.st_dev && directories[i].ino == st.st_ino) return i + 1;
  if (!add || count == max_files) return 0;
  directories[count] = {st.st_dev, st.st_ino};
  directory_count.store(count + 1, std::memory_order_release);
  return count + 1;
}

// The id of the directory `fd` is open on, when tracked files were renamed into it; else 0.
std::uint32_t synced_directory(int fd) {
  if (!enabled || directory_count.load(std::memory_order_acquire) == 0) return 0;
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  guard g;
  return directory_id(st, false);
}

std::uint32_t id_of(const struct stat& st) {
  for (std::uint32_t i = 0; i < file_count; ++i)
    if (files[i].dev == st.st_dev && files[i].ino == st.st_ino) return i + 1;
  if (file_count == max_files) return 0;
  files[file_count] = {st.st_dev, st.st_ino};
  return ++file_count;
}

// After a successful open of `path` as `fd`: starts tracking it when its name is tracked.
void opened(int fd, const char* path, int flags) {
  if (!enabled || fd < 0) return;
  errno_keeper keep;
  guard g;
  if (!name_is_tracked(path)) {
    // The number may have been a tracked file's, closed where the shim could not see it.
    if (fd < max_descriptors) descriptors[fd].file.store(0, std::memory_order_release);
    return;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  const std::uint32_t file = id_of(st);
  if (file == 0 || fd >= max_descriptors) {
    static const char why[] = "too many tracked files or descriptors";
    emit_plain(pl::event_type::unsupported, 0, 0, why, sizeof why - 1);
    return;
  }
  descriptor& d = descriptors[fd];
  d.durable = (flags & O_DSYNC) != 0;  // O_SYNC includes the O_DSYNC bit
  d.append = (flags & O_APPEND) != 0;
  d.file.store(file, std::memory_order_release);
  emit_plain(pl::event_type::open, file, 0, path, std::strlen(path), d.durable ? pl::flag_durable : 0);
  if ((flags & O_TRUNC) != 0) emit_plain(pl::event_type::truncate, file, 0);
}

void copy_tracking(int from, int to) {
  if (to < 0 || to >= max_descriptors) return;
  guard g;
  const std::uint32_t file = tracked_file(from);
  if (file != 0) {
    descriptors[to].durable = descriptors[from].durable;
    descriptors[to].append = descriptors[from].append;
  }
  descriptors[to].file.store(file, std::memory_order_release);
}

// Where a write through `fd` without an offset lands. Called with the lock held.
off_t current_offset(int fd) {
  if (descriptors[fd].append) {
    struct stat st{};
    return ::fstat(fd, &st) == 0 ? st.st_size : -1;
  }
  return libc.lseek(fd, 0, SEEK_CUR);
}

ssize_t logged_write(int fd, std::uint32_t file, const struct iovec* iov, int count, off_t offset,
                     bool durable, ssize_t (*call)(int, const struct iovec*, int, off_t, void*), void* ctx) {
  guard g;
  const off_t at = offset >= 0 ? offset : current_offset(fd);
  const ssize_t written = call(fd, iov, count, offset, ctx);
  errno_keeper keep;
  if (written > 0) {
    if (count + 1 > IOV_MAX) {
      static const char why[] = "a vectored write with too many pieces";
      emit_plain(pl::event_type::unsupported, file, 0, why, sizeof why - 1);
    } else {
      const bool sync_write = durable || descriptors[fd].durable;
      emit(pl::event_type::write, sync_write ? pl::flag_durable : 0, file, static_cast<std::uint64_t>(at), iov,
           count, static_cast<std::size_t>(written));
    }
  }
  return written;
}

void sync_files_on(dev_t dev, bool all) {
  for (std::uint32_t i = 0; i < file_count; ++i)
    if (all || files[i].dev == dev) emit_plain(pl::event_type::sync, i + 1, 0);
  const std::uint32_t count = directory_count.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < count; ++i)
    if (all || directories[i].dev == dev) emit_plain(pl::event_type::dir_sync, 0, i + 1);
}

// `path` (relative to `dirfd`) as an absolute path in `out`; false when it cannot be told.
bool absolute_path(int dirfd, const char* path, char (&out)[PATH_MAX]) {
  if (path[0] == '/') return static_cast<std::size_t>(std::snprintf(out, sizeof out, "%s", path)) < sizeof out;
  char base[PATH_MAX];
  if (dirfd == AT_FDCWD) {
    if (::getcwd(base, sizeof base) == nullptr) return false;
  } else {
    char link[64];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    const ssize_t n = ::readlink(link, base, sizeof base - 1);
    if (n <= 0) return false;
    base[n] = '\0';
  }
  return static_cast<std::size_t>(std::snprintf(out, sizeof out, "%s/%s", base, path)) < sizeof out;
}

void unsupported(std::uint32_t file, const char* why) {
  emit_plain(pl::event_type::unsupported, file, 0, why, std::strlen(why));
}

// Runs a rename (`call`) and logs it when it moves a tracked file: its new absolute path and the
// directory it now lives in. A rename the model cannot follow (an untracked file onto a tracked
// name, onto another tracked file, or an exchange) is logged as unsupported.
template <class Call>
int logged_rename(int from_dir, const char* from, int to_dir, const char* to, unsigned int flags, Call call) {
  ensure_resolved();
  if (!enabled) return call();
  guard g;
  struct stat source{}, target{};
  const bool source_known = ::fstatat(from_dir, from, &source, AT_SYMLINK_NOFOLLOW) == 0;
  const std::uint32_t file = source_known && S_ISREG(source.st_mode) ? known_id(source) : 0;
  const bool target_exists = ::fstatat(to_dir, to, &target, AT_SYMLINK_NOFOLLOW) == 0;
  const std::uint32_t replaced = target_exists ? known_id(target) : 0;
  const bool tracked_name = name_is_tracked(to);
  if (file == 0 && replaced == 0 && !tracked_name) return call();
  const int rc = call();
  errno_keeper keep;
  if (rc != 0) return rc;
  if (file == 0) {
    unsupported(replaced, "a rename of an untracked file onto a tracked one or a tracked name");
    return rc;
  }
  if ((replaced != 0 && replaced != file) || (flags & RENAME_EXCHANGE) != 0) {
    unsupported(file, "a rename of a tracked file over another tracked file, or an exchange");
    return rc;
  }
  char path[PATH_MAX], parent[PATH_MAX];
  struct stat directory{};
  if (!absolute_path(to_dir, to, path)) {
    unsupported(file, "a rename whose target path cannot be resolved");
    return rc;
  }
  std::memcpy(parent, path, sizeof parent);
  char* slash = std::strrchr(parent, '/');
  if (slash == parent) ++slash;  // the root directory
  *slash = '\0';
  const std::uint32_t dir = ::stat(parent, &directory) == 0 ? directory_id(directory, true) : 0;
  if (dir == 0) {
    unsupported(file, "a rename into a directory that cannot be found, or too many directories");
    return rc;
  }
  emit_plain(pl::event_type::rename, file, dir, path, std::strlen(path));
  return rc;
}


int open_mode(int flags, va_list args) {
  return (flags & (O_CREAT | O_TMPFILE)) != 0 ? va_arg(args, int) : 0;
}

// A sync of a directory that tracked files were renamed into makes those renames durable.
int sync_directory(int fd, fd_fn call) {
  const std::uint32_t dir = synced_directory(fd);
  if (dir == 0) return call(fd);
  guard g;
  const int rc = call(fd);
  errno_keeper keep;
  if (rc == 0) emit_plain(pl::event_type::dir_sync, 0, dir);
  return rc;
}

}  // namespace

extern "C" {

/// Records a completion mark in the log, ordered with the I/O events. Programs under test find
/// it with dlsym(RTLD_DEFAULT, "fabric_powerloss_mark").
__attribute__((visibility("default"))) void fabric_powerloss_mark(const void* data, size_t size) {
  ensure_resolved();
  if (!enabled) return;
  errno_keeper keep;
  guard g;
  emit_plain(pl::event_type::mark, 0, 0, data, size);
}

int open(const char* path, int flags, ...) {
  ensure_resolved();
  va_list args;
  va_start(args, flags);
  const int mode = open_mode(flags, args);
  va_end(args);
  const int fd = libc.open(path, flags, mode);
  opened(fd, path, flags);
  return fd;
}

int open64(const char* path, int flags, ...) {
  ensure_resolved();
  va_list args;
  va_start(args, flags);
  const int mode = open_mode(flags, args);
  va_end(args);
  const int fd = libc.open64(path, flags, mode);
  opened(fd, path, flags);
  return fd;
}

int openat(int dirfd, const char* path, int flags, ...) {
  ensure_resolved();
  va_list args;
  va_start(args, flags);
  const int mode = open_mode(flags, args);
  va_end(args);
  const int fd = libc.openat(dirfd, path, flags, mode);
  opened(fd, path, flags);
  return fd;
}

int openat64(int dirfd, const char* path, int flags, ...) {
  ensure_resolved();
  va_list args;
  va_start(args, flags);
  const int mode = open_mode(flags, args);
  va_end(args);
  const int fd = libc.openat64(dirfd, path, flags, mode);
  opened(fd, path, flags);
  return fd;
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.pwrite(fd, buf, n, offset);
  struct iovec one{const_cast<void*>(buf), n};
  return logged_write(fd, file, &one, 1, offset, false,
                      [](int f, const struct iovec* v, int, off_t o, void*) { return libc.pwrite(f, v->iov_base, v->iov_len, o); },
                      nullptr);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.pwrite64(fd, buf, n, offset);
  struct iovec one{const_cast<void*>(buf), n};
  return logged_write(fd, file, &one, 1, offset, false,
                      [](int f, const struct iovec* v, int, off_t o, void*) { return libc.pwrite64(f, v->iov_base, v->iov_len, o); },
                      nullptr);
}

ssize_t write(int fd, const void* buf, size_t n) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.write(fd, buf, n);
  struct iovec one{const_cast<void*>(buf), n};
  return logged_write(fd, file, &one, 1, -1, false,
                      [](int f, const struct iovec* v, int, off_t, void*) { return libc.write(f, v->iov_base, v->iov_len); },
                      nullptr);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.writev(fd, iov, count);
  return logged_write(fd, file, iov, count, -1, false,
                      [](int f, const struct iovec* v, int c, off_t, void*) { return libc.writev(f, v, c); }, nullptr);
}

ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t offset) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.pwritev(fd, iov, count, offset);
  return logged_write(fd, file, iov, count, offset, false,
                      [](int f, const struct iovec* v, int c, off_t o, void*) { return libc.pwritev(f, v, c, o); }, nullptr);
}

ssize_t pwritev64(int fd, const struct iovec* iov, int count, off64_t offset) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.pwritev64(fd, iov, count, offset);
  return logged_write(fd, file, iov, count, offset, false,
                      [](int f, const struct iovec* v, int c, off_t o, void*) { return libc.pwritev64(f, v, c, o); }, nullptr);
}

ssize_t pwritev2(int fd, const struct iovec* iov, int count, off_t offset, int flags) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.pwritev2(fd, iov, count, offset, flags);
  const bool durable = (flags & (RWF_DSYNC | RWF_SYNC)) != 0;
  return logged_write(fd, file, iov, count, offset, durable,
                      [](int f, const struct iovec* v, int c, off_t o, void* ctx) {
                        return libc.pwritev2(f, v, c, o, *static_cast<int*>(ctx));
                      },
                      &flags);
}

ssize_t pwritev64v2(int fd, const struct iovec* iov, int count, off64_t offset, int flags) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.pwritev64v2(fd, iov, count, offset, flags);
  const bool durable = (flags & (RWF_DSYNC | RWF_SYNC)) != 0;
  return logged_write(fd, file, iov, count, offset, durable,
                      [](int f, const struct iovec* v, int c, off_t o, void* ctx) {
                        return libc.pwritev64v2(f, v, c, o, *static_cast<int*>(ctx));
                      },
                      &flags);
}

int fsync(int fd) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return sync_directory(fd, libc.fsync);
  guard g;
  const int rc = libc.fsync(fd);
  errno_keeper keep;
  if (rc == 0) emit_plain(pl::event_type::sync, file, 0);
  return rc;
}

int fdatasync(int fd) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return sync_directory(fd, libc.fdatasync);
  guard g;
  const int rc = libc.fdatasync(fd);
  errno_keeper keep;
  if (rc == 0) emit_plain(pl::event_type::sync, file, 0);
  return rc;
}

int syncfs(int fd) {
  ensure_resolved();
  if (!enabled) return libc.syncfs(fd);
  guard g;
  const int rc = libc.syncfs(fd);
  errno_keeper keep;
  struct stat st{};
  if (rc == 0 && ::fstat(fd, &st) == 0) sync_files_on(st.st_dev, false);
  return rc;
}

void sync() {
  ensure_resolved();
  if (!enabled) return libc.sync();
  guard g;
  libc.sync();
  sync_files_on(0, true);
}

int sync_file_range(int fd, off64_t offset, off64_t n, unsigned int flags) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.sync_file_range(fd, offset, n, flags);
  guard g;
  const int rc = libc.sync_file_range(fd, offset, n, flags);
  errno_keeper keep;
  if (rc == 0) emit_plain(pl::event_type::range_hint, file, static_cast<std::uint64_t>(offset));
  return rc;
}

int msync(void* address, size_t n, int flags) {
  ensure_resolved();
  if (!enabled) return libc.msync(address, n, flags);
  guard g;
  const int rc = libc.msync(address, n, flags);
  errno_keeper keep;
  if (rc == 0) emit_plain(pl::event_type::msync, 0, reinterpret_cast<std::uintptr_t>(address));
  return rc;
}

void* mmap(void* address, size_t n, int prot, int flags, int fd, off_t offset) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file != 0 && (prot & PROT_WRITE) != 0 && (flags & MAP_SHARED) != 0) {
    // Stores through such a map reach the file unseen: the log could not be trusted.
    errno_keeper keep;
    guard g;
    static const char why[] = "a writable shared mapping of a tracked file";
    emit_plain(pl::event_type::unsupported, file, 0, why, sizeof why - 1);
  }
  return libc.mmap(address, n, prot, flags, fd, offset);
}

void* mmap64(void* address, size_t n, int prot, int flags, int fd, off64_t offset) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file != 0 && (prot & PROT_WRITE) != 0 && (flags & MAP_SHARED) != 0) {
    errno_keeper keep;
    guard g;
    static const char why[] = "a writable shared mapping of a tracked file";
    emit_plain(pl::event_type::unsupported, file, 0, why, sizeof why - 1);
  }
  return libc.mmap64(address, n, prot, flags, fd, offset);
}

int ftruncate(int fd, off_t length) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.ftruncate(fd, length);
  guard g;
  const int rc = libc.ftruncate(fd, length);
  errno_keeper keep;
  if (rc == 0) emit_plain(pl::event_type::truncate, file, static_cast<std::uint64_t>(length));
  return rc;
}

int ftruncate64(int fd, off64_t length) {
  ensure_resolved();
  const std::uint32_t file = tracked_file(fd);
  if (file == 0) return libc.ftruncate64(fd, length);
  guard g;
  const int rc = libc.ftruncate64(fd, length);
  errno_keeper keep;
  if (rc == 0) emit_plain(pl::event_type::truncate, file, static_cast<std::uint64_t>(length));
  return rc;
}

int close(int fd) {
  ensure_resolved();
  if (tracked_file(fd) == 0) return libc.close(fd);
  guard g;
  descriptors[fd].file.store(0, std::memory_order_release);
  return libc.close(fd);
}

// A duplicate of a tracked descriptor writes to the same file: it is tracked too.
int dup(int fd) {
  ensure_resolved();
  const int copy = libc.dup(fd);
  if (copy >= 0 && enabled) copy_tracking(fd, copy);
  return copy;
}

int dup2(int fd, int to) {
  ensure_resolved();
  const int copy = libc.dup2(fd, to);
  if (copy >= 0 && enabled) copy_tracking(fd, copy);
  return copy;
}

int dup3(int fd, int to, int flags) {
  ensure_resolved();
  const int copy = libc.dup3(fd, to, flags);
  if (copy >= 0 && enabled) copy_tracking(fd, copy);
  return copy;
}

// fcntl takes one optional argument, an int or a pointer; like libc, pass it on as a pointer.
int fcntl(int fd, int cmd, ...) {
  ensure_resolved();
  va_list args;
  va_start(args, cmd);
  void* arg = va_arg(args, void*);
  va_end(args);
  const int rc = libc.fcntl(fd, cmd, arg);
  if (rc >= 0 && enabled && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) copy_tracking(fd, rc);
  return rc;
}

int fcntl64(int fd, int cmd, ...) {
  ensure_resolved();
  va_list args;
  va_start(args, cmd);
  void* arg = va_arg(args, void*);
  va_end(args);
  const int rc = libc.fcntl64(fd, cmd, arg);
  if (rc >= 0 && enabled && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) copy_tracking(fd, rc);
  return rc;
}

int rename(const char* from, const char* to) {
  return logged_rename(AT_FDCWD, from, AT_FDCWD, to, 0, [&] { return libc.rename(from, to); });
}

int renameat(int from_dir, const char* from, int to_dir, const char* to) {
  return logged_rename(from_dir, from, to_dir, to, 0, [&] { return libc.renameat(from_dir, from, to_dir, to); });
}

int renameat2(int from_dir, const char* from, int to_dir, const char* to, unsigned int flags) {
  return logged_rename(from_dir, from, to_dir, to, flags,
                       [&] { return libc.renameat2(from_dir, from, to_dir, to, flags); });
}

}  // extern "C"
