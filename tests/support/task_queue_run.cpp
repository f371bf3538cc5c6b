// task_queue_run: see task_queue_run.hpp.
#include "support/task_queue_run.hpp"

#include <fabric/journal.hpp>
#include <fabric/task_queue.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>

namespace fabric::testing {

namespace {

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

task_queue_run::task_queue_run(std::string program)
    : program_(std::move(program)), dir_("fabric-frq-"), endpoint_("ipc://" + (dir_.path() / "q.sock").string()) {}

task_queue_run::~task_queue_run() { kill_all(); }

void task_queue_run::kill_all() {
  producer_.reset();  // the destructor kills and reaps
  workers_.clear();
}

void task_queue_run::start_producer(std::uint64_t count, const std::vector<std::string>& extra) {
  std::vector<std::string> words = {program_, "producer", "--journal", (dir_.path() / "producer").string(),
                                    "--endpoint", endpoint_, "--log", (dir_.path() / "producer.log").string(),
                                    "--count", std::to_string(count), "--lifetime", "300"};
  words.insert(words.end(), extra.begin(), extra.end());
  producer_.emplace(words);
  ASSERT_TRUE(producer_->read_until("ready\n", start_bound)) << "the producer did not start: " << producer_->err;
  ++producer_starts_;
}

void task_queue_run::start_worker(const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> words = {program_, "worker", "--endpoint", endpoint_, "--name", name,
                                    "--executions", (dir_.path() / ("exec-" + name + ".log")).string(),
                                    "--lifetime", "300"};
  words.insert(words.end(), extra.begin(), extra.end());
  auto& slot = workers_[name];
  slot.emplace(words);
  ASSERT_TRUE(slot->read_until("ready\n", start_bound)) << "worker " << name << " did not start: " << slot->err;
}

void task_queue_run::wait_working(const std::string& name) {
  auto& w = workers_.at(name);
  ASSERT_TRUE(w->read_until("working\n", start_bound)) << "worker " << name << " was never welcomed: " << w->err;
}

void task_queue_run::kill(std::optional<child_process>& p, const std::string& who) {
  ASSERT_TRUE(p) << who << " is not running";
  p->signal(SIGKILL);
  const int status = p->finish(std::chrono::seconds(5));
  ASSERT_EQ(status, 128 + SIGKILL) << "the " << who << " ended otherwise than by the kill: " << p->err;
  p.reset();
}

void task_queue_run::kill_producer() { ASSERT_NO_FATAL_FAILURE(kill(producer_, "producer")); }

void task_queue_run::kill_worker(const std::string& name) {
  ASSERT_TRUE(workers_.contains(name)) << "no worker " << name;
  ASSERT_NO_FATAL_FAILURE(kill(workers_.at(name), "worker " + name));
  workers_.erase(name);
}

void task_queue_run::expect_worker_exit(const std::string& name, int code, std::chrono::milliseconds bound) {
  ASSERT_TRUE(workers_.contains(name)) << "no worker " << name;
  auto& w = workers_.at(name);
  const int status = w->finish(bound);
  ASSERT_EQ(status, code) << "worker " << name << " did not end as expected: " << w->err;
  workers_.erase(name);
}

std::string task_queue_run::result_of(std::uint64_t id) { return "done:task-" + std::to_string(id); }

void task_queue_run::gather(std::uint64_t count, task_queue_history& h) {
  ASSERT_FALSE(producer_) << "gather() reads the journal of a producer that is gone";
  ASSERT_TRUE(workers_.empty()) << "gather() reads the files of workers that are gone";
  // What the producer acknowledged: "submitted <id>", and 1..last for every "resume <last>".
  std::set<std::uint64_t> acked;
  for (const auto& line : lines_of(dir_.path() / "producer.log")) {
    const auto w = words_of(line);
    const auto n = w.size() == 2 ? number(w[1]) : std::nullopt;
    ASSERT_TRUE(n && (w[0] == "submitted" || w[0] == "resume")) << "a bad producer log line: " << line;
    if (w[0] == "submitted") acked.insert(*n);
    else
      for (std::uint64_t id = 1; id <= *n; ++id) acked.insert(id);
  }
  for (std::uint64_t id = 1; id <= count; ++id) {
    if (acked.contains(id)) h.submitted(id);
    else h.attempted(id);
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with("exec-")) continue;
    for (const auto& line : lines_of(entry.path())) {
      const auto w = words_of(line);
      const auto id = w.size() == 4 ? number(w[2]) : std::nullopt;
      const auto attempt = w.size() == 4 ? number(w[3]) : std::nullopt;
      ASSERT_TRUE(id && attempt && (w[0] == "start" || w[0] == "finish")) << "a bad executions line: " << line;
      if (w[0] != "start") continue;
      h.executed(w[1], *id, static_cast<std::uint32_t>(*attempt));
      executions_[*id].emplace_back(w[1], static_cast<std::uint32_t>(*attempt));
    }
  }
  fabric::journal_options o;
  o.read_only = true;
  fabric::journal j = fabric::journal::open(dir_.path() / "producer", o);
  std::string after;
  for (;;) {
    auto rows = j.table_entries("completions", after, 1000);
    ASSERT_TRUE(rows) << rows.error().message();
    for (const auto& [key, value] : *rows) {
      const auto id = number(key);
      ASSERT_TRUE(id) << "a bad completions key: " << key;
      std::istringstream lines(value);
      for (std::string line; std::getline(lines, line);) {
        const auto first = line.find(' ');
        const auto second = first == std::string::npos ? first : line.find(' ', first + 1);
        const auto attempt = second == std::string::npos
                                 ? std::nullopt
                                 : number(std::string_view(line).substr(first + 1, second - first - 1));
        ASSERT_TRUE(attempt) << "a bad completion of task " << key << ": " << line;
        const std::string worker = line.substr(0, first);
        h.completed(*id, worker, static_cast<std::uint32_t>(*attempt), line.substr(second + 1));
        completions_[*id].emplace_back(worker, static_cast<std::uint32_t>(*attempt));
      }
    }
    if (rows->size() < 1000) break;
    after = rows->back().first;
  }
  const std::string stream = fabric::task_producer::journal_stream("jobs");
  for (std::uint64_t from = 1;;) {
    auto dead = j.dead_letters(from, 1000);
    ASSERT_TRUE(dead) << dead.error().message();
    for (const auto& d : *dead) {
      if (d.stream == stream) h.dead_lettered(d.seq, d.reason);
    }
    if (dead->size() < 1000) break;
    from = dead->back().id + 1;
  }
}

std::vector<std::pair<std::string, std::uint32_t>> task_queue_run::completions_of(std::uint64_t id) const {
  const auto it = completions_.find(id);
  return it == completions_.end() ? std::vector<std::pair<std::string, std::uint32_t>>{} : it->second;
}

std::vector<std::pair<std::string, std::uint32_t>> task_queue_run::executions_of(std::uint64_t id) const {
  const auto it = executions_.find(id);
  return it == executions_.end() ? std::vector<std::pair<std::string, std::uint32_t>>{} : it->second;
}

std::map<std::string, std::size_t> task_queue_run::executions_per_worker() const {
  std::map<std::string, std::size_t> out;
  for (const auto& [id, list] : executions_)
    for (const auto& [worker, attempt] : list) ++out[worker];
  return out;
}

}  // namespace fabric::testing
