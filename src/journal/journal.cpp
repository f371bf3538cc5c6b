// fabric::journal's facade: open (validating options, creating the data file atomically, the
// registry that refuses a second open in one process, the writer lock), close, and stats.
// The other concerns live beside it; journal_impl.hpp lists them.
#include <fabric/error.hpp>
#include <fabric/journal.hpp>

#include "journal/data_file.hpp"
#include "journal/journal_impl.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

namespace fabric {

using namespace journal_detail;

namespace {

// fsyncs directory `dir`, which makes the entries renamed into it durable.
void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw error(errc::io_error, "cannot open " + dir.string() + " to sync it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) throw error(errc::io_error, "cannot sync " + dir.string() + ": " + std::strerror(saved));
}

// Creates an empty LMDB environment as `dir`/data.mdb, so that a crash at any moment leaves
// either no data.mdb (the next open creates it again) or a whole, synced one: LMDB writes a new
// file's meta pages without syncing them, so the file is built in a temporary directory, synced,
// and renamed into place, and the rename is made durable before open goes on.
void create_data_file(const std::filesystem::path& dir) {
  const std::filesystem::path temp = dir / ".creating";
  std::error_code ec;
  std::filesystem::remove_all(temp, ec);  // what a crash inside an earlier creation left
  if (!ec) std::filesystem::create_directory(temp, ec);
  if (ec) throw error(errc::io_error, "cannot create " + temp.string() + ": " + ec.message());
  {
    env fresh;
    int rc = mdb_env_open(fresh.get(), temp.c_str(), MDB_NOTLS, 0640);
    if (rc == 0) rc = mdb_env_sync(fresh.get(), 1);
    if (rc != 0) throw_lmdb(rc, "cannot create the journal at " + dir.string());
  }
  std::filesystem::rename(temp / "data.mdb", dir / "data.mdb", ec);
  if (ec) throw error(errc::io_error, "cannot move the new journal into " + dir.string() + ": " + ec.message());
  sync_directory(dir);
  std::filesystem::remove_all(temp, ec);  // harmless if it stays: the next creation removes it
}

// LMDB must not be opened twice in one process: the second open would share lock state badly
// and its close would drop the first one's locks. Each open directory is registered here.
class open_registry {
 public:
  bool add(const std::string& dir) {
    std::lock_guard lock(mutex_);
    return dirs_.insert(dir).second;
  }
  void remove(const std::string& dir) {
    std::lock_guard lock(mutex_);
    dirs_.erase(dir);
  }

 private:
  std::mutex mutex_;
  std::set<std::string> dirs_;
};

open_registry& registry() {
  static open_registry instance;
  return instance;
}

}  // namespace

journal::impl::~impl() {
  // The environment closes first: until then another open of this directory in this process
  // (which the registry would allow once unregistered) would share LMDB's locks with it.
  environment.close();
  if (writer_lock_fd >= 0) ::close(writer_lock_fd);  // releases the lock
  if (!registered.empty()) registry().remove(registered);
}

journal journal::open(const std::filesystem::path& dir, const journal_options& options) {
  if (options.max_batch == 0 || options.max_streams == 0 || options.max_tables == 0 ||
      options.dedup_max_ids == 0 || options.map_size == 0 ||
      options.max_map_size < options.map_size || options.max_pending == 0 ||
      options.max_record_size > max_payload_size - record_header_size ||
      (options.mode == durability::periodic && options.sync_interval.count() <= 0))
    throw error(errc::invalid_argument, "journal_options: a count, size or interval is zero or inconsistent");
  std::error_code ec;
  if (options.read_only) {
    if (!std::filesystem::is_regular_file(dir / "data.mdb", ec))
      throw error(errc::invalid_argument, "no journal at " + dir.string() + " (it has no data.mdb)");
  } else {
    std::filesystem::create_directories(dir, ec);
    if (ec) throw error(errc::io_error, "cannot create the journal directory " + dir.string() + ": " + ec.message());
  }
  const std::string canonical = std::filesystem::canonical(dir, ec).string();
  if (ec) throw error(errc::io_error, "cannot resolve " + dir.string() + ": " + ec.message());

  auto p = std::make_unique<impl>();
  p->dir = dir;
  p->options = options;
  if (!registry().add(canonical))
    throw error(errc::invalid_state, "the journal at " + canonical +
                                         " is already open in this process; share that journal object");
  p->registered = canonical;
  if (!options.read_only) {
    // One writing process per journal: its in-memory sequence numbers and counts would go stale
    // under a second writer. The lock goes with the process, so a crash never leaves it held.
    const std::string lock_path = canonical + "/writer.lock";
    p->writer_lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (p->writer_lock_fd < 0)
      throw error(errc::io_error, "cannot create " + lock_path + ": " + std::strerror(errno));
    if (::flock(p->writer_lock_fd, LOCK_EX | LOCK_NB) != 0)
      throw error(errc::invalid_state, "the journal at " + canonical +
                                           " is open for writing in another process; open it with "
                                           "journal_options::read_only to read it meanwhile");
  }

  // LMDB maps the data file and trusts its meta page: a file shorter than the meta says faults
  // on the first read past its end. The file is checked first, and refused if damaged.
  const auto data = std::filesystem::path(canonical) / "data.mdb";
  if (!options.read_only && !std::filesystem::exists(data, ec)) create_data_file(canonical);
  data_file(data).check_meta();

  MDB_env* e = p->environment.get();
  // Streams and tables have budgets of their own; the internal databases come on top.
  int rc = mdb_env_set_maxdbs(e, options.max_streams + options.max_tables + internal_database_count);
  if (rc == 0) rc = mdb_env_set_mapsize(e, options.map_size);
  if (rc != 0) throw_lmdb(rc, "cannot configure the journal at " + canonical);
  unsigned flags = MDB_NOTLS;
  if (options.read_only) flags |= MDB_RDONLY;
  // periodic: each commit's pages are fdatasynced before its meta page is written, so a crash
  // undoes at most the last commit and never damages the environment. MDB_NOSYNC lets later
  // meta pages and reused pages reach the disk before what they depend on: none only.
  else if (options.mode == durability::periodic) flags |= MDB_NOMETASYNC;
  else if (options.mode == durability::none) flags |= MDB_NOSYNC;
  if ((rc = mdb_env_open(e, canonical.c_str(), flags, 0640)) != 0)
    throw_lmdb(rc, "cannot open the journal at " + canonical);
  // A crashed process leaves its reader slots behind; they would pin old pages forever.
  int dead = 0;
  mdb_reader_check(e, &dead);
  p->stale_readers = static_cast<std::uint64_t>(dead);
  MDB_envinfo info{};
  mdb_env_info(e, &info);
  p->map_size = info.me_mapsize;

  p->load_databases();
  if (!options.read_only) {
    impl* raw = p.get();
    p->writer = std::thread([raw] { raw->run_writer(); });
  }
  return journal(std::move(p));
}

journal::journal(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
journal::journal(journal&&) noexcept = default;
journal& journal::operator=(journal&& other) noexcept {
  if (this != &other) {
    journal closing(std::move(*this));
    impl_ = std::move(other.impl_);
  }
  return *this;
}

journal::~journal() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->queue_mutex);
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_one();
  if (impl_->writer.joinable()) impl_->writer.join();
}

result<void> journal::copy_to(const std::filesystem::path& dest, bool compact) const {
  // The copy reads the map through its own transaction: the map must not be resized under it.
  std::shared_lock map_lock(impl_->map_mutex);
  const int rc = mdb_env_copy2(impl_->environment.get(), dest.c_str(), compact ? MDB_CP_COMPACT : 0u);
  if (rc != 0) return lmdb_error(rc);
  return {};
}

journal_stats journal::stats() const {
  journal_stats s;
  s.appends = impl_->appends.load();
  s.commits = impl_->commits.load();
  s.syncs = impl_->syncs.load();
  s.largest_batch = impl_->largest_batch.load();
  s.map_resizes = impl_->map_resizes.load();
  s.map_size = impl_->map_size.load();
  s.stale_readers = impl_->stale_readers;
  s.expired = impl_->expired.load();
  s.delivered_scheduled = impl_->delivered_scheduled.load();
  {
    std::lock_guard lock(impl_->queue_mutex);
    s.queued = impl_->queued_records;
  }
  return s;
}

const std::filesystem::path& journal::path() const noexcept { return impl_->dir; }
const journal_options& journal::options() const noexcept { return impl_->options; }

}  // namespace fabric
