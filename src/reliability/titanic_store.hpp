// The Titanic service's journal layout (docs/titanic.md, section 7) and its replication log
// (docs/ha.md, section 9): the encodings of request records and state rows, the one function that
// writes a commit's changes into a transaction, and the encoding of those changes as one entry of
// the replication log. The service writes its commits with apply(); a replica applies the entries
// it fetches with the same function, so both journals hold the same tables.
//
// Journal layout (besides docs/titanic.md's tables):
//   table tsp.replog    position(8) -> ops: one entry per commit of the active node, in order
//   table tsp.pair      "head" -> position(8) term(8): the last entry of tsp.replog (kept when
//                                  the log is trimmed, so that a follower can be checked
//                                  against it)
//                       "base" -> position(8) term(8): the last entry trimmed from tsp.replog
//                       "term" -> term(8): the highest replication term this journal has seen
//
// ops := version(1) = 1 | term(8) | wall-ns(8) | change-count(4) | change...
// change := kind(1) | uuid(16) | attempts(4) | key-size(1) key | service-size(1) service |
//           reason-size(2) reason | index-size(1) index | frame-count(4) { frame-size(4) frame }...
// (big-endian). `term` is the writer's replication term (section 9.4); `wall-ns` the writer's
// clock when it wrote the commit, so that both journals keep the same store and finish times.
#pragma once

#include "core/byte_order.hpp"
#include "reliability/tsp.hpp"
#include "reliability/tsp_server.hpp"

#include <fabric/journal.hpp>
#include <fabric/message.hpp>
#include <fabric/result.hpp>
#include <fabric/titanic.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::titanic::store {

inline constexpr std::uint8_t record_version = 1;
inline constexpr std::uint8_t state_open = 1;
inline constexpr std::uint8_t state_replied = 2;
inline constexpr std::uint8_t state_given_up = 3;
inline constexpr std::string_view scanned_cursor = "tsp.scanned";
inline constexpr std::string_view trimmed_cursor = "tsp.trimmed";
// "in-flight" -> requests in flight (8) and when (8, ns): for tools, written by every commit.
inline constexpr std::string_view status_table = "tsp.status";
inline constexpr std::string_view replog_table = "tsp.replog";
inline constexpr std::string_view pair_table = "tsp.pair";
inline constexpr std::string_view head_key = "head";
inline constexpr std::string_view term_key = "term";
inline constexpr std::string_view base_key = "base";
inline constexpr std::uint8_t ops_version = 1;

inline void put_u32(std::string& s, std::uint32_t v) {
  unsigned char b[4];
  detail::store_be(v, b);
  s.append(reinterpret_cast<const char*>(b), 4);
}
inline void put_u64(std::string& s, std::uint64_t v) {
  unsigned char b[8];
  detail::store_be(v, b);
  s.append(reinterpret_cast<const char*>(b), 8);
}
inline std::string be64(std::uint64_t v) {
  std::string s;
  put_u64(s, v);
  return s;
}
inline std::string_view uuid_key(const tsp::uuid& id) {
  return {reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()};
}

// Reads a bounded, big-endian encoding front to back; every read checks the bytes left.
struct reader {
  std::string_view in;
  bool ok = true;

  bool take(std::size_t n, std::string_view& out) {
    if (!ok || in.size() < n) return ok = false;
    out = in.substr(0, n);
    in.remove_prefix(n);
    return true;
  }
  std::uint8_t u8() {
    std::string_view b;
    return take(1, b) ? static_cast<std::uint8_t>(b[0]) : 0;
  }
  std::uint32_t u32() {
    std::string_view b;
    return take(4, b) ? detail::load_be<std::uint32_t>(reinterpret_cast<const unsigned char*>(b.data())) : 0;
  }
  std::uint64_t u64() {
    std::string_view b;
    return take(8, b) ? detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(b.data())) : 0;
  }
  std::string_view sized8() {
    std::string_view b;
    (void)take(u8(), b);
    return b;
  }
  bool id(tsp::uuid& out) {
    std::string_view b;
    if (!take(out.bytes.size(), b)) return false;
    std::memcpy(out.bytes.data(), b.data(), b.size());
    return true;
  }
  // frame-count(4) { frame-size(4) frame }...: at most tsp::max_body_frames frames.
  bool frames(message& out) {
    const std::uint32_t n = u32();
    if (!ok || n > tsp::max_body_frames) return ok = false;
    out.clear();
    out.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      std::string_view f;
      if (!take(u32(), f)) return false;
      out.push_back(f);
    }
    return ok;
  }
};

inline void put_frames(std::string& s, const message& m) {
  put_u32(s, static_cast<std::uint32_t>(m.size()));
  for (const auto& f : m) {
    put_u32(s, static_cast<std::uint32_t>(f.size()));
    s.append(static_cast<const char*>(f.data()), f.size());
  }
}

inline std::string encode_record(const tsp::uuid& id, std::string_view key, std::string_view service, const message& body) {
  std::string s;
  s.reserve(32 + key.size() + service.size() + body.byte_size() + 4 * body.size());
  s.push_back(static_cast<char>(record_version));
  s.append(uuid_key(id));
  s.push_back(static_cast<char>(key.size()));
  s.append(key);
  s.push_back(static_cast<char>(service.size()));
  s.append(service);
  put_frames(s, body);
  return s;
}

struct record {
  tsp::uuid id;
  std::string_view key;
  std::string_view service;
};

// Decodes a record's head; with `body`, its frames too.
inline bool decode_record(std::string_view payload, record& out, message* body) {
  reader r{payload};
  if (r.u8() != record_version) return false;
  if (!r.id(out.id)) return false;
  out.key = r.sized8();
  out.service = r.sized8();
  if (!r.ok || out.service.empty()) return false;
  if (body) return r.frames(*body) && r.in.empty();
  return true;
}

struct state_row {
  std::uint8_t state = state_open;
  std::uint64_t seq = 0;
  std::uint32_t attempts = 0;
  std::int64_t stored_ns = 0;
  std::int64_t finished_ns = 0;
  std::string key{};
  std::string service{};
  std::string reason{};
};

inline std::string encode_state(const state_row& s) {
  std::string out;
  out.push_back(static_cast<char>(s.state));
  put_u64(out, s.seq);
  put_u32(out, s.attempts);
  put_u64(out, static_cast<std::uint64_t>(s.stored_ns));
  put_u64(out, static_cast<std::uint64_t>(s.finished_ns));
  out.push_back(static_cast<char>(s.key.size()));
  out += s.key;
  out.push_back(static_cast<char>(s.service.size()));
  out += s.service;
  out += s.reason;
  return out;
}

inline std::optional<state_row> decode_state(std::string_view v) {
  reader r{v};
  state_row s;
  s.state = r.u8();
  s.seq = r.u64();
  s.attempts = r.u32();
  s.stored_ns = static_cast<std::int64_t>(r.u64());
  s.finished_ns = static_cast<std::int64_t>(r.u64());
  s.key = std::string(r.sized8());
  s.service = std::string(r.sized8());
  if (!r.ok || s.state < state_open || s.state > state_given_up) return std::nullopt;
  s.reason = std::string(r.in);
  return s;
}

inline std::string finished_key(std::int64_t ns, const tsp::uuid& id) {
  std::string k = be64(static_cast<std::uint64_t>(ns));
  k.append(uuid_key(id));
  return k;
}

inline std::int64_t wall_ns(const journal& j) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(j.options().clock().time_since_epoch()).count();
}

/// Writes `changes` into `t`, as of wall time `now` (ns). A change that finds its request in
/// another state than it expects (closed meanwhile) does nothing; with `follower`, a `stored`
/// change whose request is already known does nothing too (a replica may apply an entry twice
/// after copying a snapshot). The seqs of the records `stored` appended go to `seqs`, in order.
void apply(journal_txn& t, const std::vector<tsp::request_change>& changes, std::int64_t now,
           std::vector<std::uint64_t>& seqs, bool follower);

/// One entry of the replication log.
struct ops {
  std::uint64_t term = 0;
  std::int64_t wall_ns = 0;
  std::vector<tsp::request_change> changes;
};

/// Encodes `changes` as one entry (their `seq` and `expires_at` are not carried).
std::string encode_ops(std::uint64_t term, std::int64_t wall, const std::vector<tsp::request_change>& changes);
/// Decodes an entry; false for anything malformed (nothing is trusted: sizes are checked).
bool decode_ops(std::string_view in, ops& out);
/// The term of an entry, without decoding the rest; 0 when malformed.
std::uint64_t ops_term(std::string_view in) noexcept;

/// A position in the replication log and the term of the entry there (0, 0: the empty log).
struct log_point {
  std::uint64_t position = 0;
  std::uint64_t term = 0;
  friend bool operator==(const log_point&, const log_point&) = default;
};
inline std::string encode_point(log_point p) {
  std::string s = be64(p.position);
  put_u64(s, p.term);
  return s;
}
inline std::optional<log_point> decode_point(std::string_view v) {
  reader r{v};
  log_point p;
  p.position = r.u64();
  p.term = r.u64();
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return p;
}

/// Where the requests stream may be trimmed to: below the oldest open request, or all of it when
/// none is open; nullopt when the journal cannot tell (read from what is committed).
std::optional<std::uint64_t> trim_point(const journal& j);

/// The log's last entry as the journal holds it ({0, 0} for none), and the highest term kept.
result<log_point> read_head(const journal& j);
result<std::uint64_t> read_term(const journal& j);

}  // namespace fabric::titanic::store
