// Two network namespaces joined by a veth pair, standing in for two hosts in tests: each gets an
// address from 198.18.0.0/15 (the range RFC 2544 sets aside for benchmarking, so it never clashes
// with a real network) and its own loopback. Created with iproute2 as root, and deleted by the
// destructor; namespaces left by a test process that was killed are swept by the next one.
//
//   if (auto why = netns_pair::unavailable()) GTEST_SKIP() << *why;
//   netns_pair hosts;
//   auto a = hosts.in_a([] { side s; s.ctx = ...; s.client = ...; return s; });
//
// libzmq starts a context's I/O threads with its first socket, and every connection a socket makes
// is made by those threads: create a context and its first socket inside the namespace, and every
// connection of that context stays there. The sockets may then be used from any thread.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace fabric::testing {

class netns_pair {
 public:
  /// Why namespaces cannot be made here (not root, no iproute2, no kernel support), or nullopt.
  static std::optional<std::string> unavailable();

  /// Creates the two namespaces and the veth pair between them, both ends up with their
  /// addresses, and loopback up in each. Throws std::runtime_error with iproute2's message.
  netns_pair();
  /// Deletes both namespaces (and so the veth pair).
  ~netns_pair();
  netns_pair(const netns_pair&) = delete;
  netns_pair& operator=(const netns_pair&) = delete;

  const std::string& name_a() const noexcept { return a_; }
  const std::string& name_b() const noexcept { return b_; }
  /// The veth addresses, e.g. "198.18.3.1" and "198.18.3.2".
  const std::string& address_a() const noexcept { return addr_a_; }
  const std::string& address_b() const noexcept { return addr_b_; }

  /// Runs `fn` on a new thread that has entered namespace a (or b), waits for it, and returns
  /// what it returned (or rethrows what it threw).
  template <class F>
  auto in_a(F&& fn) {
    return in(a_, std::forward<F>(fn));
  }
  template <class F>
  auto in_b(F&& fn) {
    return in(b_, std::forward<F>(fn));
  }

 private:
  static void enter(const std::string& name);  // setns() for the calling thread

  template <class F>
  static auto in(const std::string& name, F&& fn) {
    using R = std::invoke_result_t<F&>;
    std::exception_ptr failure;
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> out;
    std::thread t([&] {
      try {
        enter(name);
        if constexpr (std::is_void_v<R>) {
          fn();
          out.emplace(true);
        } else {
          out.emplace(fn());
        }
      } catch (...) {
        failure = std::current_exception();
      }
    });
    t.join();
    if (failure) std::rethrow_exception(failure);
    if constexpr (!std::is_void_v<R>) return std::move(*out);
  }

  std::string a_;
  std::string b_;
  std::string addr_a_;
  std::string addr_b_;
};

}  // namespace fabric::testing
