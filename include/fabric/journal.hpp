// fabric::journal: a durable, append-only log of named streams at each peer, in one LMDB
// environment per directory. It is what lets fabric promise at-least-once delivery and replay
// without a broker.
//
// Appends from any number of threads are handed to one writer thread, which commits them in
// batches (group commit): each append completes only once its commit is durable under the
// journal's durability mode. The batch is whatever arrived while the previous commit was being
// made durable, so a lone append is never held back by a timer, and under load one fsync serves
// many appends. append_batch() hands over several records of one stream at once: they share one
// commit and one completion.
//
// Reads report failures as errors: a member that reads the journal returns a result, and an
// LMDB failure (or a damaged stored value) comes back as an error, never as "absent", "empty"
// or "not seen".
//
// Thread safety: a journal may be used from any number of threads at once. Callbacks passed to
// append() run on the writer thread: they must be quick and must not call back into the
// journal's blocking members (wait on a future from another thread instead). To act on
// completions in a thread of your own (a reactor's), append with a fabric::completion_queue.
#pragma once

#include <fabric/completion_queue.hpp>
#include <fabric/message_id.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric {

/// When an append (or a transaction) counts as done, and what it survives once done.
///
/// A crash of the process never loses a completed append in any mode. Across an OS crash or a
/// power cut, sync and periodic lose no completed append and leave a journal that opens; appends
/// not yet completed may be there or not, whole or not at all, in order. fabric's power-loss
/// test (tests/chaos/powerloss) checks this: it logs the journal's writes and syncs and rebuilds
/// what a disk could hold after a power cut at hundreds of points (everything synced plus any
/// subset of the unsynced pages); sync and periodic survive every one, none loses or damages
/// completed appends at most of them. Creating a journal is atomic in every mode: open() builds
/// the new data.mdb aside, syncs it and renames it into place, then syncs the directory, so a
/// crash inside that open() leaves no data.mdb (the next open creates the journal afresh) or a
/// whole, empty one; once it has returned, data.mdb is there after any crash (`dir` itself is
/// not synced into its parent: create and sync it beforehand if a crash must not lose it).
enum class durability {
  /// After its commit is on disk (the default): LMDB fdatasyncs the commit's pages, then writes
  /// its meta page synchronously. Two flushes per commit, shared by every append in the batch.
  sync,
  /// After the first writer sync that follows its commit: LMDB fdatasyncs each commit's pages
  /// but not its meta page (MDB_NOMETASYNC), and a sync makes the last commit durable and
  /// completes everything committed before it. The writer syncs as soon as, after a commit, no
  /// more work is queued, or once sync_interval has passed since the first commit not yet
  /// synced, whichever comes first. So an idle journal completes an append after one commit and
  /// one sync (as sync mode does), while under load many commits share one sync per interval
  /// and an append waits at most about sync_interval (plus the commit running then). Survives
  /// what sync survives. A crash may undo commits whose appends had not completed, never older
  /// ones.
  periodic,
  /// At commit, with nothing synced (MDB_NOSYNC). Survives a process crash only: an OS crash or
  /// a power cut may lose completed appends, and may damage the journal so that it no longer
  /// opens or holds corrupt records. For data that can be rebuilt.
  none,
};

/// Settings fixed when a journal is opened.
struct journal_options {
  /// Open an existing journal to read it only: no writer thread, nothing created or changed,
  /// appends and transactions refused with errc::invalid_state. Any number of processes may
  /// read a journal while one process writes it.
  bool read_only = false;
  durability mode = durability::sync;
  /// periodic mode: the longest the writer lets commits go unsynced while more work keeps
  /// arriving, and so about the longest an append waits to complete under load. An idle writer
  /// does not wait for it: it syncs as soon as nothing more is queued (see durability::periodic).
  std::chrono::milliseconds sync_interval{10};
  /// The LMDB map size to start with; it doubles when full, up to max_map_size.
  std::size_t map_size = std::size_t{64} << 20;
  std::size_t max_map_size = std::size_t{1} << 40;
  /// The most streams the journal can hold; appending to one more fails with errc::too_large.
  unsigned max_streams = 1024;
  /// The most application tables (journal_txn::put) the journal can hold.
  unsigned max_tables = 64;
  /// The most records one commit takes, and so the most one append_batch() may hold.
  std::size_t max_batch = 4096;
  /// The largest payload append() accepts.
  std::size_t max_record_size = std::size_t{16} << 20;
  /// Records waiting for the writer before append() reports errc::back_pressure. An
  /// append_batch() counts as its number of records, a transaction as one.
  std::size_t max_pending = 1u << 20;
  /// Dedup: message ids remembered per journal for mark_seen() by id, and for how long. The
  /// oldest are forgotten first, by the writer, in the background.
  std::size_t dedup_max_ids = 1u << 20;
  std::chrono::seconds dedup_max_age{std::chrono::hours(24 * 7)};
  /// Dedup: out-of-order sequence numbers remembered above a (producer, stream)'s highest
  /// contiguous one. Past this many, the lowest gap is given up: the mark jumps over it.
  std::size_t dedup_max_window = 65536;
  /// The wall clock the journal reads: the append time stamped on each record, and the "now"
  /// that TTL expiry, scheduled delivery, age retention and dedup_max_age are measured against.
  /// Called on the writer thread, once per commit; a clock that steps back is held at the
  /// latest time already stamped, so append times never go backwards. Tests pass a fake clock.
  /// The writer's own timers (sync_interval, the once-a-second pass) run on the steady clock.
  /// Empty means std::chrono::system_clock, which also stands in for a commit whose clock throws.
  std::function<std::chrono::system_clock::time_point()> clock = [] { return std::chrono::system_clock::now(); };
};

/// How much of a stream to keep. The writer trims the oldest records beyond any limit, a bounded
/// amount per commit (and once a second when idle), so trimming never stalls appends.
struct retention_policy {
  std::uint64_t max_records = 0;   ///< 0 = no limit
  std::uint64_t max_bytes = 0;     ///< payload bytes; 0 = no limit
  std::chrono::seconds max_age{0}; ///< by append time; 0 = no limit
  /// When not empty, only records every one of these cursors has passed (seq <= cursor) may be
  /// trimmed: nothing a named consumer has not acknowledged is lost to retention.
  std::vector<std::string> ack_cursors{};

  friend bool operator==(const retention_policy&, const retention_policy&) = default;
};

/// A record moved to the dead-letter queue, with why.
struct dead_letter {
  std::uint64_t id = 0;            ///< its place in the dead-letter queue, from 1
  std::string stream;              ///< where it came from
  std::uint64_t seq = 0;           ///< its sequence there
  std::string reason;
  std::uint32_t attempts = 0;      ///< delivery attempts made before it was given up
  std::int64_t timestamp_ns = 0;   ///< when it was dead-lettered
  std::string payload;
};

/// What identifies a message for deduplication.
struct dedup_key {
  std::string_view producer;  ///< the producer's id (1-255 bytes)
  std::string_view stream;    ///< the producer's stream (0-255 bytes; with producer at most 500)
  std::uint64_t seq = 0;      ///< the producer's sequence in that stream (from 1); 0 = unknown
  message_id id;              ///< the message id; all zero = unknown
};

/// The effect of journal_txn::mark_seen.
enum class dedup_verdict {
  fresh,      ///< not seen before; now marked
  duplicate,  ///< seen before: at or below the highest contiguous sequence, or by id
};

/// One write transaction of a journal, handed to the function given to journal::transact.
/// Everything done through it commits together, durably, or not at all. Valid only inside that
/// function, on the journal's writer thread.
class journal_txn {
 public:
  /// Appends to `stream` as part of this transaction (a transactional outbox).
  /// Returns: the record's sequence number. Throws: fabric::error(too_large) for a bad stream
  /// name or payload.
  std::uint64_t append(std::string_view stream, std::string_view payload);

  /// Application state: `table` (1-255 bytes) maps keys (1-511 bytes) to values.
  void put(std::string_view table, std::string_view key, std::string_view value);
  /// A value of `table` as this transaction sees it.
  /// Returns: the value, nullopt when the key (or the table) does not exist, or an LMDB error
  /// (category "lmdb") when it could not be read. Once a read has failed in LMDB, the
  /// transaction does not commit: transact() returns that error, so nothing decided on a failed
  /// read is kept.
  /// Throws: fabric::error(invalid_argument) for a bad table name or key.
  result<std::optional<std::string>> get(std::string_view table, std::string_view key) const;
  /// Returns: true when the key existed.
  bool erase(std::string_view table, std::string_view key);

  /// Checks `key` against everything marked before and marks it: the check-and-mark is part of
  /// this transaction, so an application that writes its effects in the same transaction
  /// processes each message effectively once. It never answers fresh when it could not look:
  /// an LMDB failure fails the transaction (transact() returns the error), and a damaged mark
  /// throws.
  /// Throws: fabric::error — invalid_argument for a bad key, malformed when the stored mark of
  /// (producer, stream) is damaged (uncaught, it leaves transact() and nothing is kept).
  dedup_verdict mark_seen(const dedup_key& key);

  /// Moves record `seq` of `stream` to the dead-letter queue with `reason` and `attempts`.
  /// Returns: its dead-letter id, or 0 when the stream has no such record.
  std::uint64_t dead_letter(std::string_view stream, std::uint64_t seq, std::string_view reason,
                            std::uint32_t attempts);

  /// Named consumer offsets.
  void set_cursor(std::string_view name, std::uint64_t seq);
  /// Returns: the offset, nullopt when the cursor was never set, errc::malformed when its stored
  /// value is damaged (set_cursor may repair it in the same transaction), or an LMDB error,
  /// which keeps the transaction from committing, as for get().
  /// Throws: fabric::error(invalid_argument) for a bad name.
  result<std::optional<std::uint64_t>> cursor(std::string_view name) const;

  journal_txn(const journal_txn&) = delete;
  journal_txn& operator=(const journal_txn&) = delete;

 private:
  friend class journal;
  struct state;
  explicit journal_txn(state& s) noexcept : state_(s) {}
  state& state_;
};

/// One record read back from a stream.
struct journal_record {
  std::uint64_t seq = 0;            ///< position in the stream, from 1
  std::int64_t timestamp_ns = 0;    ///< append time, ns since the Unix epoch
  std::string payload;
};

/// One record as journal::read_views() hands it over: the payload is a view into the journal's
/// map, valid only during the call.
struct journal_record_view {
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::string_view payload;
};

/// A record that failed its checks, with where it is.
struct journal_corruption {
  std::string stream;
  std::uint64_t seq = 0;
  std::string what;  ///< e.g. "CRC mismatch"
};

/// A bounded slice of a stream, as read() returns it.
struct journal_chunk {
  std::vector<journal_record> records;  ///< in sequence order, every one checked
  std::uint64_t next_seq = 0;           ///< where the next read should start
  /// Set when reading stopped at a record that failed its checks; the records before it are
  /// valid and returned. Corrupt records are never returned as valid.
  std::optional<journal_corruption> corruption;
};

/// Damage verify() found beyond single records: in the data file's pages, or a stream whose
/// stored accounting disagrees with the records it holds.
struct journal_damage {
  std::string stream;  ///< the stream concerned, or empty when it concerns the file or another database
  std::string what;    ///< where (page numbers, databases) and what is wrong
};

/// What verify() found.
struct journal_verify_report {
  std::uint64_t streams = 0;                    ///< streams found
  std::uint64_t records = 0;                    ///< records that passed their checks
  std::uint64_t bytes = 0;                      ///< their payload bytes
  std::vector<journal_corruption> corruptions;  ///< every record that failed, in order
  std::vector<journal_damage> damage;           ///< everything else found wrong
  /// No corrupt record and no damage.
  bool clean() const noexcept { return corruptions.empty() && damage.empty(); }
};

/// One stream's extent, as read from the journal.
struct journal_stream_info {
  std::string name;
  std::uint64_t first_seq = 0;  ///< 0 when the stream is empty
  std::uint64_t last_seq = 0;
  std::uint64_t records = 0;
};

/// Counters since the journal was opened.
struct journal_stats {
  std::uint64_t appends = 0;        ///< records appended and committed, each record of a batch counted
                                    ///< (in periodic mode, durable at the next sync)
  std::uint64_t commits = 0;        ///< LMDB write transactions committed
  std::uint64_t syncs = 0;          ///< fsyncs the writer ran itself (periodic mode)
  std::uint64_t largest_batch = 0;  ///< most records appended in one commit
  std::uint64_t map_resizes = 0;    ///< times the map grew
  std::size_t map_size = 0;         ///< current map size in bytes
  std::uint64_t stale_readers = 0;  ///< reader slots of dead processes cleared at open
  std::uint64_t expired = 0;        ///< records removed at the end of their TTL
  std::uint64_t delivered_scheduled = 0;  ///< scheduled records appended when due
  /// Records waiting for the writer right now (counted as for max_pending): a gauge, not a
  /// counter.
  std::uint64_t queued = 0;
};

class journal {
 public:
  using append_callback = std::function<void(result<std::uint64_t> seq)>;

  /// Opens (creating if needed) the journal in directory `dir` (created too). A new journal is
  /// created atomically (see durability): built in `dir`/.creating, synced, renamed to
  /// `dir`/data.mdb and the directory synced; a .creating left by a crash is removed first.
  /// One process at a time may open a journal for writing (a lock file in `dir` enforces it):
  /// the writer keeps sequence numbers and counts in memory, which a second writer would
  /// invalidate.
  /// Damaged files: before LMDB maps an existing data file, open checks its meta pages and that
  /// the file holds every page they name, then checks every page open has LMDB read (the list
  /// of databases, the path to each stream's last record, and for writing the free list); it
  /// refuses damage rather than let LMDB fault or abort on it. It does not read the rest of the
  /// file: a damaged page elsewhere can still make a later read, or the writer, fail with an
  /// LMDB error, abort or fault. Check a journal you do not trust with verify() first (see
  /// docs/journal-format.md, "Damaged files").
  /// Throws: fabric::error — invalid_state when this process already has `dir` open (LMDB must
  /// not be opened twice in one process) or another process has it open for writing,
  /// invalid_argument for bad options or, read-only, a directory with no journal, malformed for a
  /// damaged data file (empty, shorter than its meta pages say, bad meta pages, a damaged page
  /// open reads; the message names the file and says what is wrong), io_error when a new
  /// journal cannot be created or LMDB cannot open it for another reason (the message says why).
  static journal open(const std::filesystem::path& dir, const journal_options& options = {});

  /// Completes every append already accepted, stops the writer and closes the environment.
  ~journal();
  journal(journal&&) noexcept;
  journal& operator=(journal&&) noexcept;
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  /// Appends `payload` to `stream` (created on first use). `done` runs on the writer thread once
  /// the append is durable, with its sequence number, or with errc::too_large (payload over
  /// max_record_size, stream name empty, over 255 bytes or holding a NUL byte, or a new stream
  /// past max_streams), errc::back_pressure (max_pending
  /// reached; `done` runs before append returns), errc::closed (journal closing),
  /// errc::invalid_state (opened read-only), or an LMDB error in category "lmdb" (for example
  /// MDB_MAP_FULL once the map is at max_map_size; also written to stderr).
  void append(std::string_view stream, std::string_view payload, append_callback done);
  /// As above, completed through `queue` instead of a callback: once durable (or refused) the
  /// writer pushes {token, result} onto it, for the thread that drains it (see
  /// completion_queue.hpp). Appends made one after another complete in that order; a refused
  /// one (too_large, back_pressure, closed, invalid_state) is pushed before append returns, so
  /// it may come before earlier appends still in flight. `queue` must outlive the append's
  /// completion (destroying the journal completes every append first).
  void append(std::string_view stream, std::string_view payload, completion_queue& queue, std::uint64_t token);
  /// As above, with a future for the result.
  std::future<result<std::uint64_t>> append(std::string_view stream, std::string_view payload);
  /// Appends and waits until durable.
  result<std::uint64_t> append_wait(std::string_view stream, std::string_view payload);

  /// Appends every payload of `payloads` to `stream`, in order, as one unit: the records get
  /// consecutive sequence numbers and go into one commit, never split across commits, so after
  /// any crash either all of them are in the journal or none is. `done` runs once, on the writer
  /// thread, when the commit is durable (as for append()), with the first record's sequence
  /// number (the last is that plus payloads.size() - 1), or with an error that applies to every
  /// record, none of which is then kept: errc::invalid_argument (no payloads), errc::too_large
  /// (a payload over max_record_size, a bad stream name, a new stream past max_streams, or more
  /// payloads than max_batch or max_pending: such a batch could never be taken whole, so it is
  /// refused rather than split), errc::back_pressure (fewer than payloads.size() places left
  /// under max_pending), errc::closed, errc::invalid_state, or an LMDB error (category "lmdb";
  /// MDB_TXN_FULL when the batch holds more bytes than one LMDB transaction can, about 512 MiB
  /// with 4 KiB pages). Refusals run `done` before append_batch returns. The batch counts as
  /// payloads.size() appends against max_pending and in stats(). Appends of other threads to
  /// the same stream come before or after the whole batch, never inside it. The payloads are
  /// copied before append_batch returns.
  void append_batch(std::string_view stream, std::span<const std::string_view> payloads, append_callback done);
  /// As above, completed through `queue` with one {token, result} entry for the whole batch,
  /// under the rules of append(stream, payload, queue, token).
  void append_batch(std::string_view stream, std::span<const std::string_view> payloads, completion_queue& queue,
                    std::uint64_t token);
  /// As above, with a future for the first sequence number (or the error).
  std::future<result<std::uint64_t>> append_batch(std::string_view stream, std::span<const std::string_view> payloads);
  /// Appends the batch and waits until it is durable.
  /// Returns: the first record's sequence number, or the errors above.
  result<std::uint64_t> append_batch_wait(std::string_view stream, std::span<const std::string_view> payloads);

  /// Appends a record that expires `ttl` after its append: the writer removes it (and counts it
  /// in stats().expired) within about a second of expiry. Readers may still see it until then.
  result<std::uint64_t> append_wait(std::string_view stream, std::string_view payload,
                                    std::chrono::nanoseconds ttl);

  /// Holds `payload` until `deliver_at_ns` (ns since the Unix epoch), then appends it to
  /// `stream` (within about a second); until then readers do not see it and it has no sequence
  /// number. The schedule is durable like an append.
  /// Returns: an id for the scheduled record, or the errors of append().
  result<std::uint64_t> schedule(std::string_view stream, std::string_view payload,
                                 std::int64_t deliver_at_ns);
  /// As above, completed through `queue` with `token` and the scheduled record's id once the
  /// schedule is durable, as append(stream, payload, queue, token) is.
  void schedule(std::string_view stream, std::string_view payload, std::int64_t deliver_at_ns,
                completion_queue& queue, std::uint64_t token);
  /// Returns: the number of records scheduled and not yet appended, or an LMDB error.
  result<std::uint64_t> scheduled_count() const;

  /// The dead-letter queue, from id `from` on, at most `max` entries.
  /// Returns: the entries in id order, errc::malformed when an entry in that range is damaged
  /// (its stored value does not decode), or an LMDB error (category "lmdb").
  result<std::vector<fabric::dead_letter>> dead_letters(std::uint64_t from = 1, std::size_t max = 1000) const;
  /// Appends dead letter `id` back to its stream (under a new sequence number) and removes it
  /// from the queue. Returns: the new sequence number, errc::invalid_argument for an unknown id,
  /// or an LMDB error.
  result<std::uint64_t> requeue(std::uint64_t id);
  /// Removes dead letter `id` for good. Returns: true when it existed.
  result<bool> discard_dead_letter(std::uint64_t id);

  /// Runs `fn` on the writer thread in a write transaction of its own and waits until that
  /// transaction is durable. If `fn` throws, nothing it did is kept and the exception is
  /// rethrown here. `fn` may run more than once (the transaction is retried after the map
  /// grows), so it must act only through the journal_txn. Each call is one commit: to process
  /// many messages quickly, handle a batch of them per call.
  /// Returns: success, errc::closed, or an LMDB error (category "lmdb").
  result<void> transact(const std::function<void(journal_txn&)>& fn);

  /// What an asynchronous transaction ended with: `outcome` is success once it is durable,
  /// errc::closed, errc::invalid_state (read-only) or an LMDB error; `thrown` holds what `fn`
  /// threw, in which case nothing it did was kept and `outcome` is success.
  using transact_callback = std::function<void(result<void> outcome, std::exception_ptr thrown)>;
  /// Runs `fn` as transact() does, without waiting for it: `done` runs once the transaction is
  /// durable or has failed, on the writer thread (or on the caller's before this returns, when
  /// the journal is closing or read-only). Transactions and appends are committed in the order
  /// they were handed over, so a reliable channel can pipeline its commits and act on each
  /// completion in turn. `fn` runs on the writer thread, may run more than once (as for
  /// transact()), and must stay valid until `done` has run; `done` must be quick and must not
  /// call the journal's blocking members.
  void transact(std::function<void(journal_txn&)> fn, transact_callback done);

  /// Sets (and persists) the retention policy of `stream`; an all-default policy removes it.
  /// Returns: success, errc::invalid_argument for a bad stream name, or an LMDB error.
  result<void> set_retention(std::string_view stream, const retention_policy& policy);
  /// The retention policy of `stream`.
  /// Returns: the policy, nullopt when none is set, or, read-only (where it is read from disk,
  /// as the writing process last committed it), an LMDB error or errc::malformed for a damaged
  /// stored policy.
  result<std::optional<retention_policy>> retention(std::string_view stream) const;

  /// The first sequence number of `stream` whose append time is at or after `timestamp_ns`
  /// (last_seq + 1 when there is none), found by binary search: the writer keeps append times
  /// non-decreasing, so the stream is its own time index. Use it to replay from a time.
  result<std::uint64_t> seq_at_time(std::string_view stream, std::int64_t timestamp_ns) const;

  /// A consumer offset as last committed.
  /// Returns: the offset, nullopt when the cursor was never set, errc::malformed when its stored
  /// value is damaged, or an LMDB error (category "lmdb") when it could not be read.
  /// Throws: fabric::error(invalid_argument) for a bad name.
  result<std::optional<std::uint64_t>> cursor(std::string_view name) const;
  /// Whether `key` has been marked seen (a read-only check; use mark_seen to check and mark).
  /// Returns: true or false only when it could look: errc::malformed for a damaged mark, or an
  /// LMDB error when the journal could not be read. Never "not seen" for a failed look.
  /// Throws: fabric::error(invalid_argument) for a bad key.
  result<bool> seen(const dedup_key& key) const;
  /// A value of application state as last committed.
  /// Returns: the value, nullopt when the key (or the table) does not exist, or an LMDB error.
  /// Throws: fabric::error(invalid_argument) for a bad table name or key.
  result<std::optional<std::string>> get(std::string_view table, std::string_view key) const;
  /// The entries of `table` as last committed, in key order (bytewise), from the first key
  /// after `after` (empty: from the first key) on, at most `max`, in one short read
  /// transaction. To list a large table, call again with the last key returned as `after`
  /// until fewer than `max` come back.
  /// Returns: the (key, value) pairs (none when the table does not exist), or an LMDB error
  /// (category "lmdb") when the table could not be read.
  /// Throws: fabric::error(invalid_argument) for a bad table name or an `after` over 511 bytes.
  result<std::vector<std::pair<std::string, std::string>>> table_entries(std::string_view table,
                                                                          std::string_view after = {},
                                                                          std::size_t max = 1000) const;

  /// Reads records of `stream` from `from_seq` on, at most `max_records` and (after the first
  /// record) about `max_bytes` of payload, in one short read transaction.
  /// Returns: the chunk (empty at the end of the stream), or errc::invalid_argument for a stream
  /// name that is empty or too long. An unknown stream reads as empty.
  result<journal_chunk> read(std::string_view stream, std::uint64_t from_seq,
                             std::size_t max_records = 1024,
                             std::size_t max_bytes = std::size_t{4} << 20) const;

  /// As read(), without copying: calls `fn` for each record (checked as read() checks it) inside
  /// the read transaction, so a reader that copies the payload once into a buffer of its own
  /// (a message frame) saves the copy and the allocation read() makes. `fn` must be quick and
  /// must not call into the journal.
  /// Returns: the next sequence to read (as journal_chunk::next_seq), errc::malformed at a
  /// record that fails its checks (the records before it were handed over), or the errors of
  /// read().
  result<std::uint64_t> read_views(std::string_view stream, std::uint64_t from_seq, std::size_t max_records,
                                   std::size_t max_bytes,
                                   const std::function<void(const journal_record_view&)>& fn) const;

  /// Calls `fn` for each record of `stream` from `from_seq` on, reading in bounded chunks so no
  /// read transaction lives long; `fn` returns false to stop early.
  /// Returns: the number of records delivered, or errc::malformed when a corrupt record was met
  /// (delivery stops before it; `on_corrupt`, if given, is told where and why).
  result<std::uint64_t> replay(std::string_view stream, std::uint64_t from_seq,
                               const std::function<bool(const journal_record&)>& fn,
                               const std::function<void(const journal_corruption&)>& on_corrupt = {}) const;

  /// Checks the whole journal as of one snapshot: every page of the data file (kind, bounds,
  /// nodes, the counts LMDB keeps, each page used once), every record of every stream (format
  /// and CRC), and the accounts kept beside the records (each stream's payload bytes and last
  /// sequence number, the dead-letter and schedule counters). It reads the file directly, with
  /// every read bounds-checked, never through LMDB, so damage cannot make it crash. It holds one
  /// read transaction while it runs, so the writer cannot reuse pages freed meanwhile, and the
  /// map cannot grow in this process until it returns (an append that needs a bigger map waits).
  /// Returns: what it found; clean() when nothing.
  journal_verify_report verify() const;
  /// Writes a compacted copy of the environment into directory `dest` (which must exist and be
  /// empty): free pages are dropped, so the copy can be much smaller. The journal stays usable.
  /// Returns: success, or an LMDB error.
  result<void> copy_to(const std::filesystem::path& dest, bool compact = true) const;
  /// Extents of every stream.
  /// Returns: one entry per stream, sorted by name, or an LMDB error.
  result<std::vector<journal_stream_info>> stream_infos() const;

  /// The last sequence number handed out in `stream` (its last record may since have been
  /// removed). Kept in memory by a writing journal; read from disk by a read-only one.
  /// Returns: the number, nullopt when the stream has none (or the name is not a valid stream
  /// name), or, read-only, an LMDB error.
  result<std::optional<std::uint64_t>> last_seq(std::string_view stream) const;
  /// The names of the streams, sorted.
  /// Returns: the names, or, read-only (where they are read from disk), an LMDB error.
  result<std::vector<std::string>> streams() const;

  journal_stats stats() const;
  const std::filesystem::path& path() const noexcept;
  const journal_options& options() const noexcept;

 private:
  friend class journal_txn;
  struct impl;
  explicit journal(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric
