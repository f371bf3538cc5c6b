// Daemon scaffolding: log lines and stop signals (src/support/daemon.cpp).
#include <fabric_support/daemon.hpp>

#include <fabric/reactor.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <pthread.h>

namespace {

using fabric::log_level;
using fabric::support::format_log_line;
using fabric::support::parse_log_level;
using fabric::support::stop_signals;
using namespace std::chrono_literals;

TEST(LogLineTest, StartsWithUtcTimeToTheMillisecondAndAPaddedLevel) {
  // 2026-11-21T10:00:00.123Z
  const std::chrono::system_clock::time_point when{std::chrono::milliseconds(1'795'255'200'123)};
  EXPECT_EQ(format_log_line(when, log_level::info, "worker ready"),
            "2026-11-21T10:00:00.123Z info    worker ready");
  EXPECT_EQ(format_log_line(when, log_level::warning, "x"), "2026-11-21T10:00:00.123Z warning x");
  EXPECT_EQ(format_log_line(when, log_level::error, ""), "2026-11-21T10:00:00.123Z error   ");
}

TEST(LogLineTest, TimesBeforeTheEpochKeepAPositiveMillisecond) {
  const std::chrono::system_clock::time_point when{std::chrono::milliseconds(-1)};
  EXPECT_EQ(format_log_line(when, log_level::debug, "t"), "1969-12-31T23:59:59.999Z debug   t");
}

TEST(LogLevelTest, ReadsEveryLevelByNameInAnyCase) {
  for (log_level level : {log_level::debug, log_level::info, log_level::warning, log_level::error,
                          log_level::off})
    EXPECT_EQ(parse_log_level(fabric::support::to_string(level)), level);
  EXPECT_EQ(parse_log_level("WARNING"), log_level::warning);
  EXPECT_EQ(parse_log_level("chatty"), std::nullopt);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
}

// The mask of stop signals on this thread.
bool stop_signals_blocked() {
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, nullptr, &now);
  return sigismember(&now, SIGINT) == 1 && sigismember(&now, SIGTERM) == 1;
}

TEST(StopSignalsTest, TurnsSigtermIntoAnEvent) {
  stop_signals signals;
  EXPECT_EQ(signals.take(), 0);
  ASSERT_EQ(::raise(SIGTERM), 0);  // blocked on this thread, so it waits in the signalfd
  EXPECT_EQ(signals.wait_for(5s), SIGTERM);
  EXPECT_EQ(signals.take(), 0);
}

TEST(StopSignalsTest, TimesOutWhenNoSignalCame) {
  stop_signals signals;
  EXPECT_EQ(signals.wait_for(1ms), 0);
}

TEST(StopSignalsTest, AReactorCanWatchIt) {
  stop_signals signals;
  fabric::reactor r;
  int received = 0;
  r.add_fd(signals.fd(), [&] {
    received = signals.take();
    r.stop();
  });
  ASSERT_EQ(::raise(SIGINT), 0);
  EXPECT_TRUE(r.run());
  EXPECT_EQ(received, SIGINT);
}

TEST(StopSignalsTest, RestoresTheSignalMaskWhenDestroyed) {
  ASSERT_FALSE(stop_signals_blocked());
  {
    stop_signals signals;
    EXPECT_TRUE(stop_signals_blocked());
  }
  EXPECT_FALSE(stop_signals_blocked());
}

TEST(StopSignalsTest, NamesTheStopSignals) {
  EXPECT_EQ(stop_signals::name(SIGINT), "SIGINT");
  EXPECT_EQ(stop_signals::name(SIGTERM), "SIGTERM");
  EXPECT_EQ(stop_signals::name(SIGHUP), "SIGHUP");
  EXPECT_EQ(stop_signals::name(SIGUSR1), "signal " + std::to_string(SIGUSR1));
}

TEST(StopSignalsTest, HangupCallsTheReloadAndKeepsServing) {
  stop_signals signals;
  int reloads = 0;
  int polls = 0;
  ASSERT_EQ(::raise(SIGHUP), 0);
  // running() raises SIGTERM once the reload has been seen, so the loop must survive the SIGHUP
  // and then return the stop signal.
  const int got = fabric::support::serve_until_stopped(
      signals,
      [&] {
        if (reloads == 1 && polls++ == 0) {
          EXPECT_EQ(::raise(SIGTERM), 0);
        }
        return true;
      },
      0ms, [] {}, [&] { ++reloads; });
  EXPECT_EQ(got, SIGTERM);
  EXPECT_EQ(reloads, 1);
}

}  // namespace
