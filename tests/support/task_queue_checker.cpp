// task_queue_history and check_task_queue: see task_queue_checker.hpp.
#include "support/task_queue_checker.hpp"

#include <sstream>

namespace fabric::testing {

namespace {
constexpr std::size_t max_examples = 10;
}

void task_queue_history::submitted(std::uint64_t id) { submitted_.insert(id); }
void task_queue_history::attempted(std::uint64_t id) { attempted_.insert(id); }

void task_queue_history::executed(std::string worker, std::uint64_t id, std::uint32_t attempt) {
  executed_.emplace(std::move(worker), id, attempt);
}

void task_queue_history::completed(std::uint64_t id, std::string worker, std::uint32_t attempt, std::string result) {
  completed_[id].push_back({std::move(worker), attempt, std::move(result)});
}

void task_queue_history::dead_lettered(std::uint64_t id, std::string reason) { dead_[id].push_back(std::move(reason)); }

task_queue_report check_task_queue(const task_queue_history& h,
                                   const std::function<std::string(std::uint64_t)>& result_of) {
  task_queue_report r;
  auto note = [&r](std::uint64_t id, std::string what) {
    if (r.examples.size() < max_examples) r.examples.push_back({id, std::move(what)});
  };
  const auto known = [&h](std::uint64_t id) { return h.submitted_.contains(id) || h.attempted_.contains(id); };
  r.submitted = h.submitted_.size();

  for (const auto& [id, list] : h.completed_) {
    ++r.completed;
    if (!known(id)) {
      ++r.phantoms;
      note(id, "completed but never submitted");
    }
    if (list.size() > 1) {
      r.duplicated += list.size() - 1;
      note(id, "completed " + std::to_string(list.size()) + " times, by " + list[0].worker + " (attempt " +
                   std::to_string(list[0].attempt) + ") and " + list[1].worker + " (attempt " +
                   std::to_string(list[1].attempt) + ")");
    }
    for (const auto& c : list) {
      if (!h.executed_.contains({c.worker, id, c.attempt})) {
        ++r.unexecuted;
        note(id, "completed by " + c.worker + " in attempt " + std::to_string(c.attempt) + ", which it never started");
      }
      if (c.result != result_of(id)) {
        ++r.wrong;
        note(id, "completed with the result \"" + c.result + "\"");
      }
    }
    if (h.dead_.contains(id)) {
      ++r.both;
      note(id, "completed and dead-lettered");
    }
  }
  for (const auto& [id, reasons] : h.dead_) {
    ++r.dead_lettered;
    if (!known(id)) {
      ++r.phantoms;
      note(id, "dead-lettered but never submitted");
    }
    for (const auto& reason : reasons) {
      if (reason.empty()) {
        ++r.unexplained;
        note(id, "dead-lettered without a reason");
      }
    }
  }
  for (const std::uint64_t id : h.submitted_) {
    if (!h.completed_.contains(id) && !h.dead_.contains(id)) {
      ++r.lost;
      note(id, "submitted (acknowledged) but neither completed nor dead-lettered");
    }
  }
  r.ok_ = r.lost == 0 && r.duplicated == 0 && r.phantoms == 0 && r.both == 0 && r.unexplained == 0 &&
          r.unexecuted == 0 && r.wrong == 0;
  return r;
}

std::string task_queue_report::describe() const {
  std::ostringstream out;
  out << submitted << " tasks submitted, " << completed << " completed, " << dead_lettered << " dead-lettered: "
      << lost << " lost, " << duplicated << " completed again, " << phantoms << " never submitted, " << both
      << " both completed and dead, " << unexplained << " dead without a reason, " << unexecuted
      << " completions never executed, " << wrong << " wrong results.";
  for (const auto& f : examples) out << "\n  task " << f.id << ": " << f.what;
  return out.str();
}

}  // namespace fabric::testing
