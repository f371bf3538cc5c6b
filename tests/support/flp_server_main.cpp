// A Freelance (10/FLP) server in a process of its own, for the chaos tests that kill it -9, stop
// it and restart it (tests/chaos/freelance_chaos_test.cpp).
//
// Each request's first body frame is the client's request number n in decimal; the reply is one
// frame "<n>:<name>", so the test can tell which request an answer belongs to and who gave it.
//
// On stdout: "listening on <endpoint>" once it serves (a wildcard port resolved). The process
// dies with its parent and exits after --lifetime seconds, so none outlives a test.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/freelance.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace {

constexpr const char* usage =
    "usage: fabric-test-flp-server --endpoint EP --name NAME [--lifetime S]\n"
    "A Freelance server answering each request n with \"n:NAME\", for fabric's chaos tests.\n";

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fabric-test-flp-server: %s\n%s", what.c_str(), usage);
  std::exit(64);
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint;
  std::string name;
  unsigned lifetime = 300;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (i + 1 >= argc) fail(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--endpoint") {
      endpoint = value;
    } else if (flag == "--name") {
      name = value;
    } else if (flag == "--lifetime") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), lifetime);
      if (ec != std::errc() || end != value.data() + value.size() || lifetime == 0) fail("--lifetime takes seconds");
    } else {
      fail("unknown option " + std::string(flag));
    }
  }
  if (endpoint.empty() || name.empty()) fail("--endpoint and --name are required");
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::alarm(lifetime);  // SIGALRM ends a server a test forgot
  try {
    fabric::context ctx;
    fabric::freelance::server server(ctx, {.endpoint = endpoint}, [&name](fabric::message&& m) {
      return fabric::message(std::string(m.view(0)) + ":" + name);
    });
    std::printf("listening on %s\n", server.endpoint().c_str());
    std::fflush(stdout);
    auto r = server.run();
    if (!r) fail("the server stopped: " + r.error().message());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fabric-test-flp-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
