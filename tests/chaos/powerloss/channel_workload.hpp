// What the power-loss channel workload does, shared by the workload (a reliable sender and a
// reliable receiver in one process, each over its own journal) and the checker (which reads both
// journals back from a crash image): the names, the message bodies, the receiver's application
// rows, and the completion marks the workload logs through the shim.
//
// mark = "opened"                   ; both journals exist: their open() returned
//      / "sent " stream " " seq     ; send `seq` of `stream` completed: durable in the outbox
//      / "acked " stream " " n      ; on_acknowledged reported `n`: the receiver's commit of
//                                   ; taken >= n was durable before
//
// The receiver runs in effectively_once mode; its handler writes, in the transaction that takes
// the message, one row per message id in table rows_table (key row_key(stream, id), value
// row_value(times, seq, hash)) and counts every message it took in table tally_table (key
// `stream`, decimal), so a checker sees each message taken once, in order, with its body.
#pragma once

#include "chaos/powerloss/journal_workload.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fabric::testing::powerloss::channel {

/// The journals' directories, under the directory the workload works in.
inline constexpr std::string_view sender_dir = "tx";
inline constexpr std::string_view receiver_dir = "rx";
/// The peers' names: the sender's outbox streams are "frc.out/" + receiver_name + "/" + stream.
inline constexpr std::string_view sender_name = "orders";
inline constexpr std::string_view receiver_name = "billing";
/// The receiver application's tables.
inline constexpr std::string_view rows_table = "billing.rows";
inline constexpr std::string_view tally_table = "billing.tally";

/// The name of stream `index`.
inline std::string stream(unsigned index) { return "s" + std::to_string(index); }
/// The journal stream holding the sender's outbox of `stream`.
inline std::string outbox(std::string_view stream) {
  return "frc.out/" + std::string(receiver_name) + "/" + std::string(stream);
}
/// The sender's cursor of what the receiver acknowledged on `stream`.
inline std::string acked_cursor(std::string_view stream) {
  return "frc.acked/" + std::string(receiver_name) + "/" + std::string(stream);
}

/// The body of message `id` of stream `index`: the application's id, then bytes that are a
/// function of (index, id), one in ten longer than a page.
inline std::string body(unsigned index, std::uint64_t id) {
  return "m" + std::to_string(id) + " " + workload_payload(index, id);
}

/// The application's id in a body; nullopt when the body is not one body() makes.
inline std::optional<std::uint64_t> id_of(std::string_view body) {
  if (body.size() < 3 || body[0] != 'm') return std::nullopt;
  const auto space = body.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::uint64_t id = 0;
  const auto [end, ec] = std::from_chars(body.data() + 1, body.data() + space, id);
  if (ec != std::errc{} || end != body.data() + space || id == 0) return std::nullopt;
  return id;
}

inline std::string row_key(std::string_view stream, std::uint64_t id) {
  return std::string(stream) + "/" + std::to_string(id);
}

/// A row: how many times the handler's writes for the id committed, the channel sequence it
/// came with, and its body's hash.
struct row {
  std::uint64_t times = 0;
  std::uint64_t seq = 0;
  std::uint64_t hash = 0;
};

inline std::string row_value(const row& r) {
  return std::to_string(r.times) + " " + std::to_string(r.seq) + " " + std::to_string(r.hash);
}

/// Parses a row's value; nullopt when malformed.
inline std::optional<row> parse_row(std::string_view text) {
  row r;
  std::uint64_t* fields[] = {&r.times, &r.seq, &r.hash};
  const char* at = text.data();
  const char* const end = text.data() + text.size();
  for (std::size_t i = 0; i < 3; ++i) {
    if (i > 0) {
      if (at == end || *at != ' ') return std::nullopt;
      ++at;
    }
    const auto [stop, ec] = std::from_chars(at, end, *fields[i]);
    if (ec != std::errc{} || stop == at) return std::nullopt;
    at = stop;
  }
  if (at != end) return std::nullopt;
  return r;
}

inline constexpr std::string_view opened_mark = "opened";

inline std::string sent_mark(std::string_view stream, std::uint64_t seq) {
  return "sent " + std::string(stream) + " " + std::to_string(seq);
}

inline std::string acked_mark(std::string_view stream, std::uint64_t n) {
  return "acked " + std::string(stream) + " " + std::to_string(n);
}

/// A mark read back.
struct mark {
  enum class kind { opened, sent, acked } what = kind::opened;
  std::string stream;
  std::uint64_t value = 0;
};

/// Parses a mark; nullopt when it is not one of the channel workload's.
inline std::optional<mark> parse_mark(std::string_view text) {
  if (text == opened_mark) return mark{};
  mark m;
  std::string_view rest;
  if (text.rfind("sent ", 0) == 0) {
    m.what = mark::kind::sent;
    rest = text.substr(5);
  } else if (text.rfind("acked ", 0) == 0) {
    m.what = mark::kind::acked;
    rest = text.substr(6);
  } else {
    return std::nullopt;
  }
  const auto space = rest.find(' ');
  if (space == 0 || space == std::string_view::npos) return std::nullopt;
  m.stream = std::string(rest.substr(0, space));
  const std::string_view number = rest.substr(space + 1);
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), m.value);
  if (ec != std::errc{} || end != number.data() + number.size() || number.empty()) return std::nullopt;
  return m;
}

}  // namespace fabric::testing::powerloss::channel
