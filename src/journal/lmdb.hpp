// Thin RAII over the LMDB C API: environment, transaction, cursor, and LMDB's error codes as a
// std::error_category. The only header in fabric that includes <lmdb.h>, with lmdb.cpp.
//
// Thread safety: as LMDB's. An env is shared; a txn and its cursors belong to one thread at a
// time (the env is opened with MDB_NOTLS, so read transactions are not tied to a thread).
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace fabric::journal_detail {

/// LMDB's return codes (MDB_* and errno values), named "lmdb".
const std::error_category& lmdb_category() noexcept;
inline std::error_code lmdb_error(int rc) noexcept { return {rc, lmdb_category()}; }
/// Throws fabric::error(io_error) with `what` and LMDB's text for `rc`.
[[noreturn]] void throw_lmdb(int rc, const std::string& what);

inline MDB_val to_val(const void* data, std::size_t size) noexcept {
  return MDB_val{size, const_cast<void*>(data)};
}
inline std::span<const std::byte> to_span(const MDB_val& v) noexcept {
  return {static_cast<const std::byte*>(v.mv_data), v.mv_size};
}

class env {
 public:
  env();
  ~env();
  env(const env&) = delete;
  env& operator=(const env&) = delete;

  MDB_env* get() const noexcept { return env_; }
  /// Closes the environment now. Idempotent.
  void close() noexcept {
    if (env_ != nullptr) mdb_env_close(std::exchange(env_, nullptr));
  }

 private:
  MDB_env* env_ = nullptr;
};

/// A transaction; aborted on destruction unless committed.
class txn {
 public:
  txn() = default;
  /// Begins a transaction. Returns the LMDB code through `rc` (0 on success).
  txn(MDB_env* e, unsigned flags, int& rc) noexcept { rc = mdb_txn_begin(e, nullptr, flags, &txn_); }
  ~txn() { abort(); }
  txn(txn&& o) noexcept : txn_(std::exchange(o.txn_, nullptr)) {}
  txn& operator=(txn&& o) noexcept {
    if (this != &o) {
      abort();
      txn_ = std::exchange(o.txn_, nullptr);
    }
    return *this;
  }

  MDB_txn* get() const noexcept { return txn_; }
  explicit operator bool() const noexcept { return txn_ != nullptr; }
  /// Commits; the transaction is gone afterwards whatever the outcome.
  int commit() noexcept { return mdb_txn_commit(std::exchange(txn_, nullptr)); }
  void abort() noexcept {
    if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
  }

 private:
  MDB_txn* txn_ = nullptr;
};

class cursor {
 public:
  cursor(MDB_txn* t, MDB_dbi dbi, int& rc) noexcept { rc = mdb_cursor_open(t, dbi, &cursor_); }
  ~cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;

  int get(MDB_val& key, MDB_val& value, MDB_cursor_op op) noexcept {
    return mdb_cursor_get(cursor_, &key, &value, op);
  }
  /// Deletes the entry the cursor is on.
  int del() noexcept { return mdb_cursor_del(cursor_, 0); }

 private:
  MDB_cursor* cursor_ = nullptr;
};

}  // namespace fabric::journal_detail
