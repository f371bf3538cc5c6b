// A Titanic service host in a process of its own, for the Titanic chaos tests that plant a bug
// in the server (tests/chaos/titanic_chaos_test.cpp). fabric-titanic is the real daemon; this
// host links the testing library to reach the fault injection points of
// src/reliability/tsp_faults.hpp, and otherwise runs fabric::titanic::service the same way.
//
// On stdout: "serving" once its journal is open and the service runs. The process dies with its
// parent and gives up after --lifetime seconds, so none outlives a test.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/titanic.hpp>

#include "reliability/tsp_faults.hpp"

#include <signal.h>
#include <sys/prctl.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace {

using clock_type = std::chrono::steady_clock;

constexpr const char* usage =
    "usage: fabric-test-tsp-titanic --broker EP --journal DIR [--heartbeat-ms MS]\n"
    "                               [--dispatch-timeout-ms MS] [--max-attempts N] [--max-in-flight N]\n"
    "                               [--ignore-keys] [--drop-stored-answers N] [--lifetime S]\n"
    "Environment: FABRIC_TSP_IGNORE_KEYS=1 is --ignore-keys; FABRIC_TSP_DROP_STORED_ANSWERS=N is\n"
    "--drop-stored-answers N (src/reliability/tsp_faults.hpp).\n"
    "A Titanic service host for fabric's chaos tests (see the source's header).\n";

constexpr int exit_usage = 64;

[[noreturn]] void fail(int code, const std::string& what) {
  std::fprintf(stderr, "fabric-test-tsp-titanic: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

std::uint64_t number(std::string_view text, std::string_view what) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    fail(exit_usage, "bad " + std::string(what) + ": " + std::string(text));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  fabric::titanic::service_options o;
  o.heartbeat = std::chrono::milliseconds(100);
  o.dispatch_timeout = std::chrono::milliseconds(1000);
  o.max_attempts = 1000;
  o.retry_base = std::chrono::milliseconds(100);
  o.retry_max = std::chrono::milliseconds(1000);
  std::string dir;
  bool ignore_keys = false;
  std::uint64_t drop_answers = 0;
  std::chrono::seconds lifetime{600};
  if (const char* v = std::getenv("FABRIC_TSP_IGNORE_KEYS"); v != nullptr && std::string_view(v) == "1")
    ignore_keys = true;
  if (const char* v = std::getenv("FABRIC_TSP_DROP_STORED_ANSWERS"); v != nullptr && *v != '\0')
    drop_answers = number(v, "FABRIC_TSP_DROP_STORED_ANSWERS");
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (flag == "--ignore-keys") {
      ignore_keys = true;
      continue;
    }
    if (i + 1 >= argc) fail(exit_usage, std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--broker") o.broker = value;
    else if (flag == "--journal") dir = value;
    else if (flag == "--heartbeat-ms") o.heartbeat = std::chrono::milliseconds(number(value, flag));
    else if (flag == "--dispatch-timeout-ms") o.dispatch_timeout = std::chrono::milliseconds(number(value, flag));
    else if (flag == "--max-attempts") o.max_attempts = static_cast<std::uint32_t>(number(value, flag));
    else if (flag == "--max-in-flight") o.max_in_flight = number(value, flag);
    else if (flag == "--drop-stored-answers") drop_answers = number(value, flag);
    else if (flag == "--lifetime") lifetime = std::chrono::seconds(number(value, flag));
    else fail(exit_usage, "unknown flag " + std::string(flag) + "\n" + usage);
  }
  if (o.broker.empty() || dir.empty()) fail(exit_usage, usage);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  fabric::tsp::faults::set_ignore_keys(ignore_keys);
  fabric::tsp::faults::set_drop_stored_answers(drop_answers);
  try {
    std::filesystem::create_directories(dir);
    fabric::journal j = fabric::journal::open(dir);
    fabric::context ctx;
    fabric::titanic::service t(ctx, j, o);
    std::printf("serving\n");
    std::fflush(stdout);
    const auto give_up = clock_type::now() + lifetime;
    // Runs until killed; the bounded wait only notices a service that ended by itself.
    while (t.running()) {
      if (clock_type::now() > give_up) fail(15, "never killed: gave up after --lifetime");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    fail(1, "the service ended by itself");
  } catch (const std::exception& e) {
    fail(1, e.what());
  }
}
