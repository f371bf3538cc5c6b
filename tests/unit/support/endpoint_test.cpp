// Transports, temporary directories and loopback endpoints (src/support/endpoint.cpp).
#include <fabric_support/endpoint.hpp>

#include <fabric/context.hpp>
#include <fabric/push_pull.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace {

using fabric::support::loopback_endpoint;
using fabric::support::parse_transport;
using fabric::support::temp_dir;
using fabric::support::transport;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(TransportTest, ReadsBackEveryName) {
  for (transport t : fabric::support::all_transports) EXPECT_EQ(parse_transport(to_string(t)), t);
  EXPECT_EQ(parse_transport("udp"), std::nullopt);
  EXPECT_EQ(parse_transport("TCP"), std::nullopt);
  std::ostringstream out;
  out << transport::ipc;
  EXPECT_EQ(out.str(), "ipc");
}

TEST(TempDirTest, RemovesItselfWithEverythingInIt) {
  fs::path where;
  {
    temp_dir dir("fabric-support-test-");
    where = dir.path();
    EXPECT_TRUE(fs::is_directory(where));
    EXPECT_EQ(where.filename().string().rfind("fabric-support-test-", 0), 0U);
    const fs::path sub = dir.sub("inner");
    std::ofstream(sub / "file") << "x";
    EXPECT_TRUE(fs::exists(sub / "file"));
  }
  EXPECT_FALSE(fs::exists(where));
}

TEST(TempDirTest, SubStartsEmpty) {
  temp_dir dir;
  std::ofstream(dir.sub("s") / "old") << "x";
  EXPECT_TRUE(fs::is_empty(dir.sub("s")));
}

TEST(TempDirTest, MadeUnderTheBaseGiven) {
  temp_dir outer;
  temp_dir inner("x-", outer.path());
  EXPECT_EQ(inner.path().parent_path(), outer.path());
}

TEST(TempDirTest, ThrowsWhenTheBaseDoesNotExist) {
  temp_dir outer;
  EXPECT_THROW(temp_dir("x-", outer.path() / "missing"), std::system_error);
}

TEST(LoopbackEndpointTest, NeverRepeatsAnInprocOrIpcEndpoint) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(seen.insert(loopback_endpoint(transport::inproc, "a")).second);
    EXPECT_TRUE(seen.insert(loopback_endpoint(transport::ipc, "a")).second);
  }
  EXPECT_EQ(loopback_endpoint(transport::tcp), "tcp://127.0.0.1:*");
}

class LoopbackEndpointTransportTest : public ::testing::TestWithParam<transport> {};

TEST_P(LoopbackEndpointTransportTest, CarriesAMessage) {
  fabric::context ctx;
  fabric::puller pull(ctx);
  fabric::pusher push(ctx);
  const std::string endpoint = pull.bind(loopback_endpoint(GetParam(), "carry"));
  push.connect(endpoint);
  ASSERT_TRUE(push.send(fabric::message("hello"), 5s));
  fabric::message m;
  ASSERT_TRUE(pull.recv(m, 5s));
  EXPECT_EQ(m.view(0), "hello");
}

INSTANTIATE_TEST_SUITE_P(AllTransports, LoopbackEndpointTransportTest,
                         ::testing::ValuesIn(fabric::support::all_transports),
                         [](const auto& param) { return std::string(to_string(param.param)); });

}  // namespace
