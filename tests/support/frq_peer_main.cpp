// One side of a work queue in a process of its own, for the tests that kill -9, stop or crash a
// producer or a worker (tests/integration/task_queue_process_test.cpp,
// tests/chaos/task_queue_chaos_test.cpp). Every task goes to the queue "jobs".
//
// The producer binds its endpoint on its journal and prints "bound <endpoint>", then "ready". It
// submits tasks 1..count, each task_body(n), one submit at a time (at --rate per second if
// given; --count 0 only serves). A restarted producer resumes after the last task its journal
// holds. Into the log file it writes "resume <last>" at start (tasks 1..last are durable) and
// "submitted <id>" once that submit returned its id, never before. Its on_result writes each
// completion into the table "completions" in the completion's own transaction: key the task id
// in decimal, value one line "<worker> <attempt> <result>" per completion recorded, so that a
// completion recorded twice shows as two lines. That table is the producer's record. On stdout:
// "complete" once every task 1..count is completed or dead-lettered, and with
// --announce-results a line "done <id> <worker> <attempt>" from inside each completion's
// transaction (it may yet fail to commit: a hint for waiting, not evidence).
//
// A worker connects to the producer as --name and answers each task with task_result(body).
// Its --mode: normal; slow:<ms> (each task takes that long: the subject of a test, a task that
// is running when a signal comes); crash-on-task:<n> (the n-th task this process starts ends the
// process with _exit(42) in the middle of the task). Each execution it starts is one line
// "start <worker> <id> <attempt>" in the --executions file, written before the work begins, and
// "finish <worker> <id> <attempt>" once the handler returns. On stdout: "ready" once running,
// "working" once the producer first welcomed it, with --announce the same start and finish lines,
// and with --report-stats "stats completed <c> stale <s> cancelled <x>" whenever they change.
//
// Each log line is one write() to a file opened O_APPEND, so a kill -9 leaves whole lines only.
// The process dies with its parent and gives up after --lifetime seconds, so none outlives a test.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/task_queue.hpp>

#include "reliability/frq_faults.hpp"

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
#include <string>
#include <string_view>
#include <thread>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view queue_name = "jobs";
constexpr std::string_view completions_table = "completions";

enum exit_code : int {
  exit_usage = 64,
  exit_submit_failed = 3,
  exit_wrong_id = 4,
  exit_journal_failed = 5,
  exit_log_failed = 6,
  exit_failed = 7,
  exit_lifetime = 15,
  exit_crashed = 42,
};

constexpr const char* usage =
    "usage: fabric-test-frq-peer producer --journal DIR --endpoint EP --log FILE [--count N]\n"
    "                                     [--rate PER-S] [--durability sync|periodic|none]\n"
    "                                     [--deadline-ms MS] [--max-attempts N] [--announce-results]\n"
    "                                     [--forget-done-tasks] [--lifetime S]\n"
    "       fabric-test-frq-peer worker --endpoint EP --name NAME --executions FILE [--capacity N]\n"
    "                                   [--mode normal|slow:MS|crash-on-task:N] [--heartbeat-ms MS]\n"
    "                                   [--announce] [--report-stats] [--lifetime S]\n"
    "Environment: FABRIC_FRQ_FORGET_DONE_TASKS=1 is --forget-done-tasks.\n"
    "One side of a work queue, for fabric's process fault tests (see the source's header).\n";

struct settings {
  std::string role;
  // producer
  std::string journal_dir;
  std::string log_path;
  std::uint64_t count = 0;
  double rate = 0;
  fabric::durability durability = fabric::durability::periodic;
  std::chrono::milliseconds deadline{5000};
  std::uint32_t max_attempts = 10;
  bool announce_results = false;
  bool forget_done_tasks = false;
  // worker
  std::string name;
  std::string executions;
  std::uint32_t capacity = 1;
  std::chrono::milliseconds work{0};
  std::uint64_t crash_on = 0;
  std::chrono::milliseconds heartbeat{100};
  bool announce = false;
  bool report_stats = false;
  // both
  std::string endpoint;
  std::chrono::seconds lifetime{600};
};

[[noreturn]] void fail(int code, const std::string& what) {
  std::fprintf(stderr, "fabric-test-frq-peer: %s\n", what.c_str());
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
  if (s.role != "producer" && s.role != "worker") fail(exit_usage, "the first word must be producer or worker");
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
    else if (flag == "--deadline-ms") s.deadline = std::chrono::milliseconds(parse_number(value(), "--deadline-ms"));
    else if (flag == "--max-attempts")
      s.max_attempts = static_cast<std::uint32_t>(parse_number(value(), "--max-attempts"));
    else if (flag == "--announce-results") s.announce_results = true;
    else if (flag == "--forget-done-tasks") s.forget_done_tasks = true;
    else if (flag == "--name") s.name = value();
    else if (flag == "--executions") s.executions = value();
    else if (flag == "--capacity") s.capacity = static_cast<std::uint32_t>(parse_number(value(), "--capacity"));
    else if (flag == "--heartbeat-ms") s.heartbeat = std::chrono::milliseconds(parse_number(value(), "--heartbeat-ms"));
    else if (flag == "--announce") s.announce = true;
    else if (flag == "--report-stats") s.report_stats = true;
    else if (flag == "--lifetime") s.lifetime = std::chrono::seconds(parse_number(value(), "--lifetime"));
    else if (flag == "--durability") {
      const std::string_view v = value();
      if (v == "sync") s.durability = fabric::durability::sync;
      else if (v == "periodic") s.durability = fabric::durability::periodic;
      else if (v == "none") s.durability = fabric::durability::none;
      else fail(exit_usage, "--durability must be sync, periodic or none");
    } else if (flag == "--mode") {
      const std::string_view v = value();
      if (v == "normal") {
      } else if (v.starts_with("slow:")) {
        s.work = std::chrono::milliseconds(parse_number(v.substr(5), "--mode slow time"));
      } else if (v.starts_with("crash-on-task:")) {
        s.crash_on = parse_number(v.substr(14), "--mode crash-on-task number");
        if (s.crash_on == 0) fail(exit_usage, "crash-on-task counts from 1");
      } else {
        fail(exit_usage, "--mode must be normal, slow:MS or crash-on-task:N");
      }
    } else {
      fail(exit_usage, "unknown flag " + std::string(flag) + " (see --help)");
    }
  }
  if (s.endpoint.empty()) fail(exit_usage, "--endpoint is required");
  if (s.role == "producer" && (s.journal_dir.empty() || s.log_path.empty()))
    fail(exit_usage, "the producer needs --journal and --log");
  if (s.role == "worker" && (s.name.empty() || s.executions.empty() || s.capacity == 0))
    fail(exit_usage, "the worker needs --name, --executions and a positive --capacity");
  const char* plant = std::getenv("FABRIC_FRQ_FORGET_DONE_TASKS");
  if (plant != nullptr && std::string_view(plant) == "1") s.forget_done_tasks = true;
  return s;
}

// A log file: one write() per line, so that a kill leaves no half line behind.
class line_log {
 public:
  explicit line_log(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) fail(exit_log_failed, "cannot open the log " + path + ": " + std::strerror(errno));
  }
  line_log(const line_log&) = delete;
  line_log& operator=(const line_log&) = delete;
  ~line_log() { ::close(fd_); }
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

// The body of task n, and the result a worker gives for a body (the tests compute the same).
std::string task_body(std::uint64_t n) { return "task-" + std::to_string(n); }
std::string task_result(std::string_view body) { return "done:" + std::string(body); }

// ----------------------------------------------------------------------------------- producer

// Whether every task 1..count is completed or dead-lettered, read from the journal.
bool all_finished(fabric::journal& j, std::uint64_t count) {
  std::uint64_t finished = 0;
  std::string after;
  for (;;) {
    auto rows = j.table_entries(completions_table, after, 1000);
    if (!rows) fail(exit_journal_failed, "cannot read the completions: " + rows.error().message());
    finished += rows->size();
    if (rows->size() < 1000) break;
    after = rows->back().first;
  }
  const std::string stream = fabric::task_producer::journal_stream(queue_name);
  for (std::uint64_t from = 1;;) {
    auto dead = j.dead_letters(from, 1000);
    if (!dead) fail(exit_journal_failed, "cannot read the dead letters: " + dead.error().message());
    for (const auto& d : *dead) {
      if (d.stream == stream) ++finished;
    }
    if (dead->size() < 1000) break;
    from = dead->back().id + 1;
  }
  return finished >= count;
}

int run_producer(const settings& s) {
  fabric::frq::faults::set_forget_done_tasks(s.forget_done_tasks);
  const line_log log(s.log_path);
  fabric::context ctx;
  fabric::journal_options jo;
  jo.mode = s.durability;
  jo.sync_interval = 5ms;
  fabric::journal j = [&] {
    try {
      return fabric::journal::open(s.journal_dir, jo);
    } catch (const std::exception& e) {
      fail(exit_journal_failed, std::string("cannot open the journal: ") + e.what());
    }
  }();
  auto last = j.last_seq(fabric::task_producer::journal_stream(queue_name));
  if (!last) fail(exit_journal_failed, "cannot read the queue's stream: " + last.error().message());
  const std::uint64_t resume = last->value_or(0);
  log.line("resume " + std::to_string(resume));

  fabric::task_producer_options o;
  o.endpoint = s.endpoint;
  o.queues = {{.name = std::string(queue_name), .deadline = s.deadline, .max_attempts = s.max_attempts}};
  o.heartbeat = 100ms;
  o.retry_base = 10ms;
  o.retry_max = 100ms;
  o.on_result = [&s](const fabric::task_result& r, fabric::journal_txn& t) {
    const std::string key = std::to_string(r.task_id);
    auto before = t.get(completions_table, key);
    if (!before) throw std::runtime_error("cannot read the completions: " + before.error().message());
    std::string value = before->value_or("");
    value += std::string(r.worker) + " " + std::to_string(r.attempt) + " " + std::string(r.body) + "\n";
    t.put(completions_table, key, value);
    if (s.announce_results)
      say("done " + key + " " + std::string(r.worker) + " " + std::to_string(r.attempt));
  };
  fabric::task_producer p(ctx, j, o);
  say("bound " + p.endpoint());
  say("ready");

  const auto started = clock_type::now();
  for (std::uint64_t id = resume + 1; id <= s.count; ++id) {
    if (s.rate > 0) {  // an open-loop pace: the rate is the subject, not a synchronisation
      const auto due = started + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(static_cast<double>(id - resume - 1) / s.rate));
      std::this_thread::sleep_until(due);
    }
    auto r = p.submit(queue_name, task_body(id));
    if (!r) fail(exit_submit_failed, "submit of task " + std::to_string(id) + ": " + r.error().message());
    if (*r != id) fail(exit_wrong_id, "task " + std::to_string(id) + " got id " + std::to_string(*r));
    log.line("submitted " + std::to_string(id));
  }

  // Nothing announces the end of the run, so the journal is sampled; the producer's own thread
  // is watched too, so that a failure ends the process with its reason.
  const auto give_up = clock_type::now() + s.lifetime;
  bool said_complete = false;
  for (;;) {
    if (auto failed = p.failure()) {
      try {
        std::rethrow_exception(failed);
      } catch (const std::exception& e) {
        fail(exit_failed, std::string("the producer failed: ") + e.what());
      }
    }
    if (!said_complete && s.count > 0 && all_finished(j, s.count)) {
      say("complete");
      said_complete = true;
    }
    if (clock_type::now() > give_up) fail(exit_lifetime, "never killed: gave up after --lifetime");
    std::this_thread::sleep_for(20ms);
  }
}

// ------------------------------------------------------------------------------------- worker

int run_worker(const settings& s) {
  const line_log executions(s.executions);
  std::atomic<std::uint64_t> started{0};
  fabric::context ctx;
  fabric::task_worker_options o;
  o.name = s.name;
  o.endpoint = s.endpoint;
  o.queue = std::string(queue_name);
  o.capacity = s.capacity;
  o.heartbeat = s.heartbeat;
  o.reconnect_interval = 20ms;
  o.reconnect_interval_max = 200ms;
  o.on_task = [&](const fabric::task& t) {
    const std::string what = s.name + " " + std::to_string(t.id) + " " + std::to_string(t.attempt);
    executions.line("start " + what);
    if (s.announce) say("start " + std::to_string(t.id) + " " + std::to_string(t.attempt));
    if (s.crash_on != 0 && ++started == s.crash_on) std::_Exit(exit_crashed);
    // The time a task takes is the subject of the slow mode: a task running when a signal comes.
    if (s.work.count() > 0) std::this_thread::sleep_for(s.work);
    executions.line("finish " + what);
    if (s.announce) say("finish " + std::to_string(t.id) + " " + std::to_string(t.attempt));
    return task_result(t.body);
  };
  fabric::task_worker w(ctx, o);
  say("ready");

  const auto give_up = clock_type::now() + s.lifetime;
  bool welcomed = false;
  std::string reported;
  for (;;) {
    if (auto failed = w.failure()) {
      try {
        std::rethrow_exception(failed);
      } catch (const std::exception& e) {
        fail(exit_failed, std::string("the worker failed: ") + e.what());
      }
    }
    const auto st = w.stats();
    if (!welcomed && st.state == "working") {
      say("working");
      welcomed = true;
    }
    if (s.report_stats) {
      const std::string line = "stats completed " + std::to_string(st.completed) + " stale " +
                               std::to_string(st.stale) + " cancelled " + std::to_string(st.cancelled);
      if (line != reported) say(reported = line);
    }
    if (clock_type::now() > give_up) fail(exit_lifetime, "never killed: gave up after --lifetime");
    std::this_thread::sleep_for(10ms);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  // Dies with the test that started it, even when that test is itself killed.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return exit_lifetime;
  try {
    return s.role == "producer" ? run_producer(s) : run_worker(s);
  } catch (const std::exception& e) {
    fail(1, e.what());
  }
}
