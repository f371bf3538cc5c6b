// Links against an installed fabric and sends one message through it.
#include <fabric/fabric.hpp>

#include <chrono>
#include <cstdio>

int main() {
  using namespace std::chrono_literals;
  fabric::context ctx;
  fabric::puller in(ctx);
  in.bind("inproc://consumer");
  fabric::pusher out(ctx);
  out.connect("inproc://consumer");
  if (!out.send(fabric::message("installed"), 1s)) return 1;
  auto m = in.recv(1s);
  if (!m || m->view(0) != "installed") return 1;
  std::printf("fabric %s works from its installed package\n", fabric::version_string);
  return 0;
}
