// The verdict on a run of Titanic (9/TSP) under faults: given what the test client posted and
// collected, every execution and every applied effect the service "work" recorded, and what the
// Titanic journal still holds once the client closed everything, it proves that
//   1. every request whose post returned a UUID was executed and its reply, with the right
//      content, reached the client;
//   2. no request's effect was applied twice (re-dispatches after a Titanic restart are counted
//      as a figure: the executions beyond the first);
//   3. every request maps to exactly one UUID, and the server holds no request the client does
//      not know (an orphan: what a retried post that got a second UUID leaves behind);
//   4. nothing the client closed is still on the server, and nothing posted was left uncollected.
//
//   titanic_history h;
//   h.posted(1, "0A1B...");                  // post() of request 1 returned this UUID
//   h.collected(1, "done:1");                // wait() of it returned ready with this reply
//   h.closed(1);                             // close() of it succeeded
//   h.executed("w1", 1);                     // the service recorded an execution of request 1
//   h.applied(1, "w1");                      // ... and its effect, once
//   h.held_by_server("0A1B...");             // a row of tsp.state after the run
//   h.unknown(2);                            // wait() of request 2 said 400: a lost request
//   auto r = check_titanic(h, [](std::uint64_t n) { return "done:" + std::to_string(n); });
//   EXPECT_TRUE(r.ok()) << r.describe();
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fabric::testing {

class titanic_history {
 public:
  /// post() of request `n` returned `uuid` (32 hex digits); call once per successful post.
  void posted(std::uint64_t n, std::string uuid);
  /// A post of request `n` was made and did not return a UUID: it may have been stored, or not.
  void post_failed(std::uint64_t n);
  /// wait() of request `n` returned ready with `reply` (its first frame).
  void collected(std::uint64_t n, std::string reply);
  /// wait() of request `n` returned failed (the server gave it up) with `reason`.
  void given_up(std::uint64_t n, std::string reason);
  /// wait() of request `n` returned unknown (400): the server no longer knows a request it
  /// answered "200" and that was not closed, e.g. after a failover to a node that lacks it.
  void unknown(std::uint64_t n);
  /// close() of request `n` succeeded.
  void closed(std::uint64_t n);
  /// The service recorded an execution of request `n` by `worker` (every one, duplicates too).
  void executed(std::string worker, std::uint64_t n);
  /// The service applied the effect of request `n` (its effects record); once per record.
  void applied(std::uint64_t n, std::string worker);
  /// The Titanic journal still holds `uuid` (32 hex digits, any case) in its state table.
  void held_by_server(std::string uuid);

 private:
  friend struct titanic_report check_titanic(const titanic_history&,
                                             const std::function<std::string(std::uint64_t)>&);
  std::map<std::uint64_t, std::vector<std::string>> uuids_;
  std::set<std::uint64_t> failed_posts_;
  std::map<std::uint64_t, std::vector<std::string>> replies_;
  std::map<std::uint64_t, std::string> given_up_;
  std::set<std::uint64_t> unknown_;
  std::set<std::uint64_t> closed_;
  std::map<std::uint64_t, std::vector<std::string>> executions_;
  std::map<std::uint64_t, std::vector<std::string>> effects_;
  std::set<std::string> held_;
};

struct titanic_report {
  struct finding {
    std::uint64_t n;  ///< the request number, 0 when the finding names no request
    std::string what;
  };
  std::size_t posted = 0;                ///< requests whose post returned a UUID
  std::size_t failed_posts = 0;          ///< posts that returned no UUID (not a failure by itself)
  std::size_t collected = 0;             ///< replies collected
  std::size_t executions = 0;            ///< executions recorded by the service, all of them
  std::size_t duplicate_executions = 0;  ///< executions beyond the first of a request (re-dispatches)
  std::size_t effects = 0;               ///< effects applied
  // Findings: any of these makes the run fail.
  std::size_t lost = 0;                  ///< posted, never collected (stranded), or unknown to the
                                         ///< server when collected (lost)
  std::size_t wrong = 0;                 ///< collected with a reply that is not the request's
  std::size_t given_up = 0;              ///< posted, and given up by the server
  std::size_t unexecuted = 0;            ///< collected, with no effect applied
  std::size_t double_effects = 0;        ///< effects applied beyond the first of a request
  std::size_t phantoms = 0;              ///< executed or collected, never posted nor attempted
  std::size_t many_uuids = 0;            ///< requests that got more than one UUID
  std::size_t shared_uuids = 0;          ///< UUIDs given to more than one request
  std::size_t orphans = 0;               ///< UUIDs the server holds that the client never got
  std::size_t unclosed = 0;              ///< UUIDs the client closed that the server still holds
  std::vector<finding> examples;         ///< the first few findings, for the failure message

  bool ok() const noexcept { return ok_; }
  /// A one-paragraph account: the counts, then the first findings.
  std::string describe() const;

 private:
  friend titanic_report check_titanic(const titanic_history&, const std::function<std::string(std::uint64_t)>&);
  bool ok_ = true;
};

/// Judges `h`; `reply_of(n)` is the reply a correct service gives to request `n`.
titanic_report check_titanic(const titanic_history& h, const std::function<std::string(std::uint64_t)>& reply_of);

/// Reads, read-only, what the service "work" of tests/support/tsp_worker_main.cpp recorded in its
/// journal at `dir` (every execution and every effect) into `h`; nothing when `dir` does not
/// exist. Open it only once every worker is gone.
/// Returns: empty, or what could not be read.
std::string read_service_journal(titanic_history& h, const std::filesystem::path& dir);

/// Reads, read-only, the requests the Titanic journal at `dir` still holds (its state table) into
/// `h`, as held_by_server(). In a pair, read the journal of the node that was active last: it is
/// the one clients were served from. Open it only once its server is gone.
/// `held`, when given, is set to the number of requests it holds.
/// Returns: empty, or what could not be read.
std::string read_titanic_journal(titanic_history& h, const std::filesystem::path& dir, std::size_t* held = nullptr);

}  // namespace fabric::testing
