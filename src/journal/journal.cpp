// fabric::journal: streams in LMDB named databases, appended by one writer thread with group
// commit. See journal.hpp for the contract and record.hpp for the stored format.
//
// Layout of one environment: one named database per stream, "s/<name>", keyed by the 8-byte
// big-endian sequence number, so appends are LMDB's fast MDB_APPEND path.
#include <fabric/envelope.hpp>
#include <fabric/error.hpp>
#include <fabric/journal.hpp>

#include "journal/data_file.hpp"
#include "journal/lmdb.hpp"
#include "journal/record.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <span>
#include <thread>
#include <unordered_map>

namespace fabric {

using namespace journal_detail;

namespace {

constexpr std::string_view stream_prefix = "s/";
constexpr std::size_t max_stream_name = 255;

// Names become C strings for mdb_dbi_open, so a NUL byte would cut them short and alias another
// stream: refused, like empty and over-long names.
bool valid_stream_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_stream_name && name.find('\0') == std::string_view::npos;
}

// now + d, saturating at the int64 range: a huge TTL or age means "never", not "long ago".
std::int64_t add_saturating(std::int64_t now, std::int64_t d) noexcept {
  if (d > 0 && now > INT64_MAX - d) return INT64_MAX;
  if (d < 0 && now < INT64_MIN - d) return INT64_MIN;
  return now + d;
}

std::int64_t to_ns_saturating(std::chrono::seconds s) noexcept {
  constexpr std::int64_t limit = INT64_MAX / 1'000'000'000;
  if (s.count() >= limit) return INT64_MAX;
  if (s.count() <= -limit) return INT64_MIN;
  return static_cast<std::int64_t>(s.count()) * 1'000'000'000;
}

std::string db_name(std::string_view stream) {
  std::string name(stream_prefix);
  name += stream;
  return name;
}

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

using txn_function = std::function<void(journal_txn&)>;
using txn_callback = std::function<void(int rc, std::exception_ptr failure)>;

// What appenders and transact() hand to the writer: an append, or a transaction to run alone.
struct pending_append {
  std::string stream{};
  std::string payload{};
  journal::append_callback done{};
  // Set for a transaction; kept behind a pointer so the common entry, an append, stays small.
  struct transaction {
    txn_function fn;
    txn_callback done;
  };
  std::unique_ptr<transaction> txn{};
  std::int64_t ttl_ns = 0;      // > 0: the record expires this long after its append
  std::int64_t deliver_at = 0;  // > 0: held until then (schedule)
};

// An append committed in periodic mode, waiting for the next fsync to complete it.
struct committed_append {
  std::uint64_t seq;
  journal::append_callback done;
};

constexpr std::string_view table_prefix = "t/";
constexpr std::string_view cursors_db = "x/cursors";
constexpr std::string_view dedup_marks_db = "x/dedup-marks";    // producer, stream -> mark
constexpr std::string_view dedup_window_db = "x/dedup-window";  // producer, stream, seq -> id, ts
constexpr std::string_view dedup_ids_db = "x/dedup-ids";        // producer, id -> ts
constexpr std::string_view dedup_times_db = "x/dedup-times";    // ts, producer, id -> (none)
constexpr std::string_view retention_db = "x/retention";        // stream -> msgpack policy
constexpr std::string_view stream_bytes_db = "x/stream-bytes";  // stream -> payload bytes, u64 LE
constexpr std::string_view expiry_db = "x/expiry";        // time, stream, seq -> (none)
constexpr std::string_view scheduled_db = "x/scheduled";  // time, id -> msgpack [stream, payload]
constexpr std::string_view dlq_db = "x/dlq";              // id -> msgpack dead letter
constexpr std::string_view counters_db = "x/counters";    // name -> u64 LE
// stream -> last sequence ever appended, u64 LE. A stream's last record can be removed (TTL,
// retention, dead-lettering); without this a reopened journal would hand its number out again.
constexpr std::string_view stream_last_db = "x/stream-last";
constexpr unsigned internal_database_count = 16;  // the x/ databases above, with room to grow

void put_u64_le(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64_be(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_u64_le(const void* p) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}
std::uint64_t get_u64_be(const void* p) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
  return v;
}
void put_short_string(std::string& out, std::string_view s) {
  out.push_back(static_cast<char>(s.size()));
  out.append(s);
}

// Keys of the dedup databases. Length prefixes keep (producer, stream) pairs unambiguous.
std::string dedup_mark_key(const dedup_key& k) {
  std::string key;
  put_short_string(key, k.producer);
  put_short_string(key, k.stream);
  return key;
}
std::string dedup_id_key(const dedup_key& k) {
  std::string key;
  put_short_string(key, k.producer);
  key.append(reinterpret_cast<const char*>(k.id.bytes.data()), k.id.bytes.size());
  return key;
}

void check_dedup_key(const dedup_key& k) {
  // Keys of the dedup databases carry both names plus 10 bytes, within LMDB's 511-byte limit.
  if (k.producer.empty() || k.producer.size() > 255 || k.stream.size() > 255 ||
      k.producer.size() + k.stream.size() > 500)
    throw error(errc::invalid_argument,
                "dedup_key: producer must be 1-255 bytes, stream 0-255, and both together at most 500");
  if (k.seq == 0 && k.id.is_zero())
    throw error(errc::invalid_argument, "dedup_key: needs a sequence number, an id, or both");
}

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

// An LMDB failure inside a transaction, carried out of user code to the writer loop.
struct lmdb_failure {
  int rc;
};

// The handles of the dedup databases.
struct dedup_dbs {
  MDB_dbi marks = 0;
  MDB_dbi window = 0;
  MDB_dbi ids = 0;
  MDB_dbi times = 0;
};

// The state behind a journal_txn: the LMDB transaction and what it created.
struct journal_txn::state {
  journal::impl& owner;
  MDB_txn* txn;
  std::int64_t now_ns;
  // Databases opened (created) in this transaction; published to readers after it commits.
  std::vector<std::pair<std::string, MDB_dbi>> opened;
  // Per stream this transaction appends to: its database, last sequence and bytes added. Looked
  // up once per stream per transaction (with a one-entry cache for runs of the same stream), so
  // an append costs no lock, no map of the journal and no string building.
  struct stream_slot {
    MDB_dbi dbi = 0;
    std::uint64_t last = 0;
    std::int64_t bytes = 0;
  };
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, stream_slot, name_hash, std::equal_to<>> streams{};
  std::string_view cached_name{};
  stream_slot* cached = nullptr;
  // Payload bytes added (appends) and removed (retention) per stream.
  std::unordered_map<std::string, std::int64_t> bytes_delta{};
  bool changed = false;  // anything written; a maintenance pass that changed nothing aborts
  std::int64_t timed_delta = 0;  // entries added to / removed from the expiry and schedule indexes
  std::uint64_t expired = 0;
  std::uint64_t delivered = 0;
};

struct journal::impl {
  std::filesystem::path dir;
  std::string registered;  // canonical path in the open registry
  journal_options options;
  journal_detail::env environment;

  // Read transactions hold this shared; growing the map needs it exclusive, because LMDB only
  // allows mdb_env_set_mapsize with no transaction active in the process.
  mutable std::shared_mutex map_mutex;
  // Database handles by full name ("s/<stream>", "t/<table>", "x/..."), opened once and kept.
  // Only the writer thread (and open()) calls mdb_dbi_open, so no two transactions ever run it
  // at once, as LMDB requires; a handle is published here only after its transaction commits.
  mutable std::mutex dbi_mutex;
  std::map<std::string, MDB_dbi, std::less<>> dbis;
  std::unordered_map<std::string, std::uint64_t> last_seq;  // per stream; under dbi_mutex
  std::unordered_map<std::string, std::uint64_t> stream_bytes;  // payload bytes; under dbi_mutex
  std::map<std::string, retention_policy, std::less<>> policies;  // under dbi_mutex
  std::int64_t last_ts = 0;  // writer: append times never go backwards
  std::uint64_t timed_entries = 0;  // writer: entries in the expiry and schedule indexes
  std::atomic<std::uint64_t> expired{0}, delivered_scheduled{0};

  // The queue between appenders and the writer.
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::vector<pending_append> queue;
  bool stopping = false;
  bool replan = false;  // the writer must recompute its wake-up time (a policy changed)

  // Writer-thread state.
  std::vector<committed_append> unsynced;
  std::vector<std::pair<txn_callback, std::exception_ptr>> unsynced_txns;
  std::thread writer;

  std::atomic<std::uint64_t> appends{0}, commits{0}, syncs{0}, largest_batch{0}, map_resizes{0};
  std::atomic<std::size_t> map_size{0};
  std::uint64_t stale_readers = 0;

  int writer_lock_fd = -1;  // flock'ed for the journal's life when opened for writing

  ~impl() {
    // The environment closes first: until then another open of this directory in this process
    // (which the registry would allow once unregistered) would share LMDB's locks with it.
    environment.close();
    if (writer_lock_fd >= 0) ::close(writer_lock_fd);  // releases the lock
    if (!registered.empty()) registry().remove(registered);
  }

  bool read_only() const noexcept { return options.read_only; }

  // Read-only: a database created by the writing process after this one opened. Opened in a
  // read transaction of its own under dbi_mutex, as LMDB requires for mdb_dbi_open.
  std::optional<MDB_dbi> refresh_dbi(std::string_view full_name) const {
    std::lock_guard lock(dbi_mutex);
    if (auto it = dbis.find(full_name); it != dbis.end()) return it->second;
    int rc = 0;
    auto reading = begin_read(rc);
    if (!reading) return std::nullopt;
    txn& t = reading->t;
    MDB_dbi dbi = 0;
    const std::string name(full_name);
    if (mdb_dbi_open(t.get(), name.c_str(), 0, &dbi) != 0) return std::nullopt;
    if (t.commit() != 0) return std::nullopt;
    const_cast<impl*>(this)->dbis.emplace(name, dbi);
    return dbi;
  }

  // Read-only: the names of the streams on disk now.
  std::vector<std::string> stream_names_on_disk() const {
    std::vector<std::string> names;
    int rc = 0;
    auto reading = begin_read(rc);
    if (!reading) return names;
    txn& t = reading->t;
    MDB_dbi main_db = 0;
    if (mdb_dbi_open(t.get(), nullptr, 0, &main_db) != 0) return names;
    journal_detail::cursor c(t.get(), main_db, rc);
    if (rc != 0) return names;
    MDB_val key{}, value{};
    for (int r = c.get(key, value, MDB_FIRST); r == 0; r = c.get(key, value, MDB_NEXT)) {
      std::string_view name(static_cast<const char*>(key.mv_data), key.mv_size);
      if (name.substr(0, stream_prefix.size()) == stream_prefix) names.emplace_back(name.substr(stream_prefix.size()));
    }
    return names;
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

  // A read transaction that holds the map fenced against resizing for its whole life.
  struct read_txn {
    std::shared_lock<std::shared_mutex> map_lock;
    txn t;
  };

  // Begins a read transaction. When the writing process has grown the map, LMDB asks this one to
  // adopt the new size, which is only allowed with no transaction active in the process: the
  // shared lock is then traded for the exclusive one while the size is adopted.
  std::optional<read_txn> begin_read(int& rc) const {
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::shared_lock shared(map_mutex);
      txn t(environment.get(), MDB_RDONLY, rc);
      if (rc == 0) return read_txn{std::move(shared), std::move(t)};
      if (rc != MDB_MAP_RESIZED) return std::nullopt;
      shared.unlock();
      std::unique_lock exclusive(map_mutex);
      if ((rc = mdb_env_set_mapsize(environment.get(), 0)) != 0) return std::nullopt;
      MDB_envinfo info{};
      if (mdb_env_info(environment.get(), &info) == 0) const_cast<impl*>(this)->map_size = info.me_mapsize;
    }
    return std::nullopt;
  }

  std::optional<MDB_dbi> find_dbi(std::string_view full_name) const {
    {
      std::lock_guard lock(dbi_mutex);
      if (auto it = dbis.find(full_name); it != dbis.end()) return it->second;
    }
    if (read_only()) return refresh_dbi(full_name);
    return std::nullopt;
  }

  // Refuses to create a stream or table past its budget, before LMDB is touched, so the
  // transaction stays usable and only this append or this transaction fails.
  void check_budget(const journal_txn::state& st, std::string_view full_name) const {
    const bool stream = full_name.substr(0, stream_prefix.size()) == stream_prefix;
    const bool table = full_name.substr(0, table_prefix.size()) == table_prefix;
    if (!stream && !table) return;
    const std::string_view prefix = stream ? stream_prefix : table_prefix;
    std::size_t count = 0;
    {
      std::lock_guard lock(dbi_mutex);
      for (const auto& [name, dbi] : dbis) if (name.rfind(prefix, 0) == 0) ++count;
    }
    for (const auto& [name, dbi] : st.opened) if (name.rfind(prefix, 0) == 0) ++count;
    if (count >= (stream ? options.max_streams : options.max_tables))
      throw error(errc::too_large, std::string(stream ? "the journal holds max_streams streams already"
                                                      : "the journal holds max_tables tables already"));
  }

  // The handle of database `full_name` for use in the writer's transaction `st`, creating the
  // database when `create` is set. Returns nullopt when it does not exist and create is unset.
  std::optional<MDB_dbi> dbi_for(journal_txn::state& st, std::string_view full_name, bool create) {
    if (auto known = find_dbi(full_name)) return known;
    for (const auto& [name, dbi] : st.opened)
      if (name == full_name) return dbi;
    if (create) check_budget(st, full_name);
    MDB_dbi dbi = 0;
    const std::string name(full_name);
    const int rc = mdb_dbi_open(st.txn, name.c_str(), create ? MDB_CREATE : 0u, &dbi);
    if (rc == MDB_NOTFOUND && !create) return std::nullopt;
    if (rc != 0) throw lmdb_failure(rc);
    st.opened.emplace_back(name, dbi);
    return dbi;
  }

  // The dedup databases; nullopt only for a read-only journal written before they existed.
  std::optional<dedup_dbs> dedup_dbis() const {
    const auto marks = find_dbi(dedup_marks_db);
    const auto window = find_dbi(dedup_window_db);
    const auto ids = find_dbi(dedup_ids_db);
    const auto times = find_dbi(dedup_times_db);
    if (!marks || !window || !ids || !times) return std::nullopt;
    return dedup_dbs{*marks, *window, *ids, *times};
  }

  // Runs `fn(txn, dbi)` in a short read transaction over database `full_name`; returns `fn`'s
  // result, or a default one when the database does not exist or LMDB fails.
  template <class F>
  auto read_in(std::string_view full_name, F fn) const -> decltype(fn(nullptr, MDB_dbi{})) {
    const auto dbi = find_dbi(full_name);
    if (!dbi) return {};
    int rc = 0;
    auto reading = begin_read(rc);
    if (!reading) return {};
    txn& t = reading->t;
    return fn(t.get(), *dbi);
  }

  // The last sequence recorded for `stream` in x/stream-last (0 if none). Only during open, when
  // the databases are being loaded under dbi_mutex.
  std::uint64_t stored_last_seq(MDB_txn* t, const std::string& stream) const {
    auto it = dbis.find(stream_last_db);
    if (it == dbis.end()) {
      MDB_dbi dbi = 0;
      if (mdb_dbi_open(t, std::string(stream_last_db).c_str(), 0, &dbi) != 0) return 0;
      it = const_cast<impl*>(this)->dbis.emplace(std::string(stream_last_db), dbi).first;
    }
    MDB_val k = to_val(stream.data(), stream.size());
    MDB_val v{};
    if (mdb_get(t, it->second, &k, &v) != 0 || v.mv_size != 8) return 0;
    return get_u64_le(v.mv_data);
  }

  // Payload bytes per stream, persisted; counted once for streams that predate the count.
  void load_stream_bytes(MDB_txn* t) {
    const MDB_dbi bytes_dbi = dbis.at(std::string(stream_bytes_db));
    for (const auto& [stream, last] : last_seq) {
      MDB_val k = to_val(stream.data(), stream.size());
      MDB_val v{};
      if (mdb_get(t, bytes_dbi, &k, &v) == 0 && v.mv_size == 8) {
        stream_bytes[stream] = get_u64_le(v.mv_data);
        continue;
      }
      std::uint64_t total = 0;
      int rc = 0;
      journal_detail::cursor c(t, dbis.at(db_name(stream)), rc);
      MDB_val key{}, value{};
      for (int r = rc == 0 ? c.get(key, value, MDB_FIRST) : rc; r == 0; r = c.get(key, value, MDB_NEXT))
        total += value.mv_size >= record_header_size ? value.mv_size - record_header_size : 0;
      stream_bytes[stream] = total;
      std::string encoded;
      put_u64_le(encoded, total);
      MDB_val ev = to_val(encoded.data(), encoded.size());
      mdb_put(t, bytes_dbi, &k, &ev, 0);
    }
  }

  void load_policies(MDB_txn* t) {
    int rc = 0;
    journal_detail::cursor c(t, dbis.at(std::string(retention_db)), rc);
    if (rc != 0) return;
    MDB_val key{}, value{};
    for (int r = c.get(key, value, MDB_FIRST); r == 0; r = c.get(key, value, MDB_NEXT)) {
      auto decoded = unpack<std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::vector<std::string>>>(
          to_span(value));
      if (!decoded) continue;  // an unreadable policy is ignored, not guessed at
      retention_policy p;
      p.max_records = std::get<0>(*decoded);
      p.max_bytes = std::get<1>(*decoded);
      p.max_age = std::chrono::seconds(std::get<2>(*decoded));
      p.ack_cursors = std::get<3>(*decoded);
      policies.emplace(std::string(static_cast<const char*>(key.mv_data), key.mv_size), std::move(p));
    }
  }

  bool has_age_limits() const {
    std::lock_guard lock(dbi_mutex);
    return std::any_of(policies.begin(), policies.end(),
                       [](const auto& p) { return p.second.max_age.count() > 0; });
  }

  // Puts `key` -> `value` in database `name` of the writer's transaction. Throws lmdb_failure.
  void put_in(journal_txn::state& st, std::string_view name, std::string_view key, std::string_view value) {
    MDB_val k = to_val(key.data(), key.size());
    MDB_val v = to_val(value.data(), value.size());
    if (const int rc = mdb_put(st.txn, *find_dbi(name), &k, &v, 0); rc != 0) throw lmdb_failure{rc};
    st.changed = true;
  }

  // The next value of counter `name` (1, 2, 3, ...), kept in the transaction.
  std::uint64_t next_counter(journal_txn::state& st, std::string_view name) {
    MDB_val k = to_val(name.data(), name.size());
    MDB_val v{};
    const std::uint64_t next =
        (mdb_get(st.txn, *find_dbi(counters_db), &k, &v) == 0 && v.mv_size == 8 ? get_u64_le(v.mv_data) : 0) + 1;
    std::string encoded;
    put_u64_le(encoded, next);
    put_in(st, counters_db, name, encoded);
    return next;
  }

  void add_expiry(journal_txn::state& st, std::string_view stream, std::uint64_t seq, std::int64_t ttl_ns) {
    std::string key;
    put_u64_be(key, static_cast<std::uint64_t>(add_saturating(st.now_ns, ttl_ns)) ^ (std::uint64_t{1} << 63));
    put_short_string(key, stream);
    put_u64_be(key, seq);
    put_in(st, expiry_db, key, {});
    ++st.timed_delta;
  }

  std::uint64_t add_scheduled(journal_txn::state& st, std::string_view stream, std::string_view payload,
                              std::int64_t deliver_at) {
    const std::uint64_t id = next_counter(st, "scheduled");
    std::string key;
    put_u64_be(key, static_cast<std::uint64_t>(deliver_at) ^ (std::uint64_t{1} << 63));
    put_u64_be(key, id);
    const frame value = pack(std::make_tuple(std::string(stream), std::string(payload)));
    put_in(st, scheduled_db, key, view(value));
    ++st.timed_delta;
    return id;
  }

  // Puts a payload that never made it into a stream into the dead-letter queue.
  void dead_letter_raw(journal_txn::state& st, const std::string& stream, const std::string& reason,
                       const std::string& payload) {
    const std::uint64_t id = next_counter(st, "dead-letters");
    std::string key;
    put_u64_be(key, id);
    const frame value = pack(std::make_tuple(stream, std::uint64_t{0}, reason, std::uint32_t{0}, st.now_ns, payload));
    put_in(st, dlq_db, key, fabric::view(value));
  }

  // Removes record `seq` of `stream`, if present. Returns its payload size, or -1.
  std::int64_t remove_record(journal_txn::state& st, const std::string& stream, std::uint64_t seq) {
    const auto dbi = dbi_for(st, db_name(stream), false);
    if (!dbi) return -1;
    std::byte key_bytes[8];
    encode_seq_key(seq, key_bytes);
    MDB_val k = to_val(key_bytes, sizeof key_bytes);
    MDB_val v{};
    if (mdb_get(st.txn, *dbi, &k, &v) != 0) return -1;
    const auto size = static_cast<std::int64_t>(v.mv_size >= record_header_size ? v.mv_size - record_header_size : 0);
    if (const int rc = mdb_del(st.txn, *dbi, &k, nullptr); rc != 0) throw lmdb_failure{rc};
    st.bytes_delta[stream] -= size;
    st.changed = true;
    return size;
  }

  // Removes expired records and appends scheduled ones that are due, a bounded amount per commit.
  void run_timed(journal_txn::state& st) {
    if (timed_entries == 0) return;
    const std::uint64_t now_key = static_cast<std::uint64_t>(st.now_ns) ^ (std::uint64_t{1} << 63);
    int rc = 0;
    {
      journal_detail::cursor c(st.txn, *find_dbi(expiry_db), rc);
      MDB_val key{}, value{};
      for (int budget = 1024; rc == 0 && budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
        const auto* bytes = static_cast<const char*>(key.mv_data);
        const bool well_formed = key.mv_size >= 8 + 1 + 8 &&
                                 key.mv_size == 8 + 1 + static_cast<unsigned char>(bytes[8]) + 8u;
        if (!well_formed) {  // damaged: drop it, or it would stall every expiry behind it
          if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
          --st.timed_delta;
          st.changed = true;
          continue;
        }
        if (get_u64_be(bytes) > now_key) break;
        const auto len = static_cast<unsigned char>(bytes[8]);
        const std::string stream(bytes + 9, len);
        const std::uint64_t seq = get_u64_be(bytes + 9 + len);
        if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
        --st.timed_delta;
        st.changed = true;
        if (remove_record(st, stream, seq) >= 0) ++st.expired;
      }
    }
    {
      journal_detail::cursor c(st.txn, *find_dbi(scheduled_db), rc);
      MDB_val key{}, value{};
      for (int budget = 1024; rc == 0 && budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
        if (key.mv_size != 16) {  // damaged: drop it, or it would stall every schedule behind it
          if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
          --st.timed_delta;
          st.changed = true;
          continue;
        }
        if (get_u64_be(key.mv_data) > now_key) break;
        auto item = unpack<std::tuple<std::string, std::string>>(to_span(value));
        std::string stream, payload;
        if (item) std::tie(stream, payload) = std::move(*item);
        if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
        --st.timed_delta;
        st.changed = true;
        if (!item) continue;  // unreadable: dropped, not guessed at
        // A record that cannot be delivered goes to the dead-letter queue with the reason,
        // rather than failing this commit and every one after it.
        if (!valid_stream_name(stream)) {
          dead_letter_raw(st, stream, "scheduled for a stream name that is not valid", payload);
          continue;
        }
        try {
          append_in(st, stream, payload);
        } catch (const error& e) {
          dead_letter_raw(st, stream, std::string("scheduled delivery failed: ") + e.what(), payload);
          continue;
        }
        ++st.delivered;
      }
    }
  }

  // Trims streams past their retention policy, at most `budget` records per stream per commit.
  void apply_retention(journal_txn::state& st) {
    std::vector<std::pair<std::string, retention_policy>> todo;
    {
      std::lock_guard lock(dbi_mutex);
      for (const auto& [stream, policy] : policies) todo.emplace_back(stream, policy);
    }
    const MDB_dbi cursors = *find_dbi(cursors_db);
    for (auto& [stream, policy] : todo) {
      const auto dbi = find_dbi(db_name(stream));
      if (!dbi) continue;
      MDB_stat stat{};
      if (mdb_stat(st.txn, *dbi, &stat) != 0 || stat.ms_entries == 0) continue;
      std::uint64_t records = stat.ms_entries;
      std::int64_t bytes;
      {
        std::lock_guard lock(dbi_mutex);
        bytes = static_cast<std::int64_t>(stream_bytes[stream]);
      }
      bytes += st.bytes_delta[stream];
      std::uint64_t acked = UINT64_MAX;
      for (const auto& name : policy.ack_cursors) {
        MDB_val k = to_val(name.data(), name.size());
        MDB_val v{};
        acked = std::min(acked, mdb_get(st.txn, cursors, &k, &v) == 0 && v.mv_size == 8 ? get_u64_le(v.mv_data) : 0);
      }
      const std::int64_t oldest_kept =
          policy.max_age.count() > 0 ? add_saturating(st.now_ns, -to_ns_saturating(policy.max_age)) : INT64_MIN;
      int rc = 0;
      journal_detail::cursor c(st.txn, *dbi, rc);
      if (rc != 0) continue;
      MDB_val key{}, value{};
      for (int budget = 1024; budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
        std::uint64_t seq = 0;
        decode_seq_key(to_span(key), seq);
        record_view view;
        const bool readable = decode_record(stream, seq, to_span(value), view) == record_fault::none;
        const auto size = static_cast<std::int64_t>(value.mv_size >= record_header_size ? value.mv_size - record_header_size : 0);
        const bool over = (policy.max_records != 0 && records > policy.max_records) ||
                          (policy.max_bytes != 0 && bytes > static_cast<std::int64_t>(policy.max_bytes)) ||
                          (readable && view.timestamp_ns < oldest_kept);
        if (!over || seq > acked) break;
        if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
        --records;
        bytes -= size;
        st.bytes_delta[stream] -= size;
        st.changed = true;
      }
    }
  }

  // Records the last sequence of every stream this transaction appended to.
  void persist_last_seqs(journal_txn::state& st) {
    for (const auto& [stream, slot] : st.streams) {
      std::string encoded;
      put_u64_le(encoded, slot.last);
      put_in(st, stream_last_db, stream, encoded);
    }
  }

  // Writes the per-stream byte counts this transaction changed.
  void persist_stream_bytes(journal_txn::state& st) {
    const MDB_dbi bytes_dbi = *find_dbi(stream_bytes_db);
    std::lock_guard lock(dbi_mutex);
    for (const auto& [stream, delta] : st.bytes_delta) {
      if (delta == 0) continue;
      const auto total = static_cast<std::uint64_t>(static_cast<std::int64_t>(stream_bytes[stream]) + delta);
      std::string encoded;
      put_u64_le(encoded, total);
      MDB_val k = to_val(stream.data(), stream.size());
      MDB_val v = to_val(encoded.data(), encoded.size());
      if (const int rc = mdb_put(st.txn, bytes_dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
    }
  }

  // Checks, before LMDB reads them, the pages load_databases has it read in transaction `t`:
  // the main database, the path to the last record of every stream, the small x/ databases it
  // reads whole, and for a writer the free list it reuses pages from. LMDB asserts or faults on
  // a damaged page; a damaged one here is refused with fabric::error(malformed) instead. A
  // reader whose snapshot a writer has already replaced on disk begins a newer one.
  void check_pages_for_open(txn& t, unsigned flags) {
    data_file file(dir / "data.mdb");
    for (int attempt = 0;; ++attempt) {
      // A write transaction's id is one past the snapshot it starts from.
      const std::uint64_t snapshot = mdb_txn_id(t.get()) - (read_only() ? 0 : 1);
      if (const auto meta = file.meta_of(snapshot)) {
        std::string damage;
        walk_handler handler;
        handler.on_database = [](std::string_view name, const lmdb_tree&) {
          if (name == stream_last_db || name == stream_bytes_db || name == retention_db) return walk_depth::all;
          return name.substr(0, stream_prefix.size()) == stream_prefix ? walk_depth::last_path : walk_depth::none;
        };
        handler.on_damage = [&](std::string_view, const std::string& what) {
          if (damage.empty()) damage = what;
        };
        handler.free_list = !read_only();
        if (!walk_snapshot(file, *meta, handler))
          throw error(errc::malformed, file.path().string() + " is damaged: " + damage);
        return;
      }
      if (!read_only() || attempt == 100)
        throw error(errc::malformed, file.path().string() + ": neither meta page holds transaction " +
                                         std::to_string(snapshot) + ", the one LMDB begins from");
      t.abort();
      int rc = 0;
      t = begin(flags, rc);
      if (rc != 0) throw_lmdb(rc, "cannot open the journal at " + dir.string());
    }
  }

  // Opens every database that exists, and learns each stream's last sequence number.
  void load_databases() {
    std::lock_guard lock(dbi_mutex);
    int rc = 0;
    const unsigned flags = read_only() ? MDB_RDONLY : 0u;
    txn t = begin(flags, rc);
    if (rc != 0) throw_lmdb(rc, "cannot open the journal at " + dir.string());
    check_pages_for_open(t, flags);
    MDB_dbi main_db = 0;
    if ((rc = mdb_dbi_open(t.get(), nullptr, 0, &main_db)) != 0) throw_lmdb(rc, "cannot open the main database");
    std::vector<std::string> names;
    {
      journal_detail::cursor c(t.get(), main_db, rc);
      if (rc != 0) throw_lmdb(rc, "cannot list the journal's databases");
      MDB_val key{}, value{};
      for (int r = c.get(key, value, MDB_FIRST); r == 0; r = c.get(key, value, MDB_NEXT))
        names.emplace_back(static_cast<const char*>(key.mv_data), key.mv_size);
    }
    // A writer creates the internal databases a journal written by an older version lacks; a
    // reader changes nothing and does without them.
    if (!read_only())
      for (std::string_view internal : {cursors_db, dedup_marks_db, dedup_window_db, dedup_ids_db,
                                        dedup_times_db, retention_db, stream_bytes_db, expiry_db,
                                        scheduled_db, dlq_db, counters_db, stream_last_db})
        if (std::find(names.begin(), names.end(), internal) == names.end()) names.emplace_back(internal);
    for (const auto& name : names) {
      const bool known = name.rfind(stream_prefix, 0) == 0 || name.rfind(table_prefix, 0) == 0 ||
                         name.rfind("x/", 0) == 0;
      if (!known) continue;
      MDB_dbi dbi = 0;
      if ((rc = mdb_dbi_open(t.get(), name.c_str(), read_only() ? 0u : MDB_CREATE, &dbi)) != 0)
        throw_lmdb(rc, "cannot open database '" + name + "'");
      dbis.emplace(name, dbi);
      if (name.rfind(stream_prefix, 0) != 0) continue;
      const std::string stream = name.substr(stream_prefix.size());
      std::uint64_t last = 0;
      journal_detail::cursor c(t.get(), dbi, rc);
      if (rc != 0) throw_lmdb(rc, "cannot read stream '" + name + "'");
      MDB_val key{}, value{};
      if (c.get(key, value, MDB_LAST) == 0) {
        // A damaged last key must not set the next sequence number (8 bytes of 0xFF would wrap
        // it to 0): only a key that decodes, below the maximum, counts.
        if (!decode_seq_key(to_span(key), last) || last == UINT64_MAX) last = 0;
        record_view view;
        if (decode_record(stream, last, to_span(value), view) == record_fault::none)
          last_ts = std::max(last_ts, view.timestamp_ns);
      }
      last = std::max(last, stored_last_seq(t.get(), stream));
      last_seq.emplace(stream, last);
    }
    if (read_only()) {
      if (dbis.count(std::string(retention_db)) != 0) load_policies(t.get());
    } else {
      load_stream_bytes(t.get());
      load_policies(t.get());
      for (std::string_view timed : {expiry_db, scheduled_db}) {
        MDB_stat stat{};
        if (mdb_stat(t.get(), dbis.at(std::string(timed)), &stat) == 0) timed_entries += stat.ms_entries;
      }
    }
    if ((rc = t.commit()) != 0) throw_lmdb(rc, "cannot open the journal's databases");
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

  // Appends one record in the writer's transaction. Throws lmdb_failure.
  journal_txn::state::stream_slot& slot_for(journal_txn::state& st, std::string_view stream) {
    if (st.cached != nullptr && st.cached_name == stream) return *st.cached;
    auto it = st.streams.find(stream);
    if (it == st.streams.end()) {
      journal_txn::state::stream_slot slot;
      slot.dbi = *dbi_for(st, db_name(stream), true);
      {
        std::lock_guard lock(dbi_mutex);
        if (auto known = last_seq.find(std::string(stream)); known != last_seq.end()) slot.last = known->second;
      }
      it = st.streams.emplace(std::string(stream), slot).first;
    }
    st.cached_name = it->first;  // node-based map: the key and slot stay put as it grows
    st.cached = &it->second;
    return it->second;
  }

  std::uint64_t append_in(journal_txn::state& st, std::string_view stream, std::string_view payload) {
    auto& slot = slot_for(st, stream);
    const MDB_dbi dbi = slot.dbi;
    const std::uint64_t seq = ++slot.last;
    std::byte key_bytes[8];
    encode_seq_key(seq, key_bytes);
    MDB_val key = to_val(key_bytes, sizeof key_bytes);
    MDB_val value{record_size(payload.size()), nullptr};
    if (const int rc = mdb_put(st.txn, dbi, &key, &value, MDB_APPEND | MDB_RESERVE); rc != 0)
      throw lmdb_failure{rc};
    const std::uint8_t flags = payload.substr(0, envelope_tag.size()) == envelope_tag ? flag_envelope : 0;
    encode_record(stream, seq, st.now_ns, flags, payload, static_cast<std::byte*>(value.mv_data));
    slot.bytes += static_cast<std::int64_t>(payload.size());
    st.changed = true;
    return seq;
  }

  // Moves the bytes appended per stream into the transaction's byte deltas, for retention and
  // the persisted counts.
  void fold_stream_bytes(journal_txn::state& st) {
    for (auto& [stream, slot] : st.streams) {
      if (slot.bytes != 0) st.bytes_delta[stream] += slot.bytes;
      slot.bytes = 0;
    }
  }

  // Publishes what a committed transaction created and advanced.
  void publish(journal_txn::state& st) {
    std::lock_guard lock(dbi_mutex);
    for (auto& [name, dbi] : st.opened) dbis.emplace(name, dbi);
    for (auto& [stream, slot] : st.streams) last_seq[stream] = slot.last;
    for (auto& [stream, delta] : st.bytes_delta)
      stream_bytes[stream] = static_cast<std::uint64_t>(static_cast<std::int64_t>(stream_bytes[stream]) + delta);
  }

  // Forgets dedup ids past their age or count, a bounded amount per commit, so the work spreads
  // over the writer's commits instead of stalling one.
  void prune_dedup(journal_txn::state& st) {
    const MDB_dbi times = *find_dbi(dedup_times_db);
    const MDB_dbi ids = *find_dbi(dedup_ids_db);
    MDB_stat stat{};
    if (mdb_stat(st.txn, times, &stat) != 0 || stat.ms_entries == 0) return;
    std::size_t entries = stat.ms_entries;
    const std::int64_t oldest_kept = add_saturating(st.now_ns, -to_ns_saturating(options.dedup_max_age));
    int rc = 0;
    journal_detail::cursor c(st.txn, times, rc);
    if (rc != 0) return;
    MDB_val key{}, value{};
    for (int budget = 256; budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
      if (key.mv_size < 9) break;
      const auto ts = static_cast<std::int64_t>(get_u64_be(key.mv_data) ^ (std::uint64_t{1} << 63));
      if (ts >= oldest_kept && entries <= options.dedup_max_ids) break;
      MDB_val id_key{key.mv_size - 8, static_cast<char*>(key.mv_data) + 8};
      if (const int rc_id = mdb_del(st.txn, ids, &id_key, nullptr); rc_id != 0 && rc_id != MDB_NOTFOUND)
        throw lmdb_failure{rc_id};
      if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
      --entries;
      st.changed = true;
    }
  }

  // Runs a batch of appends, or one transaction, in one LMDB transaction; retries after growing
  // the map. On success fills `seqs` (one per append).
  int write_batch(std::span<pending_append> batch, std::vector<std::uint64_t>& seqs,
                  std::exception_ptr& txn_failure) {
    for (;;) {
      int rc = 0;
      txn t = begin(0, rc);
      if (rc != 0) return rc;
      journal_txn::state st{*static_cast<journal::impl*>(this), t.get(), std::max(unix_now_ns(), last_ts), {}, {}};
      seqs.clear();
      txn_failure = nullptr;
      try {
        if (batch.size() == 1 && batch[0].txn) {
          journal_txn view(st);
          try {
            batch[0].txn->fn(view);
          } catch (const lmdb_failure&) {
            throw;
          } catch (...) {
            txn_failure = std::current_exception();  // the application's own failure: abort
          }
        } else {
          for (auto& a : batch) {
            if (a.deliver_at > 0) {
              seqs.push_back(add_scheduled(st, a.stream, a.payload, a.deliver_at));
              continue;
            }
            std::uint64_t seq = 0;
            try {
              seq = append_in(st, a.stream, a.payload);
            } catch (const error&) {
              seqs.push_back(0);  // past a budget: this append alone fails (see finish_batch)
              continue;
            }
            if (a.ttl_ns > 0) add_expiry(st, a.stream, seq, a.ttl_ns);
            seqs.push_back(seq);
          }
        }
        if (!txn_failure) {
          run_timed(st);
          fold_stream_bytes(st);
          prune_dedup(st);
          apply_retention(st);
          persist_stream_bytes(st);
          persist_last_seqs(st);
        }
      } catch (const lmdb_failure& f) {
        rc = f.rc;
      }
      if (txn_failure) return 0;  // t aborts on destruction; nothing was kept
      const bool maintenance_only = batch.empty();
      if (rc == 0 && maintenance_only && !st.changed) return 0;  // nothing to commit
      if (rc == 0) rc = t.commit();
      if (rc == MDB_MAP_FULL) {
        t.abort();
        if (const int grown = grow_map(); grown != 0) return grown;
        continue;  // retry the whole batch in the bigger map
      }
      if (rc != 0) return rc;
      publish(st);
      last_ts = st.now_ns;
      timed_entries = static_cast<std::uint64_t>(static_cast<std::int64_t>(timed_entries) + st.timed_delta);
      expired.fetch_add(st.expired, std::memory_order_relaxed);
      delivered_scheduled.fetch_add(st.delivered, std::memory_order_relaxed);
      return 0;
    }
  }

  // periodic: each commit's pages are already on disk (MDB_NOMETASYNC); the last commit's meta
  // page is not, and until it is a crash could undo that commit. Only after this sync may the
  // appends and transactions committed since the previous one be completed.
  void sync_now() {
    const int rc = mdb_env_sync(environment.get(), 1);
    if (rc != 0) {
      std::fprintf(stderr, "fabric: journal %s: fsync failed: %s\n", dir.c_str(), mdb_strerror(rc));
    } else {
      syncs.fetch_add(1, std::memory_order_relaxed);
    }
    for (auto& c : unsynced) complete(c.done, rc != 0 ? result<std::uint64_t>(lmdb_error(rc)) : result<std::uint64_t>(c.seq));
    unsynced.clear();
    for (auto& [done, failure] : unsynced_txns) done(rc, failure);
    unsynced_txns.clear();
  }

  // Hands an append (or a scheduled record) to the writer, or completes it at once with why not.
  void enqueue(pending_append&& work) {
    if (read_only()) {
      complete(work.done, errc::invalid_state);
      return;
    }
    if (!valid_stream_name(work.stream) || work.payload.size() > options.max_record_size) {
      complete(work.done, errc::too_large);
      return;
    }
    // A refusal is decided under the lock but reported after it, so a callback may append again.
    std::optional<errc> refused;
    bool was_empty = false;
    {
      std::lock_guard lock(queue_mutex);
      if (stopping) {
        refused = errc::closed;
      } else if (queue.size() >= options.max_pending) {
        refused = errc::back_pressure;
      } else {
        // The writer sleeps only on an empty queue: a push onto a non-empty one needs no wake-up.
        was_empty = queue.empty();
        queue.push_back(std::move(work));
      }
    }
    if (refused) {
      complete(work.done, *refused);
      return;
    }
    if (was_empty) queue_cv.notify_one();
  }

  // Takes the next unit of work: one transaction, or up to max_batch appends.
  // The size of the unit of work starting at `from`: one transaction alone, or the run of
  // appends before the next transaction, at most max_batch of them.
  std::size_t unit_at(const std::vector<pending_append>& taken, std::size_t from) const {
    if (taken[from].txn) return 1;
    std::size_t n = 0;
    while (from + n < taken.size() && n < options.max_batch && !taken[from + n].txn) ++n;
    return n;
  }

  void finish_batch(std::span<pending_append> batch, const std::vector<std::uint64_t>& seqs,
                    int rc, std::exception_ptr txn_failure, bool periodic) {
    const bool is_txn = batch.size() == 1 && batch[0].txn;
    if (rc != 0) {
      std::fprintf(stderr, "fabric: journal %s: a commit of %zu %s failed: %s\n", dir.c_str(),
                   batch.size(), is_txn ? "transaction" : "appends", mdb_strerror(rc));
      for (auto& a : batch) {
        if (is_txn) a.txn->done(rc, nullptr);
        else complete(a.done, lmdb_error(rc));
      }
      return;
    }
    if (is_txn) {
      if (txn_failure) {
        batch[0].txn->done(0, txn_failure);  // nothing committed: nothing to wait for
        return;
      }
      commits.fetch_add(1, std::memory_order_relaxed);
      if (periodic) unsynced_txns.emplace_back(std::move(batch[0].txn->done), nullptr);
      else batch[0].txn->done(0, nullptr);
      return;
    }
    commits.fetch_add(1, std::memory_order_relaxed);
    appends.fetch_add(batch.size(), std::memory_order_relaxed);
    std::uint64_t largest = largest_batch.load(std::memory_order_relaxed);
    while (batch.size() > largest && !largest_batch.compare_exchange_weak(largest, batch.size())) {
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (seqs[i] == 0) complete(batch[i].done, errc::too_large);  // refused before LMDB
      else if (periodic) unsynced.push_back({seqs[i], std::move(batch[i].done)});
      else complete(batch[i].done, seqs[i]);
    }
  }

  void run_writer() {
    using clock = std::chrono::steady_clock;
    const bool periodic = options.mode == durability::periodic;
    auto next_sync = clock::now() + options.sync_interval;
    // Age-based retention must trim idle streams too: the writer then wakes once a second.
    constexpr auto maintenance_interval = std::chrono::seconds(1);
    auto next_maintenance = clock::now() + maintenance_interval;
    std::vector<pending_append> taken;  // swapped with the queue: its capacity is reused both ways
    std::vector<std::uint64_t> seqs;
    for (;;) {
      const bool ages = has_age_limits() || timed_entries > 0;
      {
        std::unique_lock lock(queue_mutex);
        auto wake = clock::time_point::max();
        if (periodic && (!unsynced.empty() || !unsynced_txns.empty())) wake = next_sync;
        if (ages) wake = std::min(wake, next_maintenance);
        auto ready = [&] { return !queue.empty() || stopping || replan; };
        if (wake == clock::time_point::max()) queue_cv.wait(lock, ready);
        else queue_cv.wait_until(lock, wake, ready);
        replan = false;
        taken.clear();
        taken.swap(queue);  // everything queued, in O(1)
        if (taken.empty() && stopping) break;
      }
      if (taken.empty() && ages && clock::now() >= next_maintenance) {
        std::exception_ptr ignored;
        if (const int rc = write_batch({}, seqs, ignored); rc != 0)
          std::fprintf(stderr, "fabric: journal %s: retention pass failed: %s\n", dir.c_str(), mdb_strerror(rc));
        next_maintenance = clock::now() + maintenance_interval;
      }
      for (std::size_t at = 0; at < taken.size();) {
        const std::span<pending_append> unit(taken.data() + at, unit_at(taken, at));
        std::exception_ptr txn_failure;
        const int rc = write_batch(unit, seqs, txn_failure);
        finish_batch(unit, seqs, rc, txn_failure, periodic);
        at += unit.size();
      }
      if (periodic && (!unsynced.empty() || !unsynced_txns.empty()) && clock::now() >= next_sync) {
        sync_now();
        next_sync = clock::now() + options.sync_interval;
      }
    }
    if (!unsynced.empty() || !unsynced_txns.empty()) sync_now();
  }
};

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

void journal::append(std::string_view stream, std::string_view payload, append_callback done) {
  pending_append work;
  work.stream = std::string(stream);
  work.payload = std::string(payload);
  work.done = std::move(done);
  impl_->enqueue(std::move(work));
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

namespace {

// Enqueues `work` and waits for its result.
result<std::uint64_t> enqueue_and_wait(const std::function<void(pending_append&&)>& enqueue, pending_append&& work) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  work.done = [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); };
  enqueue(std::move(work));
  return future.get();
}

}  // namespace

result<std::uint64_t> journal::append_wait(std::string_view stream, std::string_view payload,
                                           std::chrono::nanoseconds ttl) {
  pending_append work;
  work.stream = std::string(stream);
  work.payload = std::string(payload);
  work.ttl_ns = ttl.count();
  return enqueue_and_wait([this](pending_append&& w) { impl_->enqueue(std::move(w)); }, std::move(work));
}

result<std::uint64_t> journal::schedule(std::string_view stream, std::string_view payload,
                                        std::int64_t deliver_at_ns) {
  pending_append work;
  work.stream = std::string(stream);
  work.payload = std::string(payload);
  work.deliver_at = std::max<std::int64_t>(deliver_at_ns, 1);
  return enqueue_and_wait([this](pending_append&& w) { impl_->enqueue(std::move(w)); }, std::move(work));
}

std::uint64_t journal::scheduled_count() const {
  return impl_->read_in(scheduled_db, [](MDB_txn* t, MDB_dbi dbi) -> std::uint64_t {
    MDB_stat stat{};
    return mdb_stat(t, dbi, &stat) == 0 ? stat.ms_entries : 0;
  });
}

namespace {

using dead_letter_tuple =
    std::tuple<std::string, std::uint64_t, std::string, std::uint32_t, std::int64_t, std::string>;

std::optional<dead_letter> decode_dead_letter(const MDB_val& key, const MDB_val& value) {
  if (key.mv_size != 8) return std::nullopt;
  auto decoded = unpack<dead_letter_tuple>(to_span(value));
  if (!decoded) return std::nullopt;
  dead_letter d;
  d.id = get_u64_be(key.mv_data);
  std::tie(d.stream, d.seq, d.reason, d.attempts, d.timestamp_ns, d.payload) = std::move(*decoded);
  return d;
}

}  // namespace

std::vector<dead_letter> journal::dead_letters(std::uint64_t from, std::size_t max) const {
  return impl_->read_in(dlq_db, [&](MDB_txn* t, MDB_dbi dbi) -> std::vector<dead_letter> {
    std::vector<dead_letter> out;
    int rc = 0;
    journal_detail::cursor c(t, dbi, rc);
    if (rc != 0) return out;
    std::string start;
    put_u64_be(start, from);
    MDB_val key = to_val(start.data(), start.size());
    MDB_val value{};
    for (int r = c.get(key, value, MDB_SET_RANGE); r == 0 && out.size() < max; r = c.get(key, value, MDB_NEXT))
      if (auto d = decode_dead_letter(key, value)) out.push_back(std::move(*d));
    return out;
  });
}

result<std::uint64_t> journal::requeue(std::uint64_t id) {
  std::uint64_t seq = 0;
  auto done = transact([&](journal_txn& t) {
    std::string key;
    put_u64_be(key, id);
    MDB_val k = to_val(key.data(), key.size());
    MDB_val v{};
    const MDB_dbi dbi = *impl_->find_dbi(dlq_db);
    if (mdb_get(t.state_.txn, dbi, &k, &v) != 0) return;
    auto letter = decode_dead_letter(k, v);
    if (!letter || !valid_stream_name(letter->stream)) return;
    seq = impl_->append_in(t.state_, letter->stream, letter->payload);
    if (const int rc = mdb_del(t.state_.txn, dbi, &k, nullptr); rc != 0) throw lmdb_failure{rc};
  });
  if (!done) return done.error();
  if (seq == 0) return errc::invalid_argument;
  return seq;
}

result<bool> journal::discard_dead_letter(std::uint64_t id) {
  bool existed = false;
  auto done = transact([&](journal_txn& t) {
    std::string key;
    put_u64_be(key, id);
    MDB_val k = to_val(key.data(), key.size());
    const int rc = mdb_del(t.state_.txn, *impl_->find_dbi(dlq_db), &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) throw lmdb_failure{rc};
    existed = rc == 0;
    t.state_.changed = true;
  });
  if (!done) return done.error();
  return existed;
}

result<journal_chunk> journal::read(std::string_view stream, std::uint64_t from_seq,
                                    std::size_t max_records, std::size_t max_bytes) const {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  journal_chunk chunk;
  chunk.next_seq = std::max<std::uint64_t>(from_seq, 1);
  const auto dbi = impl_->find_dbi(db_name(stream));
  if (!dbi || max_records == 0) return chunk;

  int rc = 0;
  auto reading = impl_->begin_read(rc);
  if (!reading) return lmdb_error(rc);
  txn& t = reading->t;
  journal_detail::cursor c(t.get(), *dbi, rc);
  if (rc != 0) return lmdb_error(rc);
  std::byte key_bytes[8];
  encode_seq_key(chunk.next_seq, key_bytes);
  MDB_val key = to_val(key_bytes, sizeof key_bytes);
  MDB_val value{};
  std::size_t bytes = 0;
  for (rc = c.get(key, value, MDB_SET_RANGE); rc == 0; rc = c.get(key, value, MDB_NEXT)) {
    std::uint64_t seq = 0;
    record_view view;
    record_fault fault = decode_seq_key(to_span(key), seq) ? decode_record(stream, seq, to_span(value), view)
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
  if (impl_->read_only()) {
    // Another process writes: read what is on disk now.
    if (!valid_stream_name(stream)) return std::nullopt;
    const auto last_db = impl_->find_dbi(stream_last_db);
    return impl_->read_in(db_name(stream), [&](MDB_txn* t, MDB_dbi dbi) -> std::optional<std::uint64_t> {
      std::uint64_t seq = 0;
      int rc = 0;
      journal_detail::cursor c(t, dbi, rc);
      MDB_val key{}, value{};
      if (rc == 0 && c.get(key, value, MDB_LAST) == 0) decode_seq_key(to_span(key), seq);
      MDB_val k = to_val(stream.data(), stream.size());
      MDB_val v{};
      if (last_db && mdb_get(t, *last_db, &k, &v) == 0 && v.mv_size == 8) seq = std::max(seq, get_u64_le(v.mv_data));
      if (seq == 0) return std::nullopt;
      return seq;
    });
  }
  std::lock_guard lock(impl_->dbi_mutex);
  auto it = impl_->last_seq.find(std::string(stream));
  if (it == impl_->last_seq.end() || it->second == 0) return std::nullopt;
  return it->second;
}

std::vector<std::string> journal::streams() const {
  if (impl_->read_only()) return impl_->stream_names_on_disk();
  std::lock_guard lock(impl_->dbi_mutex);
  std::vector<std::string> names;
  for (const auto& [name, dbi] : impl_->dbis)
    if (name.rfind(stream_prefix, 0) == 0) names.push_back(name.substr(stream_prefix.size()));
  return names;
}

namespace {

// What verify() learns of one stream while walking it.
struct stream_walk {
  std::uint64_t stored_bytes = 0;  // payload bytes as the writer counts them, over every value
  std::uint64_t last = 0;          // the highest sequence number among its keys
  bool any = false;
  bool seen_version_2 = false;
  bool damaged = false;  // its tree is damaged: the walk stopped, so its totals are partial
};

std::optional<std::uint64_t> u64_value(const value_ref& value) {
  std::byte bytes[8];
  if (value.size() != 8 || !value.read(0, bytes, 8)) return std::nullopt;
  return get_u64_le(bytes);
}

std::string key_text(std::span<const std::byte> key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

}  // namespace

journal_verify_report journal::verify() const {
  journal_verify_report report;
  auto damaged = [&](std::string stream, std::string what) {
    report.damage.push_back({std::move(stream), std::move(what)});
  };
  // The whole check reads one snapshot, pinned by a read transaction while the file is read
  // directly: LMDB itself reads none of it, so no damaged page can make it assert or fault, and
  // the accounts compared with the records are those of the same commit.
  const std::filesystem::path path = impl_->dir / "data.mdb";
  std::optional<data_file> file;
  try {
    file.emplace(path);
  } catch (const error& e) {
    damaged({}, e.what());
    return report;
  }
  std::optional<impl::read_txn> reading;
  std::optional<lmdb_meta> meta;
  for (int attempt = 0; attempt < 100 && !meta; ++attempt) {
    // A writer that commits twice between the transaction's start and the read of the meta
    // pages has replaced its meta page on disk: take a newer snapshot.
    reading.reset();
    int rc = 0;
    reading = impl_->begin_read(rc);
    if (!reading) {
      damaged({}, "cannot begin a read transaction: " + std::string(mdb_strerror(rc)));
      return report;
    }
    meta = file->meta_of(mdb_txn_id(reading->t.get()));
  }
  if (!meta) {
    damaged({}, path.string() + ": neither meta page holds the transaction LMDB reads (a damaged meta page)");
    return report;
  }

  std::map<std::string, stream_walk, std::less<>> streams;
  std::map<std::string, std::uint64_t, std::less<>> kept_bytes, kept_last, counters;
  std::uint64_t highest_dead_letter = 0, highest_scheduled = 0;
  std::vector<std::byte> chunk(64 * 1024);

  auto check_record = [&](std::string_view stream, stream_walk& walk, std::span<const std::byte> key,
                          const value_ref& value) {
    if (value.size() >= record_header_size) walk.stored_bytes += value.size() - record_header_size;
    std::uint64_t seq = 0;
    if (!decode_seq_key(key, seq)) {
      report.corruptions.push_back({std::string(stream), 0, "its key is not a sequence number"});
      return;
    }
    if (walk.any && seq <= walk.last)
      damaged(std::string(stream), "keys out of order: seq " + std::to_string(seq) + " after seq " + std::to_string(walk.last));
    walk.last = std::max(walk.last, seq);
    walk.any = true;
    auto corrupt = [&](std::string what) { report.corruptions.push_back({std::string(stream), seq, std::move(what)}); };
    std::byte head[record_header_size];
    const auto head_size = static_cast<std::size_t>(std::min<std::uint64_t>(value.size(), record_header_size));
    if (!value.read(0, head, head_size)) return corrupt("unreadable");
    std::uint32_t crc = 0;
    std::uint32_t expected = 0;
    const record_fault fault = check_record_head(stream, seq, {head, head_size}, value.size(), crc, expected);
    if (fault != record_fault::none) return corrupt(std::string(to_string(fault)));
    for (std::uint64_t at = record_crc_from; at < value.size();) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), value.size() - at));
      if (!value.read(at, chunk.data(), n)) return corrupt("unreadable");
      crc = crc32c(crc, chunk.data(), n);
      at += n;
    }
    if (crc != expected) return corrupt(std::string(to_string(record_fault::bad_crc)));
    const auto version = std::to_integer<std::uint8_t>(head[4]);
    if (version == record_version_1 && walk.seen_version_2)
      return corrupt("a version 1 record after version 2 ones: the journal writes only version 2, and the older "
                     "rule does not bind a record to its stream");
    if (version != record_version_1) walk.seen_version_2 = true;
    ++report.records;
    report.bytes += value.size() - record_header_size;
  };

  walk_handler handler;
  handler.account_pages = true;
  handler.free_list = true;
  handler.on_database = [&](std::string_view name, const lmdb_tree&) {
    if (name.substr(0, stream_prefix.size()) == stream_prefix) {
      streams.try_emplace(std::string(name.substr(stream_prefix.size())));
      ++report.streams;
    }
    return walk_depth::all;
  };
  handler.on_entry = [&](std::string_view database, std::span<const std::byte> key, const value_ref& value) {
    if (database.substr(0, stream_prefix.size()) == stream_prefix) {
      const std::string_view stream = database.substr(stream_prefix.size());
      check_record(stream, streams.find(stream)->second, key, value);
      return;
    }
    auto keep = [&](std::map<std::string, std::uint64_t, std::less<>>& into) {
      if (auto v = u64_value(value)) into[key_text(key)] = *v;
      else damaged({}, "database '" + std::string(database) + "': the entry for '" + key_text(key) + "' is " +
                           std::to_string(value.size()) + " bytes, not 8");
    };
    if (database == stream_bytes_db) keep(kept_bytes);
    else if (database == stream_last_db) keep(kept_last);
    else if (database == counters_db) keep(counters);
    else if (database == dlq_db && key.size() == 8) highest_dead_letter = std::max(highest_dead_letter, get_u64_be(key.data()));
    else if (database == scheduled_db && key.size() == 16)
      highest_scheduled = std::max(highest_scheduled, get_u64_be(key.data() + 8));
  };
  handler.on_damage = [&](std::string_view database, const std::string& what) {
    if (database.substr(0, stream_prefix.size()) != stream_prefix) return damaged({}, what);
    const std::string_view stream = database.substr(stream_prefix.size());
    if (auto it = streams.find(stream); it != streams.end()) it->second.damaged = true;
    damaged(std::string(stream), what);
  };
  walk_snapshot(*file, *meta, handler);

  // The accounts the writer keeps beside the records, against the records walked.
  for (const auto& [stream, walk] : streams) {
    if (walk.damaged) continue;
    if (auto kept = kept_bytes.find(stream); kept != kept_bytes.end() && kept->second != walk.stored_bytes)
      damaged(stream, "the journal keeps " + std::to_string(kept->second) + " payload bytes for it (x/stream-bytes) "
                      "but its records hold " + std::to_string(walk.stored_bytes) + ": records were lost, or added "
                      "or changed behind its back");
    if (auto kept = kept_last.find(stream); kept != kept_last.end() && walk.any && walk.last > kept->second)
      damaged(stream, "its records go up to seq " + std::to_string(walk.last) + " but the last sequence number handed "
                      "out (x/stream-last) is " + std::to_string(kept->second));
  }
  for (const auto* kept : {&kept_last, &kept_bytes})
    for (const auto& [stream, value] : *kept)
      if (streams.find(stream) == streams.end())
        damaged(stream, std::string(kept == &kept_last ? "x/stream-last" : "x/stream-bytes") + " keeps " +
                            std::to_string(value) + " for it but there is no such stream: its database was lost");
  auto check_counter = [&](const char* name, std::uint64_t highest, const char* what) {
    if (auto c = counters.find(name); c != counters.end() && highest > c->second)
      damaged({}, std::string(what) + " " + std::to_string(highest) + " exists but the counter '" + name +
                      "' (x/counters) has handed out only " + std::to_string(c->second));
  };
  check_counter("dead-letters", highest_dead_letter, "dead letter");
  check_counter("scheduled", highest_scheduled, "scheduled record");
  return report;
}

result<void> journal::copy_to(const std::filesystem::path& dest, bool compact) const {
  // The copy reads the map through its own transaction: the map must not be resized under it.
  std::shared_lock map_lock(impl_->map_mutex);
  const int rc = mdb_env_copy2(impl_->environment.get(), dest.c_str(), compact ? MDB_CP_COMPACT : 0u);
  if (rc != 0) return lmdb_error(rc);
  return {};
}

std::vector<journal_stream_info> journal::stream_infos() const {
  std::vector<journal_stream_info> infos;
  for (const std::string& stream : streams()) {
    journal_stream_info info;
    info.name = stream;
    impl_->read_in(db_name(stream), [&](MDB_txn* t, MDB_dbi dbi) -> int {
      MDB_stat stat{};
      if (mdb_stat(t, dbi, &stat) == 0) info.records = stat.ms_entries;
      int rc = 0;
      journal_detail::cursor c(t, dbi, rc);
      if (rc != 0) return 0;
      MDB_val key{}, value{};
      if (c.get(key, value, MDB_FIRST) == 0) decode_seq_key(to_span(key), info.first_seq);
      if (c.get(key, value, MDB_LAST) == 0) decode_seq_key(to_span(key), info.last_seq);
      return 0;
    });
    infos.push_back(std::move(info));
  }
  return infos;
}

// ---- transactions: outbox, application tables, cursors, dedup

namespace {

std::string table_db(std::string_view table) {
  if (table.empty() || table.size() > 255 || table.find('\0') != std::string_view::npos)
    throw error(errc::invalid_argument, "journal table names are 1-255 bytes, with no NUL byte");
  std::string name(table_prefix);
  name += table;
  return name;
}

void check_table_key(std::string_view key) {
  // LMDB's default maximum key size is 511 bytes.
  if (key.empty() || key.size() > 511) throw error(errc::invalid_argument, "journal table keys are 1-511 bytes");
}

void check_cursor_name(std::string_view name) {
  if (name.empty() || name.size() > 255) throw error(errc::invalid_argument, "cursor names are 1-255 bytes");
}

// Big-endian with the sign bit flipped, so signed timestamps sort as LMDB compares bytes.
void put_sortable_time(std::string& out, std::int64_t ns) {
  put_u64_be(out, static_cast<std::uint64_t>(ns) ^ (std::uint64_t{1} << 63));
}

bool lmdb_exists(MDB_txn* t, MDB_dbi dbi, std::string_view key) {
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v{};
  const int rc = mdb_get(t, dbi, &k, &v);
  if (rc != 0 && rc != MDB_NOTFOUND) throw lmdb_failure{rc};
  return rc == 0;
}

}  // namespace

std::uint64_t journal_txn::append(std::string_view stream, std::string_view payload) {
  if (!valid_stream_name(stream) || payload.size() > state_.owner.options.max_record_size)
    throw error(errc::too_large, "journal_txn::append: bad stream name or payload too large");
  return state_.owner.append_in(state_, stream, payload);
}

void journal_txn::put(std::string_view table, std::string_view key, std::string_view value) {
  check_table_key(key);
  const MDB_dbi dbi = *state_.owner.dbi_for(state_, table_db(table), true);
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v = to_val(value.data(), value.size());
  if (const int rc = mdb_put(state_.txn, dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
}

std::optional<std::string> journal_txn::get(std::string_view table, std::string_view key) const {
  check_table_key(key);
  const auto dbi = state_.owner.dbi_for(state_, table_db(table), false);
  if (!dbi) return std::nullopt;
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v{};
  const int rc = mdb_get(state_.txn, *dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) throw lmdb_failure{rc};
  return std::string(static_cast<const char*>(v.mv_data), v.mv_size);
}

bool journal_txn::erase(std::string_view table, std::string_view key) {
  check_table_key(key);
  const auto dbi = state_.owner.dbi_for(state_, table_db(table), false);
  if (!dbi) return false;
  MDB_val k = to_val(key.data(), key.size());
  const int rc = mdb_del(state_.txn, *dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) throw lmdb_failure{rc};
  return true;
}

std::uint64_t journal_txn::dead_letter(std::string_view stream, std::uint64_t seq, std::string_view reason,
                                       std::uint32_t attempts) {
  if (!valid_stream_name(stream)) throw error(errc::invalid_argument, "dead_letter: bad stream name");
  const auto dbi = state_.owner.dbi_for(state_, db_name(stream), false);
  if (!dbi) return 0;
  std::byte key_bytes[8];
  encode_seq_key(seq, key_bytes);
  MDB_val k = to_val(key_bytes, sizeof key_bytes);
  MDB_val v{};
  const int rc = mdb_get(state_.txn, *dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != 0) throw lmdb_failure{rc};
  record_view view;
  std::string why(reason);
  std::string payload;
  if (decode_record(stream, seq, to_span(v), view) == record_fault::none) {
    payload = std::string(view.payload);
  } else {
    // Keep the damaged bytes for inspection rather than lose them.
    payload.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    why += " (the record failed its checks; raw value kept)";
  }
  if (state_.owner.remove_record(state_, std::string(stream), seq) < 0) return 0;
  const std::uint64_t id = state_.owner.next_counter(state_, "dead-letters");
  std::string key;
  put_u64_be(key, id);
  const frame value = pack(dead_letter_tuple{std::string(stream), seq, why, attempts, state_.now_ns, payload});
  state_.owner.put_in(state_, dlq_db, key, fabric::view(value));
  return id;
}

void journal_txn::set_cursor(std::string_view name, std::uint64_t seq) {
  check_cursor_name(name);
  const MDB_dbi dbi = *state_.owner.find_dbi(cursors_db);
  std::string value;
  put_u64_le(value, seq);
  MDB_val k = to_val(name.data(), name.size());
  MDB_val v = to_val(value.data(), value.size());
  if (const int rc = mdb_put(state_.txn, dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
}

std::optional<std::uint64_t> journal_txn::cursor(std::string_view name) const {
  check_cursor_name(name);
  MDB_val k = to_val(name.data(), name.size());
  MDB_val v{};
  const int rc = mdb_get(state_.txn, *state_.owner.find_dbi(cursors_db), &k, &v);
  if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 8)) return std::nullopt;
  if (rc != 0) throw lmdb_failure{rc};
  return get_u64_le(v.mv_data);
}

// A (producer, stream)'s mark: the highest contiguous sequence seen, and how many sequences
// above it are remembered in the window.
struct dedup_mark {
  std::uint64_t contiguous = 0;
  std::uint64_t window = 0;
};

namespace {

dedup_mark read_mark(MDB_txn* t, MDB_dbi marks, const std::string& key) {
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v{};
  const int rc = mdb_get(t, marks, &k, &v);
  if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 16)) return {};
  if (rc != 0) throw lmdb_failure{rc};
  return {get_u64_le(v.mv_data), get_u64_le(static_cast<const char*>(v.mv_data) + 8)};
}

// The read-only half of mark_seen.
bool already_seen(MDB_txn* t, const dedup_dbs& dbs, const dedup_key& key) {
  if (!key.id.is_zero() && lmdb_exists(t, dbs.ids, dedup_id_key(key))) return true;
  if (key.seq == 0) return false;
  const std::string mark_key = dedup_mark_key(key);
  if (key.seq <= read_mark(t, dbs.marks, mark_key).contiguous) return true;
  std::string window_key = mark_key;
  put_u64_be(window_key, key.seq);
  return lmdb_exists(t, dbs.window, window_key);
}

}  // namespace

dedup_verdict journal_txn::mark_seen(const dedup_key& key) {
  check_dedup_key(key);
  const dedup_dbs dbs = *state_.owner.dedup_dbis();
  MDB_txn* t = state_.txn;
  if (already_seen(t, dbs, key)) return dedup_verdict::duplicate;

  auto put = [&](MDB_dbi dbi, const std::string& k, const std::string& v) {
    MDB_val kv = to_val(k.data(), k.size());
    MDB_val vv = to_val(v.data(), v.size());
    if (const int rc = mdb_put(t, dbi, &kv, &vv, 0); rc != 0) throw lmdb_failure{rc};
  };
  if (!key.id.is_zero()) {
    const std::string id_key = dedup_id_key(key);
    std::string when;
    put_u64_le(when, static_cast<std::uint64_t>(state_.now_ns));
    put(dbs.ids, id_key, when);
    std::string time_key;
    put_sortable_time(time_key, state_.now_ns);
    time_key += id_key;
    put(dbs.times, time_key, std::string());
  }
  if (key.seq == 0) return dedup_verdict::fresh;

  const std::string mark_key = dedup_mark_key(key);
  dedup_mark mark = read_mark(t, dbs.marks, mark_key);
  auto window_key = [&](std::uint64_t seq) {
    std::string k = mark_key;
    put_u64_be(k, seq);
    return k;
  };
  auto take_from_window = [&](std::uint64_t seq) {
    std::string k = window_key(seq);
    MDB_val kv = to_val(k.data(), k.size());
    const int rc = mdb_del(t, dbs.window, &kv, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) throw lmdb_failure{rc};
    --mark.window;
    return true;
  };
  if (key.seq == mark.contiguous + 1) {
    mark.contiguous = key.seq;
  } else {
    put(dbs.window, window_key(key.seq), std::string());
    ++mark.window;
    if (mark.window > state_.owner.options.dedup_max_window) {
      // Too many gaps held open: give up the lowest one, jumping the mark to the lowest
      // sequence remembered above it.
      int rc = 0;
      journal_detail::cursor c(t, dbs.window, rc);
      if (rc != 0) throw lmdb_failure{rc};
      std::string from = window_key(mark.contiguous + 1);
      MDB_val k = to_val(from.data(), from.size());
      MDB_val v{};
      if (c.get(k, v, MDB_SET_RANGE) == 0 && k.mv_size == mark_key.size() + 8 &&
          std::string_view(static_cast<const char*>(k.mv_data), mark_key.size()) == mark_key) {
        const std::uint64_t lowest = get_u64_be(static_cast<const char*>(k.mv_data) + mark_key.size());
        mark.contiguous = lowest - 1;
      }
    }
  }
  // Absorb the window entries that now continue the contiguous run.
  while (mark.window > 0 && take_from_window(mark.contiguous + 1)) ++mark.contiguous;
  std::string value;
  put_u64_le(value, mark.contiguous);
  put_u64_le(value, mark.window);
  put(dbs.marks, mark_key, value);
  return dedup_verdict::fresh;
}

result<void> journal::transact(const std::function<void(journal_txn&)>& fn) {
  if (impl_->read_only()) return errc::invalid_state;
  auto promise = std::make_shared<std::promise<result<void>>>();
  auto future = promise->get_future();
  pending_append work;
  work.txn = std::make_unique<pending_append::transaction>();
  work.txn->fn = fn;
  work.txn->done = [promise](int rc, std::exception_ptr failure) {
    if (failure) promise->set_exception(failure);
    else if (rc != 0) promise->set_value(lmdb_error(rc));
    else promise->set_value(result<void>());
  };
  {
    std::lock_guard lock(impl_->queue_mutex);
    if (impl_->stopping) return errc::closed;
    impl_->queue.push_back(std::move(work));
  }
  impl_->queue_cv.notify_one();
  return future.get();
}

result<void> journal::set_retention(std::string_view stream, const retention_policy& policy) {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  const bool remove = policy == retention_policy{};
  const std::string name(stream);
  auto done = transact([&](journal_txn& t) {
    const MDB_dbi dbi = *impl_->find_dbi(retention_db);
    MDB_val k = to_val(name.data(), name.size());
    if (remove) {
      const int rc = mdb_del(t.state_.txn, dbi, &k, nullptr);
      if (rc != 0 && rc != MDB_NOTFOUND) throw lmdb_failure{rc};
      return;
    }
    const frame encoded = pack(std::make_tuple(policy.max_records, policy.max_bytes,
                                               static_cast<std::int64_t>(policy.max_age.count()),
                                               policy.ack_cursors));
    MDB_val v = to_val(encoded.data(), encoded.size());
    if (const int rc = mdb_put(t.state_.txn, dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
  });
  if (!done) return done;
  {
    std::lock_guard lock(impl_->dbi_mutex);
    if (remove) impl_->policies.erase(name);
    else impl_->policies[name] = policy;
  }
  {
    // An idle writer sleeps until work arrives; an age limit means it must wake once a second.
    std::lock_guard lock(impl_->queue_mutex);
    impl_->replan = true;
  }
  impl_->queue_cv.notify_one();
  return {};
}

std::optional<retention_policy> journal::retention(std::string_view stream) const {
  std::lock_guard lock(impl_->dbi_mutex);
  if (auto it = impl_->policies.find(stream); it != impl_->policies.end()) return it->second;
  return std::nullopt;
}

result<std::uint64_t> journal::seq_at_time(std::string_view stream, std::int64_t timestamp_ns) const {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  const auto dbi = impl_->find_dbi(db_name(stream));
  if (!dbi) return std::uint64_t{1};
  int rc = 0;
  auto reading = impl_->begin_read(rc);
  if (!reading) return lmdb_error(rc);
  txn& t = reading->t;
  journal_detail::cursor c(t.get(), *dbi, rc);
  if (rc != 0) return lmdb_error(rc);
  MDB_val key{}, value{};
  std::uint64_t first = 0, last = 0;
  if (c.get(key, value, MDB_FIRST) != 0) return last_seq(stream).value_or(0) + 1;  // emptied by trimming
  decode_seq_key(to_span(key), first);
  c.get(key, value, MDB_LAST);
  decode_seq_key(to_span(key), last);
  // The time of the first record at or after `seq`; nullopt past the end.
  auto time_at = [&](std::uint64_t seq) -> result<std::optional<std::pair<std::uint64_t, std::int64_t>>> {
    std::byte key_bytes[8];
    encode_seq_key(seq, key_bytes);
    MDB_val k = to_val(key_bytes, sizeof key_bytes);
    MDB_val v{};
    const int r = c.get(k, v, MDB_SET_RANGE);
    if (r == MDB_NOTFOUND) return std::optional<std::pair<std::uint64_t, std::int64_t>>();
    if (r != 0) return lmdb_error(r);
    std::uint64_t at = 0;
    decode_seq_key(to_span(k), at);
    record_view view;
    if (decode_record(stream, at, to_span(v), view) != record_fault::none) return errc::malformed;
    return std::optional(std::make_pair(at, view.timestamp_ns));
  };
  // Invariant: every record below `lo` is older than the target; `hi` is a sequence at or after
  // which every record is at least as new.
  std::uint64_t lo = first;
  std::uint64_t hi = last + 1;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    auto probe = time_at(mid);
    if (!probe) return probe.error();
    if (!*probe) {
      hi = mid;
      continue;
    }
    const auto [at, ts] = **probe;
    if (ts < timestamp_ns) lo = at + 1;
    else hi = mid;
  }
  // `lo` may fall in a gap (trimmed or removed records): land on the next record that exists.
  auto landed = time_at(lo);
  if (!landed) return landed.error();
  return *landed ? (*landed)->first : last + 1;
}

std::optional<std::uint64_t> journal::cursor(std::string_view name) const {
  check_cursor_name(name);
  return impl_->read_in(cursors_db, [&](MDB_txn* t, MDB_dbi dbi) -> std::optional<std::uint64_t> {
    MDB_val k = to_val(name.data(), name.size());
    MDB_val v{};
    if (mdb_get(t, dbi, &k, &v) != 0 || v.mv_size != 8) return std::nullopt;
    return get_u64_le(v.mv_data);
  });
}

std::optional<std::string> journal::get(std::string_view table, std::string_view key) const {
  check_table_key(key);
  return impl_->read_in(table_db(table), [&](MDB_txn* t, MDB_dbi dbi) -> std::optional<std::string> {
    MDB_val k = to_val(key.data(), key.size());
    MDB_val v{};
    if (mdb_get(t, dbi, &k, &v) != 0) return std::nullopt;
    return std::string(static_cast<const char*>(v.mv_data), v.mv_size);
  });
}

bool journal::seen(const dedup_key& key) const {
  check_dedup_key(key);
  const auto dbs = impl_->dedup_dbis();
  if (!dbs) return false;
  return impl_->read_in(dedup_marks_db, [&](MDB_txn* t, MDB_dbi) -> bool {
    try {
      return already_seen(t, *dbs, key);
    } catch (const lmdb_failure&) {
      return false;
    }
  });
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
  return s;
}

const std::filesystem::path& journal::path() const noexcept { return impl_->dir; }
const journal_options& journal::options() const noexcept { return impl_->options; }

}  // namespace fabric
