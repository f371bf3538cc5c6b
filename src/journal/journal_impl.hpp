// The state behind fabric::journal and fabric::journal_txn, shared by the journal's source files,
// one concern each: journal.cpp (open, close, the registry of open directories), catalog.cpp
// (database handles, loading at open), writer.cpp (the group-commit writer and sync modes),
// dedup.cpp, retention.cpp, timed.cpp (TTL and schedules), dead_letters.cpp, tables.cpp
// (application tables and cursors), reads.cpp (reading streams) and verify.cpp.
//
// Thread safety: as journal.hpp states. Members say which thread or lock owns them.
#pragma once

#include <fabric/journal.hpp>

#include "journal/catalog.hpp"
#include "journal/lmdb.hpp"
#include "journal/record.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric {
namespace journal_detail {

/// now + d, saturating at the int64 range: a huge TTL or age means "never", not "long ago".
inline std::int64_t add_saturating(std::int64_t now, std::int64_t d) noexcept {
  if (d > 0 && now > INT64_MAX - d) return INT64_MAX;
  if (d < 0 && now < INT64_MIN - d) return INT64_MIN;
  return now + d;
}

inline std::int64_t to_ns_saturating(std::chrono::seconds s) noexcept {
  constexpr std::int64_t limit = INT64_MAX / 1'000'000'000;
  if (s.count() >= limit) return INT64_MAX;
  if (s.count() <= -limit) return INT64_MIN;
  return static_cast<std::int64_t>(s.count()) * 1'000'000'000;
}

using txn_function = std::function<void(journal_txn&)>;
using txn_callback = std::function<void(int rc, std::exception_ptr failure)>;

/// What appenders and transact() hand to the writer: an append, a batch of appends to one
/// stream, or a transaction to run alone.
struct pending_append {
  std::string stream{};
  // One record's payload, or for a batch every record's payload end to end (one allocation for
  // the whole batch), cut by batch_sizes.
  std::string payload{};
  std::vector<std::size_t> batch_sizes{};  // empty: one record
  journal::append_callback done{};
  // Set for a transaction; kept behind a pointer so the common entry, an append, stays small.
  struct transaction {
    txn_function fn;
    txn_callback done;
  };
  std::unique_ptr<transaction> txn{};
  std::int64_t ttl_ns = 0;      // > 0: the record expires this long after its append
  std::int64_t deliver_at = 0;  // > 0: held until then (schedule)

  /// How many records this entry appends (a transaction counts as one, for max_pending).
  std::size_t records() const noexcept { return batch_sizes.empty() ? 1 : batch_sizes.size(); }
};

/// An append committed in periodic mode, waiting for the next fsync to complete it.
struct committed_append {
  std::uint64_t seq;
  journal::append_callback done;
};

/// An LMDB failure inside a transaction, carried out of user code to the writer loop.
struct lmdb_failure {
  int rc;
};

/// The handles of the dedup databases.
struct dedup_dbs {
  MDB_dbi marks = 0;
  MDB_dbi window = 0;
  MDB_dbi ids = 0;
  MDB_dbi times = 0;
};

/// Runs `done` with `r`; a callback that throws is reported on stderr, never lets the writer fall.
void complete(journal::append_callback& done, result<std::uint64_t> r) noexcept;

/// Throws fabric::error(invalid_argument) for a dedup_key the dedup databases cannot hold.
void check_dedup_key(const dedup_key& k);

/// The read-only half of mark_seen, in transaction `t`. Throws lmdb_failure when LMDB cannot
/// read, fabric::error(malformed) for a damaged mark.
bool already_seen(MDB_txn* t, const dedup_dbs& dbs, const dedup_key& key);

}  // namespace journal_detail

/// The state behind a journal_txn: the LMDB transaction and what it created.
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
  // The first read through the journal_txn that failed (LMDB's code): such a transaction is not
  // committed, whatever the function did after, so no decision made on a failed read is kept.
  int read_failure = 0;
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
  std::vector<journal_detail::pending_append> queue;
  std::size_t queued_records = 0;  // records in `queue` (pending_append::records), for max_pending
  bool stopping = false;
  bool replan = false;  // the writer must recompute its wake-up time (a policy changed)

  // Writer-thread state.
  std::vector<journal_detail::committed_append> unsynced;
  // Transactions committed and not yet synced, each with the number of entries of `unsynced`
  // committed before it, so that sync_now() completes everything in the order it was handed over.
  struct unsynced_txn {
    journal_detail::txn_callback done;
    std::exception_ptr failure;
    std::size_t after_appends;
  };
  std::vector<unsynced_txn> unsynced_txns;
  std::thread writer;

  std::atomic<std::uint64_t> appends{0}, commits{0}, syncs{0}, largest_batch{0}, map_resizes{0};
  std::atomic<std::size_t> map_size{0};
  std::uint64_t stale_readers = 0;

  int writer_lock_fd = -1;  // flock'ed for the journal's life when opened for writing

  ~impl();

  bool read_only() const noexcept { return options.read_only; }

  // ---- the wall clock (writer.cpp)

  /// The time now by options.clock, in ns since the Unix epoch. Writer thread.
  std::int64_t clock_now_ns() const;

  // ---- transactions and the catalog of databases (catalog.cpp)

  /// Begins a transaction, adopting a map grown by another process if LMDB says so.
  journal_detail::txn begin(unsigned flags, int& rc) const;

  /// A read transaction that holds the map fenced against resizing for its whole life.
  struct read_txn {
    std::shared_lock<std::shared_mutex> map_lock;
    journal_detail::txn t;
  };
  /// Begins a read transaction. Returns nullopt with LMDB's code in `rc` when it cannot.
  std::optional<read_txn> begin_read(int& rc) const;

  /// reads.cpp: hands each record of `stream` from `from_seq` on to `fn`, checked, inside one
  /// read transaction: at most `max_records`, and after the first about `max_bytes` of payload.
  /// Stops at a record that fails its checks, describing it in `corrupt`. Returns the next
  /// sequence to read, or an LMDB error.
  result<std::uint64_t> scan(std::string_view stream, std::uint64_t from_seq, std::size_t max_records,
                             std::size_t max_bytes, const std::function<void(const journal_record_view&)>& fn,
                             std::optional<journal_corruption>& corrupt);

  /// The handle of database `full_name` if it exists (read-only: opened on first use, since
  /// the writing process may have created it since). Returns nullopt when it does not exist,
  /// or with the LMDB code in `*rc` (when given) when it could not be looked for.
  std::optional<MDB_dbi> find_dbi(std::string_view full_name, int* rc = nullptr) const;
  /// Read-only: a database the writing process created after this one opened.
  std::optional<MDB_dbi> refresh_dbi(std::string_view full_name, int* rc) const;
  /// Read-only: the names of the streams on disk now, or LMDB's code.
  result<std::vector<std::string>> stream_names_on_disk() const;
  /// Refuses to create a stream or table past its budget (throws fabric::error(too_large)).
  void check_budget(const journal_txn::state& st, std::string_view full_name) const;
  /// The handle of `full_name` in the writer's transaction, created when `create` is set.
  /// Returns nullopt when it does not exist and create is unset. Throws lmdb_failure.
  std::optional<MDB_dbi> dbi_for(journal_txn::state& st, std::string_view full_name, bool create);
  /// The dedup databases; nullopt only for a read-only journal written before they existed.
  std::optional<journal_detail::dedup_dbs> dedup_dbis() const;

  /// Runs `fn(txn, dbi)` in a short read transaction over database `full_name`.
  /// Returns: `fn`'s result; `absent` when the database does not exist; LMDB's error when the
  /// database or the transaction could not be opened.
  template <class T, class F>
  result<T> read_in(std::string_view full_name, T absent, F fn) const {
    int rc = 0;
    const auto dbi = find_dbi(full_name, &rc);
    if (rc != 0) return journal_detail::lmdb_error(rc);
    if (!dbi) return absent;
    auto reading = begin_read(rc);
    if (!reading) return journal_detail::lmdb_error(rc);
    return fn(reading->t.get(), *dbi);
  }

  /// Puts `key` -> `value` in database `name` of the writer's transaction. Throws lmdb_failure.
  void put_in(journal_txn::state& st, std::string_view name, std::string_view key, std::string_view value);
  /// The next value of counter `name` (1, 2, 3, ...), kept in the transaction.
  std::uint64_t next_counter(journal_txn::state& st, std::string_view name);

  /// Opens every database that exists at open, and learns each stream's last sequence number.
  void load_databases();
  void check_pages_for_open(journal_detail::txn& t, unsigned flags);
  std::uint64_t stored_last_seq(MDB_txn* t, const std::string& stream) const;
  void load_stream_bytes(MDB_txn* t);

  // ---- the writer (writer.cpp)

  int grow_map();
  journal_txn::state::stream_slot& slot_for(journal_txn::state& st, std::string_view stream);
  /// Appends one record in the writer's transaction. Throws lmdb_failure, or fabric::error
  /// past a budget.
  std::uint64_t append_in(journal_txn::state& st, std::string_view stream, std::string_view payload);
  /// Appends every record of batch entry `a`. Returns the first sequence number, or 0 when the
  /// stream is past a budget (then nothing was appended). Throws lmdb_failure.
  std::uint64_t append_batch_in(journal_txn::state& st, const journal_detail::pending_append& a);
  /// Removes record `seq` of `stream`, if present. Returns its payload size, or -1.
  std::int64_t remove_record(journal_txn::state& st, const std::string& stream, std::uint64_t seq);
  void fold_stream_bytes(journal_txn::state& st);
  void persist_last_seqs(journal_txn::state& st);
  void persist_stream_bytes(journal_txn::state& st);
  void publish(journal_txn::state& st);
  int write_batch(std::span<journal_detail::pending_append> batch, std::vector<std::uint64_t>& seqs,
                  std::exception_ptr& txn_failure);
  void sync_now();
  bool has_unsynced() const noexcept { return !unsynced.empty() || !unsynced_txns.empty(); }
  void enqueue(journal_detail::pending_append&& work);
  std::size_t unit_at(const std::vector<journal_detail::pending_append>& taken, std::size_t from) const;
  void finish_batch(std::span<journal_detail::pending_append> batch, const std::vector<std::uint64_t>& seqs,
                    int rc, std::exception_ptr txn_failure, bool periodic);
  void run_writer();
  /// Enqueues `work` and waits for its result.
  result<std::uint64_t> enqueue_and_wait(journal_detail::pending_append&& work);

  // ---- dedup (dedup.cpp)

  /// Forgets dedup ids past their age or count, a bounded amount per commit.
  void prune_dedup(journal_txn::state& st);

  // ---- retention (retention.cpp)

  void load_policies(MDB_txn* t);
  bool has_age_limits() const;
  /// Trims streams past their retention policy, a bounded amount per stream per commit.
  void apply_retention(journal_txn::state& st);

  // ---- timed records (timed.cpp)

  void add_expiry(journal_txn::state& st, std::string_view stream, std::uint64_t seq, std::int64_t ttl_ns);
  std::uint64_t add_scheduled(journal_txn::state& st, std::string_view stream, std::string_view payload,
                              std::int64_t deliver_at);
  /// Removes expired records and appends scheduled ones that are due, a bounded amount per commit.
  void run_timed(journal_txn::state& st);

  // ---- dead letters (dead_letters.cpp)

  /// Puts a payload that never made it into a stream into the dead-letter queue.
  void dead_letter_raw(journal_txn::state& st, const std::string& stream, const std::string& reason,
                       const std::string& payload);
};

}  // namespace fabric
