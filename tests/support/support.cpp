// Test helpers; see support.hpp.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <lmdb.h>

#include "journal/record.hpp"

#include <cerrno>
#include <cstdlib>

namespace fabric::testing {

void connect_and_wait(socket& connector, const std::string& endpoint) {
  if (endpoint.rfind("inproc://", 0) == 0) {
    connector.connect(endpoint);  // inproc connects synchronously to a bound peer
    return;
  }
  monitor events(connector);  // before connect, so the handshake event cannot be missed
  connector.connect(endpoint);
  if (!events.wait_for(socket_event::handshake_succeeded, wait_bound))
    ADD_FAILURE() << "no handshake with " << endpoint << " within " << wait_bound.count() << " ms";
}

std::string marry(socket& binder, socket& connector, transport t) {
  const std::string endpoint = binder.bind(loopback_endpoint(t));
  connect_and_wait(connector, endpoint);
  return endpoint;
}

void await_subscription(publisher& pub, subscriber& sub) {
  // Not "\x01...": libzmq 4.3.4 ignores an unsubscribe from a prefix that starts with byte 1
  // (it takes it for a subscribe), so such a probe kept reaching the subscriber afterwards.
  static constexpr std::string_view probe = "\x02" "fabric.test.probe";
  sub.subscribe(probe);
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  // Publish numbered probes until one arrives, then stop and take the rest: a pipe keeps order,
  // so once the last probe published is in, none is left in flight to reach a subscriber that
  // also matches the probe topic (e.g. one subscribed to "").
  long published = 0;
  bool live = false;
  bool drained = false;
  message m;
  while (!drained && std::chrono::steady_clock::now() < deadline) {
    if (!live && pub.publish(probe, std::to_string(published))) ++published;
    if (!sub.recv(m, std::chrono::milliseconds(10))) continue;
    if (m.size() != 2 || m.view(0) != probe) {
      ADD_FAILURE() << "await_subscription swallowed a real message";
      continue;
    }
    live = true;
    drained = m.view(1) == std::to_string(published - 1);
  }
  sub.unsubscribe(probe);
  if (!drained)
    ADD_FAILURE() << "subscription did not reach the publisher within " << wait_bound.count() << " ms";
}

message message_of(const std::vector<std::string>& frames) {
  message m;
  for (const auto& f : frames) m.push_back(std::string_view(f));
  return m;
}

std::vector<std::string> to_strings(const message& m) {
  std::vector<std::string> out;
  out.reserve(m.size());
  for (const frame& f : m) out.emplace_back(view(f));
  return out;
}

void write_behind_journal(const std::filesystem::path& dir, const std::function<void(MDB_txn*)>& fn) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 64);
  if (mdb_env_open(env, dir.c_str(), 0, 0640) != 0) {
    mdb_env_close(env);
    FAIL() << "cannot open the journal at " << dir;
  }
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env, nullptr, 0, &txn) != 0) {
    mdb_env_close(env);
    FAIL() << "cannot begin a transaction on the journal at " << dir;
  }
  fn(txn);
  EXPECT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

void damage_journal_record(const std::filesystem::path& dir, const std::string& stream, std::uint64_t seq,
                           const std::function<void(std::string&)>& mutate) {
  write_behind_journal(dir, [&](MDB_txn* txn) {
    MDB_dbi dbi = 0;
    std::byte key_bytes[8];
    journal_detail::encode_seq_key(seq, key_bytes);
    MDB_val key{8, key_bytes};
    MDB_val value{};
    if (mdb_dbi_open(txn, ("s/" + stream).c_str(), 0, &dbi) != 0 || mdb_get(txn, dbi, &key, &value) != 0) {
      ADD_FAILURE() << "no record " << seq << " in stream '" << stream << "' at " << dir;
      return;
    }
    std::string bytes(static_cast<const char*>(value.mv_data), value.mv_size);
    mutate(bytes);
    MDB_val replaced{bytes.size(), bytes.data()};
    EXPECT_EQ(mdb_put(txn, dbi, &key, &replaced, 0), 0);
  });
}


journal_options fast_journal_options() {
  journal_options o;
  o.mode = durability::none;
  return o;
}

writer_hold::writer_hold(journal& j, std::string_view stream) {
  std::promise<void> entered;
  auto parked = entered.get_future();
  auto released = release_.get_future().share();
  j.append(stream, "writer_hold", [entered = std::make_shared<std::promise<void>>(std::move(entered)),
                                   released](result<std::uint64_t>) mutable {
    entered->set_value();
    released.wait_for(wait_bound);
  });
  if (parked.wait_for(wait_bound) != std::future_status::ready)
    ADD_FAILURE() << "the journal's writer did not reach the held callback";
}

writer_hold::~writer_hold() { release(); }

void writer_hold::release() {
  if (released_) return;
  released_ = true;
  release_.set_value();
}

std::optional<unsigned long long> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return value;
}

std::uint16_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) ADD_FAILURE() << "no free loopback port";
  return ntohs(addr.sin_port);
}

}  // namespace fabric::testing
