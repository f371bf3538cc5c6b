// fabric-journal's subcommands. Most only read the journal (compact writes a copy elsewhere; dlq
// requeue and discard and channel reset change it, with its service stopped), and all refuse a
// directory that is not already a journal, because journal::open would create one.
#include "commands.hpp"

#include "output.hpp"

#include <fabric/journal.hpp>
#include <fabric_support/json.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

namespace fabric::journal_tool {

namespace fs = std::filesystem;
using support::json;

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void request_stop(int) { stop_requested = 1; }

// Records are read in chunks this size so no read transaction pins pages for long.
constexpr std::size_t chunk_records = 1024;
constexpr std::chrono::milliseconds follow_poll{200};

fs::path data_file(const fs::path& dir) { return dir / "data.mdb"; }

std::uint64_t file_bytes(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) throw tool_error("cannot read the size of " + file.string() + ": " + ec.message());
  return size;
}

// Checks that `dir` already holds a journal, so that opening it cannot create one.
void require_journal_dir(const std::string& dir) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    throw tool_error("cannot access " + dir + ": " + ec.message());
  if (!fs::exists(status)) throw tool_error("no such directory: " + dir);
  if (!fs::is_directory(status)) throw tool_error("not a directory: " + dir);
  if (!fs::is_regular_file(data_file(dir), ec))
    throw tool_error("not a journal: " + dir + " has no data.mdb");
}

// A fabric::error's own text, without the category's text that std::system_error appends.
std::string message_of(const error& e) {
  std::string text = e.what();
  const std::string suffix = ": " + e.code().message();
  if (text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0)
    text.resize(text.size() - suffix.size());
  return text;
}

// Opens the journal read-only: the tool never writes, starts no writer thread, and may run
// beside the service that writes the journal. A damaged data file, which the library refuses,
// is reported as damage.
journal open_existing(const std::string& dir) {
  require_journal_dir(dir);
  journal_options read_only;
  read_only.read_only = true;
  try {
    return journal::open(dir, read_only);
  } catch (const error& e) {
    if (e.code() == errc::malformed) throw damaged_journal(message_of(e));
    throw;
  }
}

std::string stream_list(const journal& j) {
  const auto names = j.streams().value();
  if (names.empty()) return "it has no streams";
  std::string list = "its streams: ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i == 8) {
      list += ", ... (" + std::to_string(names.size()) + " in all)";
      break;
    }
    if (i > 0) list += ", ";
    list += names[i];
  }
  return list;
}

journal_stream_info require_stream(const journal& j, const options& o) {
  auto infos = j.stream_infos().value();
  for (auto& info : infos)
    if (info.name == o.stream) return info;
  throw tool_error("unknown stream '" + o.stream + "' in " + o.dir + " (" + stream_list(j) + ")");
}

// "1 stream", "2 streams".
std::string counted(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

void report_corruption(const journal_corruption& c) {
  std::cerr << "fabric-journal: corrupt record in stream '" << c.stream << "' at seq " << c.seq
            << ": " << c.what << '\n';
}

std::string seq_or_dash(const journal_stream_info& info, std::uint64_t seq) {
  return info.records == 0 ? "-" : std::to_string(seq);
}

// One JSON document on its own line: the whole output of --json (a line per record for tail and
// dump, JSON Lines).
void print_json(const json& doc) { std::cout << support::to_text(doc) << '\n'; }

json stream_infos_json(const std::vector<journal_stream_info>& infos) {
  json streams = json::array();
  for (const auto& info : infos)
    streams.push_back(
        {{"name", info.name}, {"first_seq", info.first_seq}, {"last_seq", info.last_seq}, {"records", info.records}});
  return streams;
}

// Rows under a header row, columns two spaces apart, each aligned as `align` says: 'l' for
// names (left), 'r' for numbers (right). The last column is not padded on the right.
void print_table(const std::vector<std::vector<std::string>>& rows, std::string_view align) {
  std::vector<std::size_t> widths(align.size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      const std::string pad(widths[c] - row[c].size(), ' ');
      if (align[c] == 'r') line += pad + row[c];
      else line += c + 1 == row.size() ? row[c] : row[c] + pad;
    }
    std::cout << line << '\n';
  }
}

void print_stream_table(const std::vector<journal_stream_info>& infos) {
  std::vector<std::vector<std::string>> rows{{"STREAM", "FIRST", "LAST", "RECORDS"}};
  for (const auto& info : infos)
    rows.push_back({info.name, seq_or_dash(info, info.first_seq), seq_or_dash(info, info.last_seq),
                    std::to_string(info.records)});
  print_table(rows, "lrrr");
}

// Prints records as dump and tail show them: one line each, or one JSON object per line.
class record_printer {
 public:
  explicit record_printer(const options& o) : o_(o) {}

  void print(const journal_record& r) const {
    const bool text = printable_text(r.payload);
    if (o_.json) {
      json doc = {{"stream", o_.stream},
                  {"seq", r.seq},
                  {"timestamp", iso8601_utc(r.timestamp_ns)},
                  {"timestamp_ns", r.timestamp_ns},
                  {"size", r.payload.size()},
                  {"payload", to_base64(r.payload)}};
      if (text) doc["text"] = r.payload;
      if (o_.hex) doc["hex"] = to_hex(r.payload);
      print_json(doc);
      return;
    }
    std::cout << r.seq << "  " << iso8601_utc(r.timestamp_ns) << "  " << r.payload.size() << " bytes  ";
    if (text && !o_.hex) {
      std::cout << "text: " << one_line(r.payload) << '\n';
    } else {
      std::cout << "hex: " << to_hex(r.payload) << '\n';
    }
  }

 private:
  // Line breaks inside a payload would break the one-record-per-line layout.
  static std::string one_line(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
      if (c == '\n') out += "\\n";
      else if (c == '\r') out += "\\r";
      else out += c;
    }
    return out;
  }

  const options& o_;
};

// One chunk of `o.stream` from `from` on, read in one short read transaction.
journal_chunk read_chunk(const journal& j, const options& o, std::uint64_t from, std::size_t max_records) {
  auto chunk = j.read(o.stream, from, max_records);
  if (!chunk)
    throw tool_error("cannot read stream '" + o.stream + "' in " + o.dir + ": " + chunk.error().message());
  return std::move(*chunk);
}

// Prints `o.stream` from `from` to its current end, or `limit` records when set.
// Returns: where the next record will be, or nullopt after reporting a corrupt record.
std::optional<std::uint64_t> print_from(const journal& j, const options& o, std::uint64_t from,
                                        std::optional<std::uint64_t> limit) {
  const record_printer printer(o);
  std::uint64_t next = from;
  std::uint64_t left = limit.value_or(0);
  while (!limit || left > 0) {
    const std::size_t want = limit ? static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk_records))
                                   : chunk_records;
    const journal_chunk chunk = read_chunk(j, o, next, want);
    for (const auto& r : chunk.records) printer.print(r);
    if (limit) left -= chunk.records.size();
    if (chunk.corruption) {
      std::cout.flush();  // the valid records first, then the complaint
      report_corruption(*chunk.corruption);
      return std::nullopt;
    }
    if (chunk.records.empty()) break;
    next = chunk.next_seq;
  }
  return next;
}

// Waits up to `d`; a stop signal cuts the wait short (it is delivered to this thread).
void pause_for(std::chrono::nanoseconds d) {
  if (d <= std::chrono::nanoseconds::zero()) return;
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(s.count());
  ts.tv_nsec = static_cast<long>((d - s).count());
  ::nanosleep(&ts, nullptr);  // EINTR is the point: the loop then sees stop_requested
}

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the signal must end nanosleep early
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

}  // namespace

// ---- reliable channels: where each stands, as its journal records it

namespace {

// Where FRC/1 keeps a peer's state (docs/reliable-channel.md, section 6; written by
// src/reliability/reliable_sender.cpp and reliable_receiver.cpp). Integers are big-endian.
constexpr std::string_view identity_table = "frc.identity";
constexpr std::string_view identity_key = "incarnation";  // 8 octets, never 0
constexpr std::string_view outbox_prefix = "frc.out/";     // + receiver "/" stream: a stream
constexpr std::string_view acked_prefix = "frc.acked/";    // + receiver "/" stream: a cursor
constexpr std::string_view peers_table = "frc.peers";      // receiver "/" stream -> 8 octets
// The receiver's tables are keyed by a channel key: one octet of the sender name's length, the
// sender name, the stream.
constexpr std::string_view in_table = "frc.in";            // -> sender incarnation, taken
constexpr std::string_view expired_table = "frc.expired";  // -> 8 octets per kept expiry
constexpr std::string_view history_table = "frc.history";  // -> 24 octets per replaced incarnation
constexpr std::size_t in_record_size = 16;
constexpr std::size_t history_entry_size = 24;
// Table entries are listed a page at a time, so no read transaction lives long.
constexpr std::size_t table_page = 1024;

std::uint64_t load_be64(std::string_view bytes) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

// Incarnations are random 64-bit identities: shown as 16 hex digits, which JSON keeps exactly
// where a number past 2^53 would not survive every parser.
std::string incarnation_text(std::uint64_t incarnation) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(incarnation));
  return buffer;
}

json incarnation_json(std::uint64_t incarnation) {
  return incarnation == 0 ? json(nullptr) : json(incarnation_text(incarnation));
}

// A value that FRC/1 could not have written: the journal is damaged (exit code 2).
[[noreturn]] void damaged_value(std::string_view table, const std::string& whose, std::size_t size,
                                const std::string& expected) {
  throw damaged_journal("damaged reliable-channel state: table " + std::string(table) + ", " + whose + ": " +
                        std::to_string(size) + " bytes where " + expected + " belong");
}

template <class T>
T value_or_fail(result<T> r, const std::string& what) {
  if (!r) throw tool_error("cannot read " + what + ": " + r.error().message());
  return std::move(*r);
}

// A channel this journal sends on (section 6.1).
struct sending_channel {
  std::string receiver;
  std::string stream;
  std::uint64_t last = 0;                  // the outbox's last sequence
  std::uint64_t acked = 0;                 // everything up to here is acknowledged
  std::uint64_t receiver_incarnation = 0;  // 0: no receiver has welcomed it yet
  std::uint64_t backlog() const noexcept { return last > acked ? last - acked : 0; }
};

// A channel this journal receives on (section 6.2).
struct receiving_channel {
  std::string sender;
  std::string stream;
  std::uint64_t sender_incarnation = 0;
  std::uint64_t taken = 0;         // everything up to here is durably taken
  std::uint64_t expired_kept = 0;  // expiries not yet known to the sender
  std::uint64_t replaced = 0;      // earlier sender incarnations in the history
};

struct channel_positions {
  std::uint64_t incarnation = 0;  // 0: no reliable channel has used the journal
  std::vector<sending_channel> sending;
  std::vector<receiving_channel> receiving;
  bool empty() const noexcept { return incarnation == 0 && sending.empty() && receiving.empty(); }
};

// Every entry of `table`, a page at a time.
void for_each_entry(const journal& j, std::string_view table,
                    const std::function<void(const std::string& key, const std::string& value)>& fn) {
  std::string after;
  for (;;) {
    const auto page = value_or_fail(j.table_entries(table, after, table_page), "table " + std::string(table));
    for (const auto& [key, value] : page) fn(key, value);
    if (page.size() < table_page) return;
    after = page.back().first;
  }
}

std::uint64_t read_incarnation(const journal& j) {
  const auto value = value_or_fail(j.get(identity_table, identity_key), "the journal's incarnation");
  if (!value) return 0;
  if (value->size() != 8 || load_be64(*value) == 0)
    damaged_value(identity_table, "key incarnation", value->size(), "8 (not all zero)");
  return load_be64(*value);
}

std::vector<sending_channel> read_sending(const journal& j) {
  // A channel has an outbox stream once it has sent, and a receiver incarnation once welcomed:
  // either says it exists. Both are named <receiver>/<stream>, and a receiver name has no '/'.
  std::map<std::string, sending_channel> by_name;
  const auto add = [&](const std::string& name) {
    const auto slash = name.find('/');
    if (slash == 0 || slash == std::string::npos || slash + 1 == name.size()) return;
    auto& c = by_name[name];
    c.receiver = name.substr(0, slash);
    c.stream = name.substr(slash + 1);
  };
  for (const auto& stream : value_or_fail(j.streams(), "the journal's streams"))
    if (stream.size() > outbox_prefix.size() && stream.compare(0, outbox_prefix.size(), outbox_prefix) == 0)
      add(stream.substr(outbox_prefix.size()));
  std::map<std::string, std::uint64_t> seen;
  for_each_entry(j, peers_table, [&](const std::string& key, const std::string& value) {
    if (value.size() != 8) damaged_value(peers_table, "key " + key, value.size(), "8");
    seen[key] = load_be64(value);
    add(key);
  });
  std::vector<sending_channel> channels;
  for (auto& [name, c] : by_name) {
    // The cursor first: the outbox's last sequence, read after it, is at least as far on, so
    // a sender working meanwhile cannot make the backlog look negative.
    auto acked = j.cursor(std::string(acked_prefix) + name);
    if (acked.is(errc::malformed)) throw damaged_journal("damaged reliable-channel state: cursor " +
                                                         std::string(acked_prefix) + name + " does not decode");
    c.acked = value_or_fail(std::move(acked), "cursor " + std::string(acked_prefix) + name).value_or(0);
    const std::string outbox = std::string(outbox_prefix) + name;
    c.last = value_or_fail(j.last_seq(outbox), "stream " + outbox).value_or(0);
    if (const auto it = seen.find(name); it != seen.end()) c.receiver_incarnation = it->second;
    channels.push_back(std::move(c));
  }
  return channels;
}

std::vector<receiving_channel> read_receiving(const journal& j) {
  std::vector<receiving_channel> channels;
  for_each_entry(j, in_table, [&](const std::string& key, const std::string& value) {
    const std::size_t sender_size = key.empty() ? 0 : static_cast<unsigned char>(key[0]);
    if (sender_size == 0 || key.size() < 1 + sender_size + 1)
      throw damaged_journal("damaged reliable-channel state: table frc.in holds a key (" + to_hex(key) +
                            ") that names no sender and stream");
    receiving_channel c;
    c.sender = key.substr(1, sender_size);
    c.stream = key.substr(1 + sender_size);
    const std::string whose = "channel " + c.sender + "/" + c.stream;
    if (value.size() != in_record_size || load_be64(value) == 0)
      damaged_value(in_table, whose, value.size(), "16 (a non-zero incarnation and taken)");
    c.sender_incarnation = load_be64(value);
    c.taken = load_be64(std::string_view(value).substr(8));
    if (const auto kept = value_or_fail(j.get(expired_table, key), "table frc.expired for " + whose)) {
      if (kept->size() % 8 != 0) damaged_value(expired_table, whose, kept->size(), "a multiple of 8");
      c.expired_kept = kept->size() / 8;
    }
    if (const auto history = value_or_fail(j.get(history_table, key), "table frc.history for " + whose)) {
      if (history->size() % history_entry_size != 0)
        damaged_value(history_table, whose, history->size(), "a multiple of 24");
      c.replaced = history->size() / history_entry_size;
    }
    channels.push_back(std::move(c));
  });
  // Keys sort by the sender name's length first; people look for a name.
  std::sort(channels.begin(), channels.end(), [](const receiving_channel& a, const receiving_channel& b) {
    return std::tie(a.sender, a.stream) < std::tie(b.sender, b.stream);
  });
  return channels;
}

channel_positions read_channels(const journal& j) {
  channel_positions p;
  p.incarnation = read_incarnation(j);
  p.sending = read_sending(j);
  p.receiving = read_receiving(j);
  return p;
}

json channels_json(const channel_positions& p) {
  json sending = json::array();
  for (const auto& c : p.sending)
    sending.push_back({{"receiver", c.receiver},
                       {"stream", c.stream},
                       {"last_seq", c.last},
                       {"acked", c.acked},
                       {"backlog", c.backlog()},
                       {"receiver_incarnation", incarnation_json(c.receiver_incarnation)}});
  json receiving = json::array();
  for (const auto& c : p.receiving)
    receiving.push_back({{"sender", c.sender},
                         {"stream", c.stream},
                         {"sender_incarnation", incarnation_json(c.sender_incarnation)},
                         {"taken", c.taken},
                         {"expired_kept", c.expired_kept},
                         {"replaced_incarnations", c.replaced}});
  return {{"incarnation", incarnation_json(p.incarnation)},
          {"sending", std::move(sending)},
          {"receiving", std::move(receiving)}};
}

void print_channels(const channel_positions& p) {
  std::cout << "incarnation  "
            << (p.incarnation != 0 ? incarnation_text(p.incarnation) : "none (no reliable channel has used this journal)")
            << '\n';
  if (!p.sending.empty()) {
    std::vector<std::vector<std::string>> rows{{"SEND TO", "STREAM", "LAST", "ACKED", "BACKLOG", "RECEIVER INCARNATION"}};
    for (const auto& c : p.sending)
      rows.push_back({c.receiver, c.stream, std::to_string(c.last), std::to_string(c.acked), std::to_string(c.backlog()),
                      c.receiver_incarnation != 0 ? incarnation_text(c.receiver_incarnation) : "-"});
    std::cout << '\n';
    print_table(rows, "llrrrl");
  }
  if (!p.receiving.empty()) {
    std::vector<std::vector<std::string>> rows{
        {"RECEIVE FROM", "STREAM", "SENDER INCARNATION", "TAKEN", "EXPIRED KEPT", "REPLACED"}};
    for (const auto& c : p.receiving)
      rows.push_back({c.sender, c.stream, incarnation_text(c.sender_incarnation), std::to_string(c.taken),
                      std::to_string(c.expired_kept), std::to_string(c.replaced)});
    std::cout << '\n';
    print_table(rows, "lllrrr");
  }
}

// ---- Titanic (docs/titanic.md, section 7): requests by state, read from tsp.state

struct titanic_summary {
  bool present = false;
  std::uint64_t open = 0;
  std::uint64_t replied = 0;
  std::uint64_t given_up = 0;
  std::uint64_t dead_letters = 0;   // in the dead-letter queue, from tsp.requests
  std::uint64_t keys = 0;
  std::optional<std::uint64_t> in_flight;  // as the service last wrote it
  std::int64_t in_flight_at_ns = 0;
  std::uint64_t damaged = 0;        // state rows that do not decode
};

titanic_summary read_titanic(const journal& j) {
  titanic_summary t;
  const auto count = [&j](std::string_view table, const std::function<void(const std::string&)>& fn) {
    std::string after;
    for (;;) {
      auto page = j.table_entries(table, after, 1000);
      if (!page || page->empty()) return;
      for (const auto& [k, v] : *page) fn(v);
      if (page->size() < 1000) return;
      after = page->back().first;
    }
  };
  count("tsp.state", [&t](const std::string& v) {
    t.present = true;
    switch (v.empty() ? 0 : static_cast<unsigned char>(v[0])) {
      case 1: ++t.open; break;
      case 2: ++t.replied; break;
      case 3: ++t.given_up; break;
      default: ++t.damaged;
    }
  });
  count("tsp.keys", [&t](const std::string&) { ++t.keys; });
  if (auto status = j.get("tsp.status", "in-flight"); status && *status && (*status)->size() == 16) {
    const auto* b = reinterpret_cast<const unsigned char*>((*status)->data());
    std::uint64_t n = 0;
    std::uint64_t at = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | b[i];
    for (int i = 8; i < 16; ++i) at = (at << 8) | b[i];
    t.in_flight = n;
    t.in_flight_at_ns = static_cast<std::int64_t>(at);
    t.present = true;
  }
  std::uint64_t from = 1;
  for (;;) {
    auto dead = j.dead_letters(from, 1000);
    if (!dead || dead->empty()) break;
    for (const auto& d : *dead) {
      if (d.stream == "tsp.requests") ++t.dead_letters;
    }
    from = dead->back().id + 1;
    if (dead->size() < 1000) break;
  }
  return t;
}

json titanic_json(const titanic_summary& t) {
  json doc = {{"open", t.open},
              {"replied", t.replied},
              {"given_up", t.given_up},
              {"dead_letters", t.dead_letters},
              {"keys", t.keys},
              {"damaged_rows", t.damaged}};
  if (t.in_flight) {
    doc["in_flight"] = *t.in_flight;
    doc["in_flight_at_ns"] = t.in_flight_at_ns;
  }
  return doc;
}

void print_titanic(const titanic_summary& t) {
  std::cout << "open        " << t.open << "  (stored, waiting for or at their service)\n";
  if (t.in_flight) {
    std::cout << "in flight   " << *t.in_flight << "  (as the service last recorded it, "
              << iso8601_utc(t.in_flight_at_ns) << ")\n";
  }
  std::cout << "replied     " << t.replied << "  (reply waiting to be collected)\n"
            << "given up    " << t.given_up << "  (titanic.reply answers 500)\n"
            << "dead letters " << t.dead_letters << "  (fabric-journal dlq list)\n"
            << "keys        " << t.keys << '\n';
  if (t.damaged != 0) std::cout << "damaged     " << t.damaged << " state rows\n";
}

}  // namespace

int run_stats(const options& o) {
  const journal j = open_existing(o.dir);
  const auto infos = j.stream_infos().value();
  const auto counters = j.stats();
  const std::uint64_t size = file_bytes(data_file(o.dir));
  const channel_positions channels = read_channels(j);
  const titanic_summary titanic = read_titanic(j);
  std::uint64_t records = 0;
  for (const auto& info : infos) records += info.records;
  if (o.json) {
    json doc = {{"path", o.dir},
                {"data_file_bytes", size},
                {"map_size_bytes", counters.map_size},
                {"stream_count", infos.size()},
                {"records", records},
                {"streams", stream_infos_json(infos)},
                {"channels", channels_json(channels)}};
    if (titanic.present) doc["titanic"] = titanic_json(titanic);
    print_json(doc);
    return exit_ok;
  }
  std::cout << "journal    " << o.dir << '\n'
            << "data file  " << human_bytes(size) << " (" << size << " bytes)\n"
            << "map size   " << human_bytes(counters.map_size) << " (" << counters.map_size << " bytes)\n"
            << "streams    " << infos.size() << '\n'
            << "records    " << records << '\n';
  if (!infos.empty()) {
    std::cout << '\n';
    print_stream_table(infos);
  }
  if (!channels.empty()) {
    std::cout << "\nreliable channels\n";
    print_channels(channels);
  }
  if (titanic.present) {
    std::cout << "\ntitanic requests\n";
    print_titanic(titanic);
  }
  return exit_ok;
}

int run_channels(const options& o) {
  const journal j = open_existing(o.dir);
  const channel_positions channels = read_channels(j);
  if (o.json) print_json({{"channels", channels_json(channels)}});
  else print_channels(channels);
  return exit_ok;
}

int run_streams(const options& o) {
  const journal j = open_existing(o.dir);
  const auto infos = j.stream_infos().value();
  if (o.json) {
    print_json({{"streams", stream_infos_json(infos)}});
  } else if (!infos.empty()) {
    print_stream_table(infos);
  }
  return exit_ok;
}

int run_tail(const options& o) {
  if (o.follow) install_stop_handlers();
  const journal j = open_existing(o.dir);
  const journal_stream_info info = require_stream(j, o);
  std::uint64_t from = info.last_seq + 1;
  if (info.records > 0 && o.lines > 0)
    from = std::max(info.first_seq, info.last_seq >= o.lines ? info.last_seq - o.lines + 1 : 1);
  // The last N as they were when we looked: records appended meanwhile belong to --follow.
  const std::uint64_t shown = info.last_seq >= from ? info.last_seq - from + 1 : 0;
  auto next = print_from(j, o, from, std::optional<std::uint64_t>(shown));
  std::cout.flush();
  if (!next) return exit_corrupt;
  if (!o.follow) return exit_ok;

  using clock = std::chrono::steady_clock;
  const auto deadline = o.max_wait_ms ? clock::now() + std::chrono::milliseconds(*o.max_wait_ms)
                                      : clock::time_point::max();
  const record_printer printer(o);
  // Asks for records past the last one shown rather than comparing last_seq(): a read sees what
  // every process has committed, and an empty chunk means nothing new yet.
  while (stop_requested == 0) {
    const journal_chunk chunk = read_chunk(j, o, *next, chunk_records);
    for (const auto& r : chunk.records) printer.print(r);
    std::cout.flush();
    if (chunk.corruption) {
      report_corruption(*chunk.corruption);
      return exit_corrupt;
    }
    if (!chunk.records.empty()) *next = chunk.next_seq;
    const auto now = clock::now();
    if (now >= deadline) break;
    if (chunk.records.empty()) pause_for(std::min<std::chrono::nanoseconds>(follow_poll, deadline - now));
  }
  return exit_ok;
}

int run_dump(const options& o) {
  const journal j = open_existing(o.dir);
  require_stream(j, o);  // an unknown stream is an error, not an empty dump
  return print_from(j, o, o.from, o.count) ? exit_ok : exit_corrupt;
}

namespace {

void print_verify_report(const options& o, const journal_verify_report& report) {
  if (o.json) {
    json corruptions = json::array();
    for (const auto& c : report.corruptions)
      corruptions.push_back({{"stream", c.stream}, {"seq", c.seq}, {"what", c.what}});
    json damage = json::array();
    for (const auto& d : report.damage) damage.push_back({{"stream", d.stream}, {"what", d.what}});
    print_json({{"path", o.dir},
                {"streams", report.streams},
                {"records", report.records},
                {"bytes", report.bytes},
                {"clean", report.clean()},
                {"corruptions", std::move(corruptions)},
                {"damage", std::move(damage)}});
    return;
  }
  std::cout << "checked " << report.records << " records (" << report.bytes << " payload bytes) in "
            << counted(report.streams, "stream") << '\n';
  for (const auto& c : report.corruptions)
    std::cout << "corrupt: stream '" << c.stream << "' seq " << c.seq << ": " << c.what << '\n';
  for (const auto& d : report.damage) {
    std::cout << "damaged: ";
    if (!d.stream.empty()) std::cout << "stream '" << d.stream << "': ";
    std::cout << d.what << '\n';
  }
  if (report.clean()) {
    std::cout << "clean\n";
    return;
  }
  std::string summary;
  if (!report.corruptions.empty()) summary = counted(report.corruptions.size(), "corrupt record");
  if (!report.damage.empty())
    summary += (summary.empty() ? "" : ", ") + counted(report.damage.size(), "damage report");
  std::cout << summary << '\n';
}

// The check itself: opens the journal and verifies it, and prints the report.
int verify_here(const options& o) {
  // Lets the tests show what a crash of the check is reported as.
  if (std::getenv("FABRIC_JOURNAL_VERIFY_CRASH_FOR_TESTS") != nullptr) ::raise(SIGSEGV);
  journal_verify_report report;
  try {
    const journal j = open_existing(o.dir);
    report = j.verify();
  } catch (const damaged_journal& e) {
    report.damage.push_back({"", e.what()});
  }
  print_verify_report(o, report);
  return report.clean() ? exit_ok : exit_corrupt;
}

// The whole of a file written by a child, from its start.
std::string contents_of(int fd) {
  std::string text;
  char buf[65536];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
  return text;
}

struct child_result {
  int status = 0;
  std::string out;
  std::string err;
};

// Runs `body` in a child process with its output captured, and returns how the child ended and
// what it wrote. Nothing the child meets can take this process down with it.
child_result run_in_child(const std::function<int()>& body) {
  std::cout.flush();
  std::cerr.flush();
  const int out_fd = ::memfd_create("fabric-journal-out", MFD_CLOEXEC);
  const int err_fd = out_fd < 0 ? -1 : ::memfd_create("fabric-journal-err", MFD_CLOEXEC);
  const pid_t child = err_fd < 0 ? -1 : ::fork();
  if (child < 0) {
    const std::string why = std::strerror(errno);
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    throw tool_error("cannot start the check in a child process: " + why);
  }
  if (child == 0) {
    int code = exit_error;
    if (::dup2(out_fd, STDOUT_FILENO) >= 0 && ::dup2(err_fd, STDERR_FILENO) >= 0) {
      try {
        code = body();
      } catch (const std::exception& e) {
        std::cerr << "fabric-journal: " << e.what() << '\n';
      }
    }
    std::cout.flush();
    std::cerr.flush();
    ::_exit(code);
  }
  child_result r;
  while (::waitpid(child, &r.status, 0) < 0 && errno == EINTR) {
  }
  r.out = contents_of(out_fd);
  r.err = contents_of(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return r;
}

}  // namespace

int run_verify(const options& o) {
  require_journal_dir(o.dir);
  // The check runs in a child process. It reads the data file itself rather than through LMDB,
  // and the library refuses the damage it knows at open, but a kind of damage nobody foresaw
  // could still make LMDB assert or fault while opening: the child dies then, not the tool,
  // which reports the journal as damaged.
  const child_result child = run_in_child([&] { return verify_here(o); });
  if (WIFEXITED(child.status)) {
    std::cout << child.out;
    std::cerr << child.err;
    return WEXITSTATUS(child.status);
  }
  const int sig = WIFSIGNALED(child.status) ? WTERMSIG(child.status) : 0;
  std::string what = std::string("the check crashed (") + (sig != 0 ? ::strsignal(sig) : "unknown") + ")";
  // LMDB says which assertion failed before it aborts: the last line the child wrote.
  std::string said = child.err;
  while (!said.empty() && said.back() == '\n') said.pop_back();
  if (const auto line = said.rfind('\n'); line != std::string::npos) said.erase(0, line + 1);
  if (!said.empty()) what += ": " + said;
  what += "; the data file is damaged in a way its checks did not catch";
  journal_verify_report report;
  report.damage.push_back({"", what});
  print_verify_report(o, report);
  return exit_corrupt;
}

int run_compact(const options& o) {
  require_journal_dir(o.dir);
  const fs::path dest(o.dest);
  std::error_code ec;
  const fs::file_status status = fs::status(dest, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    throw tool_error("cannot access " + o.dest + ": " + ec.message());
  const bool existed = fs::exists(status);
  if (existed && !fs::is_directory(status)) throw tool_error("not a directory: " + o.dest);
  if (existed && !fs::is_empty(dest, ec))
    throw tool_error("refusing to compact into " + o.dest + ": the directory is not empty");

  const journal j = open_existing(o.dir);
  if (!existed && !fs::create_directories(dest, ec) && ec)
    throw tool_error("cannot create " + o.dest + ": " + ec.message());
  const std::uint64_t before = file_bytes(data_file(o.dir));
  if (auto copied = j.copy_to(dest, true); !copied) {
    // Leave nothing half-written behind that could pass for a journal.
    fs::remove(data_file(dest), ec);
    if (!existed) fs::remove(dest, ec);
    throw tool_error("cannot copy " + o.dir + " into " + o.dest + ": " + copied.error().message());
  }
  const std::uint64_t after = file_bytes(data_file(dest));
  if (o.json) {
    print_json({{"source", o.dir}, {"dest", o.dest}, {"bytes_before", before}, {"bytes_after", after}});
    return exit_ok;
  }
  std::cout << "compacted " << o.dir << " into " << o.dest << '\n'
            << "before  " << human_bytes(before) << " (" << before << " bytes)\n"
            << "after   " << human_bytes(after) << " (" << after << " bytes)\n";
  return exit_ok;
}

// ---- the dead-letter queue

int run_dlq_list(const options& o) {
  const journal j = open_existing(o.dir);
  const auto letters = j.dead_letters(o.from, o.count ? static_cast<std::size_t>(*o.count) : std::size_t{1000}).value();
  if (o.json) {
    json dead_letters = json::array();
    for (const auto& d : letters) {
      json letter = {{"id", d.id},
                     {"stream", d.stream},
                     {"seq", d.seq},
                     {"reason", d.reason},
                     {"attempts", d.attempts},
                     {"time", iso8601_utc(d.timestamp_ns)},
                     {"size", d.payload.size()},
                     {"payload", to_base64(d.payload)}};
      if (printable_text(d.payload)) letter["text"] = d.payload;
      dead_letters.push_back(std::move(letter));
    }
    print_json({{"path", o.dir}, {"dead_letters", std::move(dead_letters)}});
    return exit_ok;
  }
  if (letters.empty()) {
    std::cout << "the dead-letter queue is empty\n";
    return exit_ok;
  }
  for (const auto& d : letters) {
    std::cout << "id " << d.id << "  " << iso8601_utc(d.timestamp_ns) << "  from '" << d.stream << "' seq " << d.seq
              << "  attempts " << d.attempts << "  reason: " << d.reason << "\n  "
              << (printable_text(d.payload) && !o.hex ? "text: " + d.payload : "hex: " + to_hex(d.payload)) << '\n';
  }
  return exit_ok;
}

namespace {

// requeue and discard change the journal, so they open it for writing: with the service that
// owns the journal running, the open is refused (one writer at a time) and the message says so.
journal open_for_writing(const std::string& dir) {
  require_journal_dir(dir);
  try {
    return journal::open(dir);
  } catch (const error& e) {
    // The library's advice (open read-only) does not fit a command that must write.
    if (e.code() == errc::invalid_state)
      throw tool_error(dir + " is open for writing in another process: stop the service that uses it, then run "
                       "this again");
    if (e.code() == errc::malformed) throw damaged_journal(message_of(e));
    throw;
  }
}

}  // namespace

int run_dlq_requeue(const options& o) {
  journal j = open_for_writing(o.dir);
  int code = exit_ok;
  for (const std::uint64_t id : o.ids) {
    auto seq = j.requeue(id);
    if (seq) {
      std::cout << "dead letter " << id << " requeued as seq " << *seq << '\n';
    } else {
      std::cerr << "fabric-journal: cannot requeue dead letter " << id << ": "
                << (seq.is(errc::invalid_argument) ? std::string("no such dead letter") : seq.error().message())
                << '\n';
      code = exit_error;
    }
  }
  return code;
}

int run_dlq_discard(const options& o) {
  journal j = open_for_writing(o.dir);
  int code = exit_ok;
  for (const std::uint64_t id : o.ids) {
    auto existed = j.discard_dead_letter(id);
    if (!existed) {
      std::cerr << "fabric-journal: cannot discard dead letter " << id << ": " << existed.error().message() << '\n';
      code = exit_error;
    } else if (!*existed) {
      std::cerr << "fabric-journal: no dead letter " << id << '\n';
      code = exit_error;
    } else {
      std::cout << "dead letter " << id << " discarded\n";
    }
  }
  return code;
}

namespace {

std::uint64_t draw_incarnation() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return v;
}

}  // namespace

// Rule 2 of section 7: a sender whose journal was restored from an older copy would reuse
// sequences its receivers hold as taken, and they refuse it (sender-regressed). A new
// incarnation makes each receiver take the sender's channels afresh from their acknowledged
// cursors (rule 3). Running services keep their incarnation in memory, so the journal must not
// be open for writing elsewhere: the journal's lock refuses the open then.
int run_channel_reset(const options& o) {
  journal j = open_for_writing(o.dir);
  std::optional<std::string> before;
  std::uint64_t after = 0;
  const auto done = j.transact([&](journal_txn& t) {
    // The journal may run this more than once: every run starts afresh.
    before.reset();
    after = 0;
    auto have = t.get(identity_table, identity_key);
    if (!have || !*have) return;  // a failed read fails the transaction; nothing to reset
    before = **have;
    const std::uint64_t old = before->size() == 8 ? load_be64(*before) : 0;
    do after = draw_incarnation();
    while (after == old);
    std::string bytes(8, '\0');
    for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>(after >> (56 - 8 * i));
    t.put(identity_table, identity_key, bytes);
  });
  if (!done) throw tool_error("cannot reset the incarnation of " + o.dir + ": " + done.error().message());
  if (!before)
    throw tool_error("no reliable channel has used " + o.dir +
                     ": it has no incarnation to reset (a channel draws one when it first opens the journal)");
  const std::uint64_t old = before->size() == 8 ? load_be64(*before) : 0;
  if (o.json) {
    print_json({{"path", o.dir}, {"old_incarnation", incarnation_json(old)}, {"new_incarnation", incarnation_text(after)}});
    return exit_ok;
  }
  std::cout << "reset the incarnation of " << o.dir << '\n'
            << "old  " << (old != 0 ? incarnation_text(old) : "damaged (" + std::to_string(before->size()) + " bytes: " + to_hex(*before) + ")") << '\n'
            << "new  " << incarnation_text(after) << '\n';
  return exit_ok;
}

}  // namespace fabric::journal_tool
