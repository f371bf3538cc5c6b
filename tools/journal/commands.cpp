// fabric-journal's subcommands. They only read the journal (compact writes a copy elsewhere), and
// refuse a directory that is not already a journal, because journal::open would create one.
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
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string_view>
#include <system_error>
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

void print_stream_table(const std::vector<journal_stream_info>& infos) {
  std::vector<std::vector<std::string>> rows{{"STREAM", "FIRST", "LAST", "RECORDS"}};
  for (const auto& info : infos)
    rows.push_back({info.name, seq_or_dash(info, info.first_seq), seq_or_dash(info, info.last_seq),
                    std::to_string(info.records)});
  std::size_t widths[4] = {};
  for (const auto& row : rows)
    for (std::size_t c = 0; c < 4; ++c) widths[c] = std::max(widths[c], row[c].size());
  for (const auto& row : rows) {
    std::string line = row[0] + std::string(widths[0] - row[0].size(), ' ');
    for (std::size_t c = 1; c < 4; ++c)  // numbers right-aligned
      line += "  " + std::string(widths[c] - row[c].size(), ' ') + row[c];
    std::cout << line << '\n';
  }
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

int run_stats(const options& o) {
  const journal j = open_existing(o.dir);
  const auto infos = j.stream_infos().value();
  const auto counters = j.stats();
  const std::uint64_t size = file_bytes(data_file(o.dir));
  std::uint64_t records = 0;
  for (const auto& info : infos) records += info.records;
  if (o.json) {
    print_json({{"path", o.dir},
                {"data_file_bytes", size},
                {"map_size_bytes", counters.map_size},
                {"stream_count", infos.size()},
                {"records", records},
                {"streams", stream_infos_json(infos)}});
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
  return journal::open(dir);
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

}  // namespace fabric::journal_tool
