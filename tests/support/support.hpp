// Test helpers: endpoints on loopback that never collide, and pairing helpers that return only
// once two sockets are really connected, so no test sleeps and hopes.
#pragma once

#include <fabric/fabric.hpp>
#include <fabric/journal.hpp>
#include <fabric_support/endpoint.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <filesystem>
#include <functional>
#include <future>
#include <ostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct MDB_txn;  // lmdb.h's transaction, for write_behind_journal()

namespace fabric::testing {

// The transports and their names come from fabric_support, the helpers every fabric executable
// shares; these names keep the tests' spelling.
using fabric::support::all_transports;
using fabric::support::to_string;
using fabric::support::transport;

/// Names value-parameterized tests after their transport parameter ("inproc", "ipc", "tcp").
struct transport_name {
  template <class ParamInfo>
  std::string operator()(const ParamInfo& info) const {
    return std::string(to_string(info.param));
  }
};

/// The frames of `m` as strings, for comparing whole messages in assertions.
std::vector<std::string> to_strings(const message& m);
/// A message of one frame per string: the inverse of to_strings, for building raw protocol input.
message message_of(const std::vector<std::string>& frames);

/// A fresh endpoint to bind on: inproc://<name>-<pid>-<n>, ipc://<per-process temp dir>/<n>-<name>.sock,
/// or tcp://127.0.0.1:* (resolved by bind). The temp dir is removed when the process exits.
using fabric::support::loopback_endpoint;

/// The default bound on every wait in tests.
inline constexpr std::chrono::milliseconds wait_bound{5000};

/// Waits until `done()` holds, at most `bound`, yielding in between: for state no event announces
/// (counters kept by another thread). Returns false when the bound passed first.
template <class Pred>
bool eventually(Pred&& done, std::chrono::milliseconds bound = wait_bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

/// A loopback TCP port free now, for a process that must bind where another already points (a
/// Binary Star peer, a fault proxy): found with a plain socket, closed at once, since a ZeroMQ
/// socket would hold the port until its context's reaper closes it. Fails the test if none.
std::uint16_t free_tcp_port();

/// Binds `binder` on a fresh endpoint of `t`, connects `connector` to it, and returns once the
/// connection is complete (handshake done for tcp/ipc). Returns the bound endpoint.
/// Fails the current test (ADD_FAILURE) if the connection is not up within wait_bound.
std::string marry(socket& binder, socket& connector, transport t);

/// Connects `connector` to the already bound `endpoint` and waits until the handshake completes.
void connect_and_wait(socket& connector, const std::string& endpoint);

/// Waits until `sub` receives what `pub` publishes (the subscription has reached the publisher),
/// by publishing probes on a private topic. Leaves `sub` with its own subscriptions only and no
/// probe queued. Fails the current test if it takes longer than wait_bound.
void await_subscription(publisher& pub, subscriber& sub);

/// Runs `fn` in one write transaction on the (closed) journal at `dir` through LMDB directly,
/// behind the journal's back, and commits it: how tests plant damage or stale accounts. Fails
/// the current test if the journal cannot be opened or the transaction cannot commit.
void write_behind_journal(const std::filesystem::path& dir, const std::function<void(MDB_txn*)>& fn);

/// Overwrites the stored value of record `seq` of journal stream `stream` in the (closed)
/// journal at `dir` through LMDB directly, the way disk damage would: `mutate` gets the stored
/// bytes and changes them. Fails the current test if the record cannot be found or rewritten.
void damage_journal_record(const std::filesystem::path& dir, const std::string& stream, std::uint64_t seq,
                           const std::function<void(std::string&)>& mutate);

/// Journal options for tests of logic: durability none (no fsync); durability has its own tests.
journal_options fast_journal_options();

/// Parks a journal's writer thread inside an append's completion callback until release() (or
/// destruction), so a test can fill the journal's queue deterministically. The constructor
/// returns once the writer is parked; it fails the current test if that takes over wait_bound.
class writer_hold {
 public:
  writer_hold(journal& j, std::string_view stream);
  ~writer_hold();
  writer_hold(const writer_hold&) = delete;
  writer_hold& operator=(const writer_hold&) = delete;
  void release();

 private:
  std::promise<void> release_;
  bool released_ = false;
};

/// A temporary directory removed (recursively) on destruction.
using fabric::support::temp_dir;

/// Runs `fn`, expecting it to throw fabric::error with `code`; any other outcome fails the test.
template <class Fn>
void expect_error(errc code, Fn&& fn) {
  try {
    fn();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return;
  }
  ADD_FAILURE() << "no fabric::error thrown";
}

/// The environment variable `name` read as a decimal number; nullopt when it is unset, empty or
/// not entirely digits (or out of range). For the knobs of the long tiers (FABRIC_CHAOS_*).
std::optional<unsigned long long> env_number(const char* name);

}  // namespace fabric::testing
