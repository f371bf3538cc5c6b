// One side of a reliable channel in a process of its own, for the chaos tests that kill -9 a
// side at random and restart it on the same journal (tests/chaos/reliable_channel_chaos_test.cpp).
//
// The sender sends ids 1..count on streams s1 and s2, one thread per stream, as message bodies
// whose sequence must equal their id: each send() waits for the one before, or with --async each
// is handed to send_async() when due, so that many are in flight at once. A restarted sender
// resumes after the last id its outbox holds. Into the log file it writes "resume <stream> <last>"
// at start (1..last are durable in its outbox) and "sent <stream> <id>" once that send completed
// with success, never before. On stdout: "ready" once running, "complete" once its journal holds
// every id of both streams as acknowledged, and with --report-outbox a line
// "outbox <stream> acked <a> first <f>" whenever its acknowledged cursor or the first record its
// outbox still holds change.
//
// The receiver binds its endpoint and prints "bound <endpoint>". At least once, it logs
// "delivered <stream> <id> <seq>" from its handler, before the mark is written. Effectively
// once, its handler writes the evidence in the channel's own transaction: the table "applied"
// counts the applications of each "<stream>/<id>", and stream "applied/<stream>" holds
// "<id> <seq>" in the order they were applied. A body that does not match its id is recorded
// with the id "corrupt". --hold-at <stream>:<seq> makes the handler print "holding <stream> <seq>"
// and block for good on that message (inside the transaction, effectively once), so that a test
// can kill the receiver at a known point with the commit certainly not done.
// --ack-before-durable (or FABRIC_FRC_ACK_BEFORE_DURABLE=1 in the environment, which reaches
// every receiver a test run starts) plants the bug of src/reliability/frc_faults.hpp.
//
// Each log line is one write() to a file opened O_APPEND, so a kill -9 leaves whole lines only.
// The process dies with its parent and gives up after --lifetime seconds, so none outlives a test.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/reliable_channel.hpp>

#include "reliability/frc_faults.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::array<std::string_view, 2> streams = {"s1", "s2"};
constexpr std::string_view sender_name = "chaos-sender";
constexpr std::string_view receiver_name = "chaos-receiver";

enum exit_code : int {
  exit_usage = 64,
  exit_send_failed = 3,
  exit_wrong_sequence = 4,
  exit_journal_failed = 5,
  exit_log_failed = 6,
  exit_lifetime = 15,
};

constexpr const char* usage =
    "usage: fabric-test-frc-peer sender --journal DIR --endpoint EP --log FILE --count N\n"
    "                                   [--rate PER-STREAM-PER-S] [--durability sync|periodic|none]\n"
    "                                   [--async] [--report-outbox] [--lifetime S]\n"
    "       fabric-test-frc-peer receiver --journal DIR --endpoint EP --log FILE\n"
    "                                   --mode at-least-once|effectively-once\n"
    "                                   [--durability sync|periodic|none] [--hold-at STREAM:SEQ]\n"
    "                                   [--ack-before-durable] [--lifetime S]\n"
    "Environment: FABRIC_FRC_ACK_BEFORE_DURABLE=1 is --ack-before-durable.\n"
    "One side of a reliable channel, for fabric's kill -9 chaos tests (see the source's header).\n";

struct settings {
  std::string role;
  std::string journal_dir;
  std::string endpoint;
  std::string log_path;
  std::uint64_t count = 0;
  double rate = 0;  // 0: as fast as sends complete
  fabric::durability durability = fabric::durability::sync;
  bool report_outbox = false;
  bool async = false;
  fabric::delivery_mode mode = fabric::delivery_mode::at_least_once;
  std::string hold_stream;
  std::uint64_t hold_seq = 0;
  bool ack_before_durable = false;
  std::chrono::seconds lifetime{600};
};

[[noreturn]] void fail(int code, const std::string& what) {
  std::fprintf(stderr, "fabric-test-frc-peer: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

std::uint64_t parse_number(std::string_view text, const char* what) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    fail(exit_usage, std::string("bad ") + what + ": " + std::string(text));
  return v;
}

settings parse(int argc, char** argv) {
  settings s;
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    std::exit(argc < 2 ? exit_usage : 0);
  }
  s.role = argv[1];
  if (s.role != "sender" && s.role != "receiver") fail(exit_usage, "the first word must be sender or receiver");
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) fail(exit_usage, std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (flag == "--journal") s.journal_dir = value();
    else if (flag == "--endpoint") s.endpoint = value();
    else if (flag == "--log") s.log_path = value();
    else if (flag == "--count") s.count = parse_number(value(), "--count");
    else if (flag == "--rate") s.rate = static_cast<double>(parse_number(value(), "--rate"));
    else if (flag == "--report-outbox") s.report_outbox = true;
    else if (flag == "--async") s.async = true;
    else if (flag == "--ack-before-durable") s.ack_before_durable = true;
    else if (flag == "--lifetime") s.lifetime = std::chrono::seconds(parse_number(value(), "--lifetime"));
    else if (flag == "--durability") {
      const std::string_view v = value();
      if (v == "sync") s.durability = fabric::durability::sync;
      else if (v == "periodic") s.durability = fabric::durability::periodic;
      else if (v == "none") s.durability = fabric::durability::none;
      else fail(exit_usage, "--durability must be sync, periodic or none");
    } else if (flag == "--mode") {
      const std::string_view v = value();
      if (v == "at-least-once") s.mode = fabric::delivery_mode::at_least_once;
      else if (v == "effectively-once") s.mode = fabric::delivery_mode::effectively_once;
      else fail(exit_usage, "--mode must be at-least-once or effectively-once");
    } else if (flag == "--hold-at") {
      const std::string_view v = value();
      const auto colon = v.find(':');
      if (colon == std::string_view::npos) fail(exit_usage, "--hold-at takes STREAM:SEQ");
      s.hold_stream = std::string(v.substr(0, colon));
      s.hold_seq = parse_number(v.substr(colon + 1), "--hold-at sequence");
    } else {
      fail(exit_usage, "unknown flag " + std::string(flag) + " (see --help)");
    }
  }
  if (s.journal_dir.empty() || s.endpoint.empty() || s.log_path.empty())
    fail(exit_usage, "--journal, --endpoint and --log are required");
  if (s.role == "sender" && s.count == 0) fail(exit_usage, "the sender needs --count");
  const char* plant = std::getenv("FABRIC_FRC_ACK_BEFORE_DURABLE");
  if (plant != nullptr && std::string_view(plant) == "1") s.ack_before_durable = true;
  return s;
}

// The log file: one write() per line, so that a kill leaves no half line behind.
class line_log {
 public:
  explicit line_log(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) fail(exit_log_failed, "cannot open the log " + path + ": " + std::strerror(errno));
  }
  void line(const std::string& text) const { write_line(fd_, text); }
  static void write_line(int fd, const std::string& text) {
    const std::string whole = text + "\n";
    if (::write(fd, whole.data(), whole.size()) != static_cast<ssize_t>(whole.size()))
      fail(exit_log_failed, "a log line could not be written whole");
  }

 private:
  int fd_;
};

void say(const std::string& text) { line_log::write_line(STDOUT_FILENO, text); }

// The body of message `id` on `stream`: names both, padded to a length that varies with the id.
std::string body_of(std::string_view stream, std::uint64_t id) {
  std::string b = std::string(stream) + "#" + std::to_string(id) + "#";
  b.append(16 + (id * 37) % 200, static_cast<char>('a' + id % 26));
  return b;
}

// The id a body names, when it is exactly body_of(stream, id).
std::optional<std::uint64_t> id_of(std::string_view stream, std::string_view body) {
  if (body.size() <= stream.size() + 1 || body.substr(0, stream.size()) != stream || body[stream.size()] != '#')
    return std::nullopt;
  const std::string_view rest = body.substr(stream.size() + 1);
  const auto hash = rest.find('#');
  if (hash == std::string_view::npos) return std::nullopt;
  std::uint64_t id = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + hash, id);
  if (ec != std::errc() || end != rest.data() + hash || body_of(stream, id) != body) return std::nullopt;
  return id;
}

fabric::journal open_journal(const settings& s) {
  fabric::journal_options o;
  o.mode = s.durability;
  o.sync_interval = 5ms;
  try {
    return fabric::journal::open(s.journal_dir, o);
  } catch (const std::exception& e) {
    fail(exit_journal_failed, std::string("cannot open the journal: ") + e.what());
  }
}

// ------------------------------------------------------------------------------------- sender

int run_sender(const settings& s) {
  const line_log log(s.log_path);
  fabric::context ctx;
  fabric::journal j = open_journal(s);
  fabric::reliable_sender_options o;
  o.name = std::string(sender_name);
  o.receiver = std::string(receiver_name);
  o.endpoint = s.endpoint;
  o.streams = {std::string(streams[0]), std::string(streams[1])};
  o.heartbeat = 100ms;
  o.reconnect_interval = 20ms;
  o.reconnect_interval_max = 200ms;
  o.retransmit_interval = 300ms;
  o.send_timeout = 30s;
  fabric::reliable_sender out(ctx, j, o);

  std::vector<std::uint64_t> resume;
  for (const auto stream : streams) {
    auto last = j.last_seq(out.outbox_stream(stream));
    if (!last) fail(exit_journal_failed, "cannot read the outbox: " + last.error().message());
    resume.push_back(last->value_or(0));
    log.line("resume " + std::string(stream) + " " + std::to_string(resume.back()));
  }
  say("ready");

  std::atomic<std::size_t> finished{0};
  std::vector<std::jthread> threads;
  for (std::size_t k = 0; k < streams.size(); ++k) {
    threads.emplace_back([&, k] {
      const std::string_view stream = streams[k];
      const auto start = clock_type::now();
      for (std::uint64_t id = resume[k] + 1; id <= s.count; ++id) {
        if (s.rate > 0) {  // an open-loop pace: the rate is the subject, not a synchronisation
          const auto due = start + std::chrono::duration_cast<clock_type::duration>(
                                       std::chrono::duration<double>(static_cast<double>(id - resume[k] - 1) / s.rate));
          std::this_thread::sleep_until(due);
        }
        auto completed = [&log, stream, id](fabric::result<std::uint64_t> r) {
          const std::string what = "send of " + std::string(stream) + " #" + std::to_string(id);
          if (!r) fail(exit_send_failed, what + ": " + r.error().message());
          if (*r != id) fail(exit_wrong_sequence, what + " got sequence " + std::to_string(*r));
          log.line("sent " + std::string(stream) + " " + std::to_string(id));
        };
        if (s.async) out.send_async(stream, body_of(stream, id), completed);
        else completed(out.send(stream, body_of(stream, id)));
      }
      ++finished;
    });
  }

  // The library announces no acknowledgement, so the journal's cursors are sampled.
  const auto give_up = clock_type::now() + s.lifetime;
  std::map<std::string_view, std::pair<std::uint64_t, std::uint64_t>> reported;
  bool said_complete = false;
  for (;;) {
    bool all_acked = true;
    for (const auto stream : streams) {
      const std::string outbox = out.outbox_stream(stream);
      auto acked = j.cursor("frc.acked/" + std::string(receiver_name) + "/" + std::string(stream));
      auto head = j.read(outbox, 1, 1, 0);
      auto last = j.last_seq(outbox);
      if (!acked || !head || !last) fail(exit_journal_failed, "cannot read the sender's journal");
      const std::uint64_t a = acked->value_or(0);
      const std::uint64_t first = head->records.empty() ? last->value_or(0) + 1 : head->records.front().seq;
      all_acked = all_acked && a >= s.count;
      if (s.report_outbox && reported[stream] != std::make_pair(a, first)) {
        reported[stream] = {a, first};
        say("outbox " + std::string(stream) + " acked " + std::to_string(a) + " first " + std::to_string(first));
      }
    }
    if (all_acked && finished == streams.size() && !said_complete) {
      say("complete");
      said_complete = true;
    }
    if (clock_type::now() > give_up) fail(exit_lifetime, "never killed: gave up after --lifetime");
    std::this_thread::sleep_for(10ms);
  }
}

// ----------------------------------------------------------------------------------- receiver

// Prints the hold line, then blocks this thread for good: the test kills the process here.
[[noreturn]] void hold(std::string_view stream, std::uint64_t seq) {
  say("holding " + std::string(stream) + " " + std::to_string(seq));
  for (;;) ::pause();
}

int run_receiver(const settings& s) {
  const line_log log(s.log_path);
  fabric::frc::faults::set_ack_before_durable(s.ack_before_durable);
  fabric::context ctx;
  fabric::journal j = open_journal(s);
  const auto held = [&s](const fabric::reliable_delivery& d) {
    return !s.hold_stream.empty() && d.stream == s.hold_stream && d.seq == s.hold_seq;
  };
  fabric::reliable_receiver_options o;
  o.endpoint = s.endpoint;
  o.mode = s.mode;
  o.heartbeat = 100ms;
  o.on_message = [&](const fabric::reliable_delivery& d) {
    if (held(d)) hold(d.stream, d.seq);
    const auto id = id_of(d.stream, d.body);
    log.line("delivered " + std::string(d.stream) + " " + (id ? std::to_string(*id) : "corrupt") + " " +
             std::to_string(d.seq));
  };
  o.on_message_in = [&](const fabric::reliable_delivery& d, fabric::journal_txn& t) {
    const auto id = id_of(d.stream, d.body);
    const std::string name = id ? std::to_string(*id) : "corrupt";
    const std::string key = std::string(d.stream) + "/" + name;
    auto before = t.get("applied", key);
    if (!before) throw std::runtime_error("cannot read the table: " + before.error().message());
    const std::uint64_t times = before->has_value() ? parse_number(**before, "stored count") : 0;
    t.put("applied", key, std::to_string(times + 1));
    (void)t.append("applied/" + std::string(d.stream), name + " " + std::to_string(d.seq));
    if (held(d)) hold(d.stream, d.seq);  // its writes are made, and will never commit
  };
  fabric::reliable_receiver in(ctx, j, o);
  say("bound " + in.endpoint());

  // Looks in on the receiver's thread now and then, so that a failure ends the process with
  // its reason instead of leaving a silent peer for the test to time out on.
  const auto give_up = clock_type::now() + s.lifetime;
  while (clock_type::now() < give_up) {
    std::this_thread::sleep_for(100ms);
    if (auto failed = in.failure()) {
      try {
        std::rethrow_exception(failed);
      } catch (const std::exception& e) {
        fail(exit_journal_failed, std::string("the receiver failed: ") + e.what());
      }
    }
  }
  fail(exit_lifetime, "never killed: gave up after --lifetime");
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  // Dies with the test that started it, even when that test is itself killed.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return exit_lifetime;
  try {
    return s.role == "sender" ? run_sender(s) : run_receiver(s);
  } catch (const std::exception& e) {
    fail(1, e.what());
  }
}
