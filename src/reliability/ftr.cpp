// The codecs of Titanic replication, apart from any socket or journal so that they can be
// fuzzed alone: the ops of a replication log entry (titanic_store.hpp) and FTR/1's frames
// (titanic_replication.hpp, docs/ha.md section 9.2).
#include "reliability/titanic_replication.hpp"
#include "reliability/titanic_store.hpp"

#include <algorithm>

namespace fabric::titanic {

namespace store {

namespace {

constexpr std::uint8_t last_kind = static_cast<std::uint8_t>(tsp::change_kind::removed);

}  // namespace

std::string encode_ops(std::uint64_t term, std::int64_t wall, const std::vector<tsp::request_change>& changes) {
  std::size_t size = 1 + 8 + 8 + 4;
  for (const auto& c : changes) {
    size += 1 + 16 + 4 + 1 + c.key.size() + 1 + c.service.size() + 2 + c.reason.size() + 1 + c.index.size() + 4 +
            c.body.byte_size() + 4 * c.body.size();
  }
  std::string s;
  s.reserve(size);
  s.push_back(static_cast<char>(ops_version));
  put_u64(s, term);
  put_u64(s, static_cast<std::uint64_t>(wall));
  put_u32(s, static_cast<std::uint32_t>(changes.size()));
  for (const auto& c : changes) {
    s.push_back(static_cast<char>(c.kind));
    s.append(uuid_key(c.id));
    put_u32(s, c.attempts);
    s.push_back(static_cast<char>(c.key.size()));
    s += c.key;
    s.push_back(static_cast<char>(c.service.size()));
    s += c.service;
    const std::size_t reason = std::min<std::size_t>(c.reason.size(), 0xffff);
    s.push_back(static_cast<char>(reason >> 8));
    s.push_back(static_cast<char>(reason & 0xff));
    s.append(c.reason, 0, reason);
    s.push_back(static_cast<char>(std::min<std::size_t>(c.index.size(), 0xff)));
    s.append(c.index, 0, std::min<std::size_t>(c.index.size(), 0xff));
    put_frames(s, c.body);
  }
  return s;
}

bool decode_ops(std::string_view in, ops& out) {
  reader r{in};
  if (r.u8() != ops_version) return false;
  out.term = r.u64();
  out.wall_ns = static_cast<std::int64_t>(r.u64());
  const std::uint32_t n = r.u32();
  // Every change takes at least 30 octets: a count beyond what is left is a lie.
  if (!r.ok || n > r.in.size() / 30) return false;
  out.changes.clear();
  out.changes.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    tsp::request_change c;
    const std::uint8_t kind = r.u8();
    if (kind > last_kind) return false;
    c.kind = static_cast<tsp::change_kind>(kind);
    if (!r.id(c.id)) return false;
    c.attempts = r.u32();
    c.key = std::string(r.sized8());
    c.service = std::string(r.sized8());
    std::string_view b;
    const std::size_t reason = (std::size_t{r.u8()} << 8) | r.u8();
    if (!r.take(reason, b)) return false;
    c.reason = std::string(b);
    c.index = std::string(r.sized8());
    if (!r.frames(c.body)) return false;
    if (c.kind == tsp::change_kind::stored && c.service.empty()) return false;
    out.changes.push_back(std::move(c));
  }
  return r.ok && r.in.empty();
}

std::uint64_t ops_term(std::string_view in) noexcept {
  if (in.size() < 9 || static_cast<std::uint8_t>(in[0]) != ops_version) return 0;
  return detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(in.data() + 1));
}

}  // namespace store

namespace repl {

using store::put_u64;

namespace {

std::string command_frame(command c, log_point p) {
  std::string s(1, static_cast<char>(c));
  put_u64(s, p.position);
  put_u64(s, p.term);
  return s;
}

log_point point_at(store::reader& r) {
  log_point p;
  p.position = r.u64();
  p.term = r.u64();
  return p;
}

}  // namespace

message build_fetch(log_point at, std::uint32_t max_bytes) {
  std::string c = command_frame(command::fetch, at);
  store::put_u32(c, max_bytes);
  message m(header);
  m.push_back(c);
  return m;
}

message build_records(log_point head) {
  message m(header);
  m.push_back(command_frame(command::records, head));
  return m;
}

message build_resync(log_point head, log_point agree) {
  std::string c = command_frame(command::resync, head);
  put_u64(c, agree.position);
  put_u64(c, agree.term);
  message m(header);
  m.push_back(c);
  return m;
}

message build_handoff() {
  message m(header);
  m.push_back(std::string(1, static_cast<char>(command::handoff)));
  return m;
}

message build_handed(std::uint32_t held, std::uint32_t total) {
  std::string c(1, static_cast<char>(command::handed));
  store::put_u32(c, held);
  store::put_u32(c, total);
  message m(header);
  m.push_back(c);
  return m;
}

message build_snapshot_fetch(const std::optional<tsp::uuid>& after) {
  std::string c(1, static_cast<char>(command::snapshot_fetch));
  if (after) c.append(store::uuid_key(*after));
  message m(header);
  m.push_back(c);
  return m;
}

message build_snapshot(log_point start, bool done, const std::optional<tsp::uuid>& last) {
  std::string c = command_frame(command::snapshot, start);
  c.push_back(done ? '\x01' : '\x00');
  if (last) c.append(store::uuid_key(*last));
  message m(header);
  m.push_back(c);
  return m;
}

parsed parse(const message& m) {
  if (m.size() < 2 || m.view(0) != header || m.view(1).empty()) return {};
  store::reader r{m.view(1)};
  const auto c = static_cast<command>(r.u8());
  switch (c) {
    case command::fetch: {
      fetch_fields f;
      f.at = point_at(r);
      f.max_bytes = r.u32();
      if (!r.ok || !r.in.empty() || m.size() != 2) return {};
      return f;
    }
    case command::records: {
      const log_point head = point_at(r);
      if (!r.ok || !r.in.empty()) return {};
      return records_fields{head};
    }
    case command::resync: {
      resync_fields f;
      f.head = point_at(r);
      f.agree = point_at(r);
      if (!r.ok || !r.in.empty() || m.size() != 2) return {};
      return f;
    }
    case command::handoff:
      if (!r.in.empty()) return {};
      return handoff_fields{};
    case command::handed: {
      handed_fields f;
      f.held = r.u32();
      f.total = r.u32();
      if (!r.ok || !r.in.empty() || m.size() != 2 || f.held > f.total) return {};
      return f;
    }
    case command::snapshot_fetch: {
      snapshot_fetch_fields f;
      if (!r.in.empty()) {
        tsp::uuid id;
        if (!r.id(id)) return {};
        f.after = id;
      }
      if (!r.in.empty() || m.size() != 2) return {};
      return f;
    }
    case command::snapshot: {
      snapshot_fields f;
      f.start = point_at(r);
      const std::uint8_t done = r.u8();
      if (!r.ok || done > 1) return {};
      f.done = done == 1;
      if (!r.in.empty()) {
        tsp::uuid id;
        if (!r.id(id)) return {};
        f.last = id;
      }
      if (!r.in.empty()) return {};
      return f;
    }
  }
  return {};
}

bool split_entry(std::string_view frame, std::uint64_t& position, std::string_view& ops) noexcept {
  if (frame.size() < 9) return false;
  position = detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(frame.data()));
  ops = frame.substr(8);
  return position != 0;
}

}  // namespace repl

}  // namespace fabric::titanic
