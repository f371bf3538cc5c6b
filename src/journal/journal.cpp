// fabric::journal: streams in LMDB named databases, appended by one writer thread with group
// commit. See journal.hpp for the contract and record.hpp for the stored format.
//
// Layout of one environment: one named database per stream, "s/<name>", keyed by the 8-byte
// big-endian sequence number, so appends are LMDB's fast MDB_APPEND path.
#include <fabric/envelope.hpp>
#include <fabric/error.hpp>
#include <fabric/journal.hpp>

#include "journal/lmdb.hpp"
#include "journal/record.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

namespace fabric {

using namespace journal_detail;

namespace {

constexpr std::string_view stream_prefix = "s/";
constexpr std::size_t max_stream_name = 255;

bool valid_stream_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_stream_name;
}

std::string db_name(std::string_view stream) {
  std::string name(stream_prefix);
  name += stream;
  return name;
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

struct pending_append {
  std::string stream;
  std::string payload;
  journal::append_callback done;
};

// An append committed in periodic mode, waiting for the next fsync to complete it.
struct committed_append {
  std::uint64_t seq;
  journal::append_callback done;
};

void complete(journal::append_callback& done, result<std::uint64_t> r) noexcept {
  if (!done) return;
  try {
    done(std::move(r));
  } catch (...) {
    // A callback must not take the writer down; its owner learns nothing more here.
    std::fputs("fabric: a journal append callback threw; the exception was dropped\n", stderr);
  }
}

}  // namespace

struct journal::impl {
  std::filesystem::path dir;
  std::string registered;  // canonical path in the open registry
  journal_options options;
  journal_detail::env environment;

  // Read transactions hold this shared; growing the map needs it exclusive, because LMDB only
  // allows mdb_env_set_mapsize with no transaction active in the process.
  mutable std::shared_mutex map_mutex;
  // Stream database handles, opened once and kept for the environment's life.
  mutable std::mutex dbi_mutex;
  std::map<std::string, MDB_dbi, std::less<>> dbis;

  // The queue between appenders and the writer.
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<pending_append> queue;
  bool stopping = false;

  // Writer-thread state.
  std::unordered_map<std::string, std::uint64_t> last_seq;  // also read under dbi_mutex
  std::vector<committed_append> unsynced;
  std::thread writer;

  std::atomic<std::uint64_t> appends{0}, commits{0}, syncs{0}, largest_batch{0}, map_resizes{0};
  std::atomic<std::size_t> map_size{0};
  std::uint64_t stale_readers = 0;

  ~impl() {
    if (!registered.empty()) registry().remove(registered);
  }

  // Begins a transaction, adopting a map grown by another process if LMDB says so.
  txn begin(unsigned flags, int& rc) const {
    for (int attempt = 0; attempt < 2; ++attempt) {
      txn t(environment.get(), flags, rc);
      if (rc != MDB_MAP_RESIZED) return t;
      mdb_env_set_mapsize(environment.get(), 0);
    }
    return txn();
  }

  // The handle of an existing stream's database, opening it on first use.
  std::optional<MDB_dbi> find_dbi(std::string_view stream) const {
    std::lock_guard lock(dbi_mutex);
    if (auto it = dbis.find(stream); it != dbis.end()) return it->second;
    return std::nullopt;
  }

  // Creates the databases of streams not seen before, in a commit of their own, so that no
  // other transaction ever runs while mdb_dbi_open does (an LMDB rule).
  int create_streams(const std::vector<std::string>& names) {
    std::lock_guard lock(dbi_mutex);
    int rc = 0;
    txn t = begin(0, rc);
    if (rc != 0) return rc;
    std::vector<std::pair<std::string, MDB_dbi>> opened;
    for (const auto& name : names) {
      if (dbis.count(name) != 0) continue;
      MDB_dbi dbi = 0;
      rc = mdb_dbi_open(t.get(), db_name(name).c_str(), MDB_CREATE, &dbi);
      if (rc != 0) return rc;
      opened.emplace_back(name, dbi);
    }
    if ((rc = t.commit()) != 0) return rc;
    for (auto& [name, dbi] : opened) {
      dbis.emplace(name, dbi);
      last_seq.emplace(name, 0);
    }
    return 0;
  }

  // Opens every stream that exists and learns its last sequence number.
  void load_streams() {
    std::lock_guard lock(dbi_mutex);
    int rc = 0;
    txn t = begin(MDB_RDONLY, rc);
    if (rc != 0) throw_lmdb(rc, "cannot read the journal at " + dir.string());
    MDB_dbi main_db = 0;
    if ((rc = mdb_dbi_open(t.get(), nullptr, 0, &main_db)) != 0) throw_lmdb(rc, "cannot open the main database");
    std::vector<std::string> names;
    {
      cursor c(t.get(), main_db, rc);
      if (rc != 0) throw_lmdb(rc, "cannot list streams");
      MDB_val key{}, value{};
      for (int r = c.get(key, value, MDB_FIRST); r == 0; r = c.get(key, value, MDB_NEXT)) {
        std::string_view name(static_cast<const char*>(key.mv_data), key.mv_size);
        if (name.substr(0, stream_prefix.size()) == stream_prefix) names.emplace_back(name.substr(stream_prefix.size()));
      }
    }
    for (const auto& name : names) {
      MDB_dbi dbi = 0;
      if ((rc = mdb_dbi_open(t.get(), db_name(name).c_str(), 0, &dbi)) != 0)
        throw_lmdb(rc, "cannot open stream '" + name + "'");
      std::uint64_t last = 0;
      cursor c(t.get(), dbi, rc);
      if (rc != 0) throw_lmdb(rc, "cannot read stream '" + name + "'");
      MDB_val key{}, value{};
      if (c.get(key, value, MDB_LAST) == 0 && !decode_seq_key(to_span(key), last))
        throw error(errc::malformed, "stream '" + name + "' has a key that is not a sequence number");
      dbis.emplace(name, dbi);
      last_seq.emplace(name, last);
    }
    // Handles opened in a read-only transaction stay valid after it ends (LMDB keeps them
    // once the transaction commits).
    if ((rc = t.commit()) != 0) throw_lmdb(rc, "cannot read the journal");
  }

  int grow_map() {
    std::unique_lock lock(map_mutex);  // waits for in-flight reads to end
    const std::size_t current = map_size.load();
    if (current >= options.max_map_size) return MDB_MAP_FULL;
    const std::size_t next = std::min(current * 2, options.max_map_size);
    if (const int rc = mdb_env_set_mapsize(environment.get(), next); rc != 0) return rc;
    map_size.store(next);
    map_resizes.fetch_add(1);
    return 0;
  }

  // Writes one batch in one transaction. On success fills `seqs` (one per append, in order).
  int write_batch(std::vector<pending_append>& batch, std::vector<std::uint64_t>& seqs) {
    std::vector<std::string> fresh;
    for (const auto& a : batch)
      if (!find_dbi(a.stream) && std::find(fresh.begin(), fresh.end(), a.stream) == fresh.end())
        fresh.push_back(a.stream);
    if (!fresh.empty())
      if (const int rc = create_streams(fresh); rc != 0) return rc;

    for (;;) {
      int rc = 0;
      txn t = begin(0, rc);
      if (rc != 0) return rc;
      // Sequence numbers are assigned on a copy and kept only if the commit succeeds.
      std::unordered_map<std::string_view, std::uint64_t> next;
      seqs.clear();
      const std::int64_t now = unix_now_ns();
      for (auto& a : batch) {
        auto [it, inserted] = next.try_emplace(a.stream, 0);
        if (inserted) {
          std::lock_guard lock(dbi_mutex);
          it->second = last_seq[a.stream];
        }
        const std::uint64_t seq = ++it->second;
        std::byte key_bytes[8];
        encode_seq_key(seq, key_bytes);
        MDB_val key = to_val(key_bytes, sizeof key_bytes);
        MDB_val value{record_size(a.payload.size()), nullptr};
        const MDB_dbi dbi = *find_dbi(a.stream);
        rc = mdb_put(t.get(), dbi, &key, &value, MDB_APPEND | MDB_RESERVE);
        if (rc != 0) break;
        const std::uint8_t flags = a.payload.substr(0, envelope_tag.size()) == envelope_tag ? flag_envelope : 0;
        encode_record(seq, now, flags, a.payload, static_cast<std::byte*>(value.mv_data));
        seqs.push_back(seq);
      }
      if (rc == 0) rc = t.commit();
      if (rc == MDB_MAP_FULL) {
        t.abort();
        if (const int grown = grow_map(); grown != 0) return grown;
        continue;  // retry the whole batch in the bigger map
      }
      if (rc != 0) return rc;
      {
        std::lock_guard lock(dbi_mutex);
        for (auto& [stream, seq] : next) last_seq[std::string(stream)] = seq;
      }
      return 0;
    }
  }

  void sync_now() {
    if (const int rc = mdb_env_sync(environment.get(), 1); rc != 0) {
      std::fprintf(stderr, "fabric: journal %s: fsync failed: %s\n", dir.c_str(), mdb_strerror(rc));
      for (auto& c : unsynced) complete(c.done, lmdb_error(rc));
    } else {
      syncs.fetch_add(1, std::memory_order_relaxed);
      for (auto& c : unsynced) complete(c.done, c.seq);
    }
    unsynced.clear();
  }

  void run_writer() {
    using clock = std::chrono::steady_clock;
    const bool periodic = options.mode == durability::periodic;
    auto next_sync = clock::now() + options.sync_interval;
    std::vector<pending_append> batch;
    std::vector<std::uint64_t> seqs;
    for (;;) {
      {
        std::unique_lock lock(queue_mutex);
        if (periodic && !unsynced.empty()) {
          queue_cv.wait_until(lock, next_sync, [&] { return !queue.empty() || stopping; });
        } else {
          queue_cv.wait(lock, [&] { return !queue.empty() || stopping; });
        }
        const std::size_t n = std::min(queue.size(), options.max_batch);
        batch.clear();
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        if (batch.empty() && stopping) break;
      }
      if (!batch.empty()) {
        const int rc = write_batch(batch, seqs);
        if (rc != 0) {
          std::fprintf(stderr, "fabric: journal %s: a commit of %zu appends failed: %s\n",
                       dir.c_str(), batch.size(), mdb_strerror(rc));
          for (auto& a : batch) complete(a.done, lmdb_error(rc));
        } else {
          commits.fetch_add(1, std::memory_order_relaxed);
          appends.fetch_add(batch.size(), std::memory_order_relaxed);
          std::uint64_t largest = largest_batch.load(std::memory_order_relaxed);
          while (batch.size() > largest &&
                 !largest_batch.compare_exchange_weak(largest, batch.size())) {
          }
          for (std::size_t i = 0; i < batch.size(); ++i) {
            if (periodic)
              unsynced.push_back({seqs[i], std::move(batch[i].done)});
            else
              complete(batch[i].done, seqs[i]);
          }
        }
      }
      if (periodic && !unsynced.empty() && clock::now() >= next_sync) {
        sync_now();
        next_sync = clock::now() + options.sync_interval;
      }
    }
    if (!unsynced.empty()) sync_now();
  }
};

journal journal::open(const std::filesystem::path& dir, const journal_options& options) {
  if (options.max_batch == 0 || options.max_streams == 0 || options.map_size == 0 ||
      options.max_map_size < options.map_size || options.max_pending == 0 ||
      options.max_record_size > max_payload_size ||
      (options.mode == durability::periodic && options.sync_interval.count() <= 0))
    throw error(errc::invalid_argument, "journal_options: a count, size or interval is zero or inconsistent");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw error(errc::io_error, "cannot create the journal directory " + dir.string() + ": " + ec.message());
  const std::string canonical = std::filesystem::canonical(dir, ec).string();
  if (ec) throw error(errc::io_error, "cannot resolve " + dir.string() + ": " + ec.message());

  auto p = std::make_unique<impl>();
  p->dir = dir;
  p->options = options;
  if (!registry().add(canonical))
    throw error(errc::invalid_state, "the journal at " + canonical +
                                         " is already open in this process; share that journal object");
  p->registered = canonical;

  MDB_env* e = p->environment.get();
  int rc = mdb_env_set_maxdbs(e, options.max_streams + 8);
  if (rc == 0) rc = mdb_env_set_mapsize(e, options.map_size);
  if (rc != 0) throw_lmdb(rc, "cannot configure the journal at " + canonical);
  unsigned flags = MDB_NOTLS;
  if (options.mode != durability::sync) flags |= MDB_NOSYNC;
  if ((rc = mdb_env_open(e, canonical.c_str(), flags, 0640)) != 0)
    throw_lmdb(rc, "cannot open the journal at " + canonical);
  // A crashed process leaves its reader slots behind; they would pin old pages forever.
  int dead = 0;
  mdb_reader_check(e, &dead);
  p->stale_readers = static_cast<std::uint64_t>(dead);
  MDB_envinfo info{};
  mdb_env_info(e, &info);
  p->map_size = info.me_mapsize;

  p->load_streams();
  impl* raw = p.get();
  p->writer = std::thread([raw] { raw->run_writer(); });
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

void journal::append(std::string_view stream, std::string_view payload, append_callback done) {
  if (!valid_stream_name(stream) || payload.size() > impl_->options.max_record_size) {
    complete(done, errc::too_large);
    return;
  }
  {
    std::lock_guard lock(impl_->queue_mutex);
    if (impl_->stopping) {
      complete(done, errc::closed);
      return;
    }
    if (impl_->queue.size() >= impl_->options.max_pending) {
      complete(done, errc::back_pressure);
      return;
    }
    impl_->queue.push_back({std::string(stream), std::string(payload), std::move(done)});
  }
  impl_->queue_cv.notify_one();
}

std::future<result<std::uint64_t>> journal::append(std::string_view stream, std::string_view payload) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  append(stream, payload, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); });
  return future;
}

result<std::uint64_t> journal::append_wait(std::string_view stream, std::string_view payload) {
  return append(stream, payload).get();
}

result<journal_chunk> journal::read(std::string_view stream, std::uint64_t from_seq,
                                    std::size_t max_records, std::size_t max_bytes) const {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  journal_chunk chunk;
  chunk.next_seq = std::max<std::uint64_t>(from_seq, 1);
  const auto dbi = impl_->find_dbi(stream);
  if (!dbi || max_records == 0) return chunk;

  std::shared_lock map_lock(impl_->map_mutex);
  int rc = 0;
  txn t = impl_->begin(MDB_RDONLY, rc);
  if (rc != 0) return lmdb_error(rc);
  cursor c(t.get(), *dbi, rc);
  if (rc != 0) return lmdb_error(rc);
  std::byte key_bytes[8];
  encode_seq_key(chunk.next_seq, key_bytes);
  MDB_val key = to_val(key_bytes, sizeof key_bytes);
  MDB_val value{};
  std::size_t bytes = 0;
  for (rc = c.get(key, value, MDB_SET_RANGE); rc == 0; rc = c.get(key, value, MDB_NEXT)) {
    std::uint64_t seq = 0;
    record_view view;
    record_fault fault = decode_seq_key(to_span(key), seq) ? decode_record(seq, to_span(value), view)
                                                            : record_fault::too_short;
    if (fault != record_fault::none) {
      chunk.corruption = journal_corruption{std::string(stream), seq, std::string(to_string(fault))};
      break;
    }
    if (!chunk.records.empty() && bytes + view.payload.size() > max_bytes) break;
    bytes += view.payload.size();
    chunk.records.push_back({seq, view.timestamp_ns, std::string(view.payload)});
    chunk.next_seq = seq + 1;
    if (chunk.records.size() >= max_records) break;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc);
  return chunk;
}

result<std::uint64_t> journal::replay(std::string_view stream, std::uint64_t from_seq,
                                      const std::function<bool(const journal_record&)>& fn,
                                      const std::function<void(const journal_corruption&)>& on_corrupt) const {
  std::uint64_t delivered = 0;
  std::uint64_t next = from_seq;
  for (;;) {
    auto chunk = read(stream, next, 4096, std::size_t{4} << 20);
    if (!chunk) return chunk.error();
    for (const journal_record& r : chunk->records) {
      ++delivered;
      if (!fn(r)) return delivered;
    }
    if (chunk->corruption) {
      if (on_corrupt) on_corrupt(*chunk->corruption);
      return errc::malformed;
    }
    if (chunk->records.empty()) return delivered;
    next = chunk->next_seq;
  }
}

std::optional<std::uint64_t> journal::last_seq(std::string_view stream) const {
  std::lock_guard lock(impl_->dbi_mutex);
  auto it = impl_->last_seq.find(std::string(stream));
  if (it == impl_->last_seq.end() || it->second == 0) return std::nullopt;
  return it->second;
}

std::vector<std::string> journal::streams() const {
  std::lock_guard lock(impl_->dbi_mutex);
  std::vector<std::string> names;
  for (const auto& [name, dbi] : impl_->dbis) names.push_back(name);
  return names;
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
  return s;
}

const std::filesystem::path& journal::path() const noexcept { return impl_->dir; }
const journal_options& journal::options() const noexcept { return impl_->options; }

}  // namespace fabric
