// check_titanic: see titanic_checker.hpp.
#include "support/titanic_checker.hpp"

#include <fabric/journal.hpp>
#include <fabric/titanic.hpp>
#include <fabric/titanic_client.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <exception>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

namespace fabric::testing {

namespace {

constexpr std::size_t max_examples = 12;

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

void titanic_history::posted(std::uint64_t n, std::string uuid) { uuids_[n].push_back(upper(std::move(uuid))); }
void titanic_history::post_failed(std::uint64_t n) { failed_posts_.insert(n); }
void titanic_history::collected(std::uint64_t n, std::string reply) { replies_[n].push_back(std::move(reply)); }
void titanic_history::given_up(std::uint64_t n, std::string reason) { given_up_[n] = std::move(reason); }
void titanic_history::unknown(std::uint64_t n) { unknown_.insert(n); }
void titanic_history::closed(std::uint64_t n) { closed_.insert(n); }
void titanic_history::executed(std::string worker, std::uint64_t n) { executions_[n].push_back(std::move(worker)); }
void titanic_history::applied(std::uint64_t n, std::string worker) { effects_[n].push_back(std::move(worker)); }
void titanic_history::held_by_server(std::string uuid) { held_.insert(upper(std::move(uuid))); }

titanic_report check_titanic(const titanic_history& h, const std::function<std::string(std::uint64_t)>& reply_of) {
  titanic_report r;
  const auto find = [&r](std::size_t& counter, std::uint64_t n, std::string what) {
    ++counter;
    r.ok_ = false;
    if (r.examples.size() < max_examples) r.examples.push_back({n, std::move(what)});
  };
  const auto known = [&h](std::uint64_t n) { return h.uuids_.contains(n) || h.failed_posts_.contains(n); };

  // 3. One UUID per request, one request per UUID.
  std::map<std::string, std::uint64_t> owner;
  for (const auto& [n, ids] : h.uuids_) {
    ++r.posted;
    if (ids.size() > 1) find(r.many_uuids, n, std::to_string(ids.size()) + " UUIDs: " + ids[0] + ", " + ids[1]);
    for (const auto& id : ids) {
      const auto [it, fresh] = owner.emplace(id, n);
      if (!fresh && it->second != n)
        find(r.shared_uuids, n, "UUID " + id + " was given to request " + std::to_string(it->second) + " too");
    }
  }
  r.failed_posts = h.failed_posts_.size();

  // 1. Every posted request collected with its reply, and executed.
  for (const auto& [n, ids] : h.uuids_) {
    const auto up = h.given_up_.find(n);
    if (up != h.given_up_.end()) {
      find(r.given_up, n, "given up by the server: " + up->second);
      continue;
    }
    if (h.unknown_.contains(n)) {
      find(r.lost, n, "posted as " + ids.front() + ", answered 200, and later unknown to the server (400)");
      continue;
    }
    const auto got = h.replies_.find(n);
    if (got == h.replies_.end()) {
      find(r.lost, n, "posted as " + ids.front() + " and never collected");
      continue;
    }
    for (const auto& reply : got->second) {
      if (reply != reply_of(n)) find(r.wrong, n, "collected \"" + reply + "\", not \"" + reply_of(n) + "\"");
    }
    if (!h.effects_.contains(n)) find(r.unexecuted, n, "collected, and no effect was ever applied");
  }
  for (const auto& [n, replies] : h.replies_) {
    r.collected += replies.size();
    if (!known(n)) find(r.phantoms, n, "collected, never posted");
  }

  // 2. Effects once; executions counted.
  for (const auto& [n, workers] : h.executions_) {
    r.executions += workers.size();
    r.duplicate_executions += workers.size() - 1;
    if (!known(n)) find(r.phantoms, n, "executed by " + workers.front() + ", never posted");
  }
  for (const auto& [n, workers] : h.effects_) {
    r.effects += workers.size();
    if (workers.size() > 1) {
      std::string who;
      for (const auto& w : workers) who += (who.empty() ? "" : ", ") + w;
      for (std::size_t i = 1; i < workers.size(); ++i)
        find(r.double_effects, n, "effect applied " + std::to_string(workers.size()) + " times (" + who + ")");
    }
    if (!known(n)) find(r.phantoms, n, "effect applied, never posted");
  }

  // 3 and 4. What the server still holds: orphans, and requests closed that were not removed.
  for (const auto& id : h.held_) {
    const auto it = owner.find(id);
    if (it == owner.end()) {
      find(r.orphans, 0, "the server holds " + id + ", a request the client never got a UUID for");
    } else if (h.closed_.contains(it->second)) {
      find(r.unclosed, it->second, "closed, and the server still holds " + id);
    }
  }
  return r;
}

std::string titanic_report::describe() const {
  std::ostringstream out;
  out << posted << " posted (" << failed_posts << " posts failed), " << collected << " collected, " << executions
      << " executions (" << duplicate_executions << " duplicate), " << effects << " effects; findings: " << lost
      << " lost, " << wrong << " wrong, " << given_up << " given up, " << unexecuted << " unexecuted, "
      << double_effects << " effects applied twice, " << phantoms << " phantoms, " << many_uuids
      << " requests with several UUIDs, " << shared_uuids << " shared UUIDs, " << orphans << " orphans, " << unclosed
      << " unclosed";
  for (const auto& f : examples) {
    out << "\n  ";
    if (f.n != 0) out << "request " << f.n << ": ";
    out << f.what;
  }
  return out.str();
}

std::string read_service_journal(titanic_history& h, const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir)) return {};
  try {
    fabric::journal_options o;
    o.read_only = true;
    fabric::journal work = fabric::journal::open(dir, o);
    std::string bad;
    for (const std::string_view stream : {"executions", "effects"}) {
      // "<worker> <n>" in executions, "<n> <worker>" in effects.
      auto read = work.replay(stream, 1, [&](const fabric::journal_record& r) {
        const std::string_view text = r.payload;
        const auto space = text.find(' ');
        if (space == std::string_view::npos) {
          bad = "a bad " + std::string(stream) + " record: " + r.payload;
          return false;
        }
        const auto n = number(stream == "executions" ? text.substr(space + 1) : text.substr(0, space));
        if (!n) {
          bad = "a bad " + std::string(stream) + " record: " + r.payload;
          return false;
        }
        if (stream == "executions") h.executed(std::string(text.substr(0, space)), *n);
        else h.applied(*n, std::string(text.substr(space + 1)));
        return true;
      });
      if (!bad.empty()) return bad;
      if (!read) return "the service's journal could not be read: " + read.error().message();
    }
    return {};
  } catch (const std::exception& e) {
    return std::string("the service's journal could not be opened: ") + e.what();
  }
}

std::string read_titanic_journal(titanic_history& h, const std::filesystem::path& dir, std::size_t* held) {
  try {
    fabric::journal_options o;
    o.read_only = true;
    fabric::journal t = fabric::journal::open(dir, o);
    std::string after;
    std::size_t count = 0;
    for (;;) {
      auto rows = t.table_entries(fabric::titanic::service::state_table, after, 1000);
      if (!rows) return "the Titanic journal could not be read: " + rows.error().message();
      for (const auto& [key, value] : *rows) {
        if (key.size() != 16) return "a bad tsp.state key in " + dir.string();
        fabric::titanic::request_id id;
        std::memcpy(id.bytes.data(), key.data(), key.size());
        h.held_by_server(fabric::titanic::to_string(id));
        ++count;
      }
      if (rows->size() < 1000) break;
      after = rows->back().first;
    }
    if (held != nullptr) *held = count;
    return {};
  } catch (const std::exception& e) {
    return "the Titanic journal " + dir.string() + " could not be opened: " + e.what();
  }
}

}  // namespace fabric::testing
