// One side of a stream in a process of its own, for the chaos tests that kill -9 a publisher or
// a subscriber at random and restart it on the same journal (tests/chaos/stream_chaos_test.cpp).
//
// The publisher publishes ids 1..count on streams s1..sK (--streams K), one thread per stream,
// as message bodies whose sequence must equal their id; each publish() waits for the one before.
// A restarted publisher resumes after the last id its journal holds. Into the log file it writes
// "resume <stream> <last>" at start (1..last are durable in its journal) and "sent <stream> <id>"
// once that publish() returned with success, never before. On stdout: "ready" once both
// endpoints are bound, and "complete" once every id of every stream is published.
//
// The subscriber follows s1..sK from sequence 1, with its positions in its own journal. At start
// it logs "start", then "resume <stream> <next>" for each position its journal holds (the first
// sequence it may deliver). At least once, its handler logs "delivered <stream> <id> <seq>". Effectively once,
// its handler writes the evidence in the subscriber's own transaction: the table "applied"
// counts the applications of each "<stream>/<id>", and stream "applied/<stream>" holds
// "<id> <seq>" in the order they were applied. A body that does not match its id is recorded with
// the id "corrupt". Every notice is logged as "notice <kind> <stream> <from> <to>". On stdout:
// "ready" once started, and "complete" once its journal holds a position past --count on every
// stream. With --progress FILE, the number of handler calls so far is kept in FILE (replaced
// whole, every 20 ms while it changes), so that a test can watch it progress.
// --position-one-too-far (or FABRIC_FRS_POSITION_ONE_TOO_FAR=1 in the environment, which reaches
// every subscriber a test run starts) plants the bug of src/reliability/frs_faults.hpp.
//
// Each log line is one write() to a file opened O_APPEND, so a kill -9 leaves whole lines only.
// The process dies with its parent and gives up after --lifetime seconds, so none outlives a test.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/stream.hpp>

#include "reliability/frs_faults.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

enum exit_code : int {
  exit_usage = 64,
  exit_publish_failed = 3,
  exit_wrong_sequence = 4,
  exit_journal_failed = 5,
  exit_log_failed = 6,
  exit_lifetime = 15,
};

constexpr const char* usage =
    "usage: fabric-test-frs-peer publisher --journal DIR --endpoint EP --replay-endpoint EP --log FILE\n"
    "                                      --count N [--streams K] [--rate PER-STREAM-PER-S]\n"
    "                                      [--durability sync|periodic|none] [--heartbeat-ms MS]\n"
    "                                      [--lifetime S]\n"
    "       fabric-test-frs-peer subscriber --journal DIR --endpoint EP --replay-endpoint EP --log FILE\n"
    "                                      --mode at-least-once|effectively-once --count N\n"
    "                                      [--streams K] [--durability sync|periodic|none]\n"
    "                                      [--progress FILE] [--position-one-too-far] [--lifetime S]\n"
    "Environment: FABRIC_FRS_POSITION_ONE_TOO_FAR=1 is --position-one-too-far.\n"
    "One side of a stream, for fabric's kill -9 chaos tests (see the source's header).\n";

struct settings {
  std::string role;
  std::string journal_dir;
  std::string endpoint;
  std::string replay_endpoint;
  std::string log_path;
  std::string progress_path;
  std::uint64_t count = 0;
  std::uint64_t streams = 2;
  double rate = 0;  // 0: as fast as publishes complete
  fabric::durability durability = fabric::durability::sync;
  std::chrono::milliseconds heartbeat{100};
  fabric::stream_delivery mode = fabric::stream_delivery::at_least_once;
  bool position_one_too_far = false;
  std::chrono::seconds lifetime{600};
};

[[noreturn]] void fail(int code, const std::string& what) {
  std::fprintf(stderr, "fabric-test-frs-peer: %s\n", what.c_str());
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
  if (s.role != "publisher" && s.role != "subscriber")
    fail(exit_usage, "the first word must be publisher or subscriber");
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) fail(exit_usage, std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (flag == "--journal") s.journal_dir = value();
    else if (flag == "--endpoint") s.endpoint = value();
    else if (flag == "--replay-endpoint") s.replay_endpoint = value();
    else if (flag == "--log") s.log_path = value();
    else if (flag == "--progress") s.progress_path = value();
    else if (flag == "--count") s.count = parse_number(value(), "--count");
    else if (flag == "--streams") s.streams = parse_number(value(), "--streams");
    else if (flag == "--rate") s.rate = static_cast<double>(parse_number(value(), "--rate"));
    else if (flag == "--heartbeat-ms") s.heartbeat = std::chrono::milliseconds(parse_number(value(), "--heartbeat-ms"));
    else if (flag == "--position-one-too-far") s.position_one_too_far = true;
    else if (flag == "--lifetime") s.lifetime = std::chrono::seconds(parse_number(value(), "--lifetime"));
    else if (flag == "--durability") {
      const std::string_view v = value();
      if (v == "sync") s.durability = fabric::durability::sync;
      else if (v == "periodic") s.durability = fabric::durability::periodic;
      else if (v == "none") s.durability = fabric::durability::none;
      else fail(exit_usage, "--durability must be sync, periodic or none");
    } else if (flag == "--mode") {
      const std::string_view v = value();
      if (v == "at-least-once") s.mode = fabric::stream_delivery::at_least_once;
      else if (v == "effectively-once") s.mode = fabric::stream_delivery::effectively_once;
      else fail(exit_usage, "--mode must be at-least-once or effectively-once");
    } else {
      fail(exit_usage, "unknown flag " + std::string(flag) + " (see --help)");
    }
  }
  if (s.journal_dir.empty() || s.endpoint.empty() || s.replay_endpoint.empty() || s.log_path.empty())
    fail(exit_usage, "--journal, --endpoint, --replay-endpoint and --log are required");
  if (s.count == 0) fail(exit_usage, "--count is required");
  if (s.streams == 0 || s.streams > 16) fail(exit_usage, "--streams must be 1..16");
  if (s.heartbeat.count() < 1) fail(exit_usage, "--heartbeat-ms must be positive");
  const char* plant = std::getenv("FABRIC_FRS_POSITION_ONE_TOO_FAR");
  if (plant != nullptr && std::string_view(plant) == "1") s.position_one_too_far = true;
  return s;
}

std::vector<std::string> stream_names(const settings& s) {
  std::vector<std::string> out;
  for (std::uint64_t k = 1; k <= s.streams; ++k) out.push_back("s" + std::to_string(k));
  return out;
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

// Ends the process with the reason a stream machine failed, if it did.
void check_failure(std::exception_ptr failed, const char* who) {
  if (!failed) return;
  try {
    std::rethrow_exception(failed);
  } catch (const std::exception& e) {
    fail(exit_journal_failed, std::string("the ") + who + " failed: " + e.what());
  }
}

// ---------------------------------------------------------------------------------- publisher

int run_publisher(const settings& s) {
  const line_log log(s.log_path);
  const auto names = stream_names(s);
  fabric::context ctx;
  fabric::journal j = open_journal(s);
  fabric::stream_publisher_options o;
  o.endpoint = s.endpoint;
  o.replay_endpoint = s.replay_endpoint;
  o.heartbeat = s.heartbeat;  // retention stays off: nothing may be gone
  fabric::stream_publisher pub(ctx, j, o);

  std::vector<std::uint64_t> resume;
  for (const auto& stream : names) {
    auto last = j.last_seq(fabric::stream_publisher::journal_stream(stream));
    if (!last) fail(exit_journal_failed, "cannot read the journal: " + last.error().message());
    resume.push_back(last->value_or(0));
    log.line("resume " + stream + " " + std::to_string(resume.back()));
  }
  say("ready");

  std::atomic<std::size_t> finished{0};
  std::vector<std::jthread> threads;
  for (std::size_t k = 0; k < names.size(); ++k) {
    threads.emplace_back([&, k] {
      const std::string& stream = names[k];
      const auto start = clock_type::now();
      for (std::uint64_t id = resume[k] + 1; id <= s.count; ++id) {
        if (s.rate > 0) {  // an open-loop pace: the rate is the subject, not a synchronisation
          const auto due = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(
                                       static_cast<double>(id - resume[k] - 1) / s.rate));
          std::this_thread::sleep_until(due);
        }
        const auto r = pub.publish(stream, body_of(stream, id));
        const std::string what = "publish of " + stream + " #" + std::to_string(id);
        if (!r) fail(exit_publish_failed, what + ": " + r.error().message());
        if (*r != id) fail(exit_wrong_sequence, what + " got sequence " + std::to_string(*r));
        log.line("sent " + stream + " " + std::to_string(id));
      }
      ++finished;
    });
  }

  const auto give_up = clock_type::now() + s.lifetime;
  bool said_complete = false;
  while (clock_type::now() < give_up) {
    std::this_thread::sleep_for(10ms);
    check_failure(pub.failure(), "publisher");
    if (!said_complete && finished == names.size()) {
      say("complete");
      said_complete = true;
    }
  }
  fail(exit_lifetime, "never killed: gave up after --lifetime");
}

// --------------------------------------------------------------------------------- subscriber

constexpr std::string_view subscriber_name = "chaos-publisher";

// The subscriber's committed position for `stream` (docs/stream.md, section 6: the key is the
// name's length in one octet, the name, the stream; the value the incarnation and next, 8 octets
// each, big-endian). 0 when it has none.
std::uint64_t committed_next(const fabric::journal& j, const std::string& stream) {
  std::string key(1, static_cast<char>(subscriber_name.size()));
  key += subscriber_name;
  key += stream;
  auto v = j.get("frs.cursor", key);
  if (!v) fail(exit_journal_failed, "cannot read the positions: " + v.error().message());
  if (!*v) return 0;
  if ((*v)->size() != 16) fail(exit_journal_failed, "a position of " + std::to_string((*v)->size()) + " octets");
  std::uint64_t next = 0;
  for (std::size_t i = 8; i < 16; ++i) next = (next << 8) | static_cast<unsigned char>((**v)[i]);
  return next;
}

const char* notice_name(fabric::stream_notice::kind k) {
  using kind = fabric::stream_notice::kind;
  switch (k) {
    case kind::gone: return "gone";
    case kind::publisher_replaced: return "publisher-replaced";
    case kind::publisher_regressed: return "publisher-regressed";
    case kind::publisher_lost: return "publisher-lost";
    case kind::publisher_back: return "publisher-back";
    case kind::refused: return "refused";
    case kind::handler_failed: return "handler-failed";
  }
  return "unknown";
}

// Replaces `path` whole with `text`, so that a reader never sees half of it.
void replace_file(const std::string& path, const std::string& text) {
  const std::string temp = path + ".new";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(exit_log_failed, "cannot write " + temp + ": " + std::strerror(errno));
  line_log::write_line(fd, text);
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail(exit_log_failed, "cannot replace " + path);
}

int run_subscriber(const settings& s) {
  const line_log log(s.log_path);
  const auto names = stream_names(s);
  fabric::frs::faults::set_position_one_too_far(s.position_one_too_far);
  fabric::context ctx;
  fabric::journal j = open_journal(s);
  log.line("start");
  for (const auto& stream : names) {
    if (const auto next = committed_next(j, stream)) log.line("resume " + stream + " " + std::to_string(next));
  }

  std::atomic<std::uint64_t> calls{0};
  fabric::stream_subscriber_options o;
  o.endpoint = s.endpoint;
  o.replay_endpoint = s.replay_endpoint;
  o.streams = names;
  o.start = fabric::stream_start::from_seq(1);
  o.mode = s.mode;
  o.name = std::string(subscriber_name);
  o.fetch_timeout = 300ms;
  o.commit_interval = 20ms;
  o.on_message = [&](const fabric::stream_message& m) {
    ++calls;
    const auto id = id_of(m.stream, m.body);
    log.line("delivered " + std::string(m.stream) + " " + (id ? std::to_string(*id) : "corrupt") + " " +
             std::to_string(m.seq));
  };
  o.on_message_in = [&](const fabric::stream_message& m, fabric::journal_txn& t) {
    ++calls;
    const auto id = id_of(m.stream, m.body);
    const std::string name = id ? std::to_string(*id) : "corrupt";
    const std::string key = std::string(m.stream) + "/" + name;
    auto before = t.get("applied", key);
    if (!before) throw std::runtime_error("cannot read the table: " + before.error().message());
    const std::uint64_t times = before->has_value() ? parse_number(**before, "stored count") : 0;
    t.put("applied", key, std::to_string(times + 1));
    (void)t.append("applied/" + std::string(m.stream), name + " " + std::to_string(m.seq));
  };
  o.on_notice = [&](const fabric::stream_notice& n) {
    log.line(std::string("notice ") + notice_name(n.what) + " " + (n.stream.empty() ? "-" : n.stream) + " " +
             std::to_string(n.from) + " " + std::to_string(n.to));
  };
  fabric::stream_subscriber sub(ctx, j, o);
  say("ready");

  // Looks in on the subscriber now and then: its failure ends the process with the reason, its
  // committed positions tell when it has everything, and its handler calls are its progress.
  const auto give_up = clock_type::now() + s.lifetime;
  bool said_complete = false;
  std::uint64_t reported = ~std::uint64_t{0};
  while (clock_type::now() < give_up) {
    std::this_thread::sleep_for(20ms);
    check_failure(sub.failure(), "subscriber");
    if (!s.progress_path.empty() && calls != reported) {
      reported = calls;
      replace_file(s.progress_path, std::to_string(reported));
    }
    if (!said_complete) {
      bool all = true;
      for (const auto& stream : names) all = all && committed_next(j, stream) > s.count;
      if (all) {
        say("complete");
        said_complete = true;
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
    return s.role == "publisher" ? run_publisher(s) : run_subscriber(s);
  } catch (const std::exception& e) {
    fail(1, e.what());
  }
}
