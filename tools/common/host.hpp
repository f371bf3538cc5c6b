// A daemon's service thread: one fabric::reactor, on an actor thread of its own, that hosts
// several services attached to it (a broker and its Binary Star node), so that they share a
// thread as the node's admit() asks. The daemon's main thread waits for signals; it reaches the
// services through call(), which runs a function on the reactor's thread.
#pragma once

#include <fabric/actor.hpp>
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/reactor.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

namespace fabric::tools {

class reactor_host {
 public:
  using hook = std::function<void(reactor&)>;

  /// Starts the thread: `attach(r)` runs on it first, `detach(r)` last, after a stop.
  /// Throws: what `attach` threw.
  reactor_host(context& ctx, hook attach, hook detach)
      : attach_(std::move(attach)), detach_(std::move(detach)),
        actor_(std::make_unique<actor>(ctx, [this](pair_socket& pipe) { body(pipe); })) {}
  ~reactor_host() { stop(); }
  reactor_host(const reactor_host&) = delete;
  reactor_host& operator=(const reactor_host&) = delete;

  /// Runs `fn` on the reactor's thread and waits for it, at most `timeout`.
  /// Throws: fabric::error(timeout) when it did not run in time; what `fn` threw.
  void call(std::function<void()> fn, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    pending_ = std::move(fn);
    failure_in_call_ = nullptr;
    if (!actor_->pipe().send(message(call_command), timeout))
      throw error(errc::timeout, "the service thread did not take the call");
    auto answer = actor_->pipe().recv(timeout);
    if (!answer) throw error(errc::timeout, "the service thread did not answer");
    if (failure_in_call_) std::rethrow_exception(failure_in_call_);
  }

  /// True until the thread has ended (by stop() or a failure).
  bool running() const noexcept { return actor_->running(); }
  std::exception_ptr failure() const noexcept { return actor_->failure(); }
  /// Stops the reactor and joins the thread (at most `timeout`). Idempotent.
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept { return actor_->stop(timeout); }

 private:
  static constexpr std::string_view call_command = "CALL";

  void body(pair_socket& pipe) {
    reactor r;
    attach_(r);
    r.add(pipe, [&] {
      message m;
      while (pipe.try_recv(m)) {
        if (m.size() == 1 && m.view(0) == actor::term_command) {
          r.stop();
          return;
        }
        try {
          if (pending_) pending_();
        } catch (...) {
          failure_in_call_ = std::current_exception();
        }
        pending_ = nullptr;
        (void)pipe.send(message(std::string_view("DONE")));
      }
    });
    actor::signal_ready(pipe);
    const auto ended = r.run();
    r.remove(pipe);
    detach_(r);
    if (!ended) throw error(ended.error(), "service thread");
  }

  hook attach_;
  hook detach_;
  // Handed between the threads over the pipe, whose messages order the accesses.
  std::function<void()> pending_;
  std::exception_ptr failure_in_call_;
  std::unique_ptr<actor> actor_;  // last: its thread uses everything above
};

}  // namespace fabric::tools
