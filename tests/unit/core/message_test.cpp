// Tests fabric::message and the frame helpers: building, cloning, frame order and moves.
#include <fabric/message.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric {
namespace {

std::vector<std::string> texts(const message& m) {
  std::vector<std::string> out;
  for (const frame& f : m) out.emplace_back(view(f));
  return out;
}

TEST(FrameTest, MakeFrameCopiesTheBytes) {
  std::string source = "abc";
  frame f = make_frame(source);
  source[0] = 'x';
  EXPECT_EQ(view(f), "abc");
  EXPECT_EQ(f.size(), 3U);
}

TEST(FrameTest, BytesAndViewCoverTheSameMemory) {
  const frame f = make_frame(std::string_view("\x00\x01\xff", 3));
  const auto b = bytes(f);
  ASSERT_EQ(b.size(), 3U);
  EXPECT_EQ(b[0], std::byte{0x00});
  EXPECT_EQ(b[1], std::byte{0x01});
  EXPECT_EQ(b[2], std::byte{0xff});
  EXPECT_EQ(static_cast<const void*>(b.data()), static_cast<const void*>(view(f).data()));
}

TEST(MessageTest, DefaultIsEmpty) {
  const message m;
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.size(), 0U);
  EXPECT_EQ(m.byte_size(), 0U);
}

TEST(MessageTest, StringConstructorMakesOneFrame) {
  const message m("hello");
  ASSERT_EQ(m.size(), 1U);
  EXPECT_EQ(m.view(0), "hello");
}

TEST(MessageTest, MakeMessageKeepsPartOrder) {
  const std::string service = "echo";
  const message m = make_message("", "MDPC01", service, std::string_view("x"));
  EXPECT_EQ(texts(m), (std::vector<std::string>{"", "MDPC01", "echo", "x"}));
}

TEST(MessageTest, ByteSizeSumsAllFrames) {
  const message m = make_message("ab", "", "cde");
  EXPECT_EQ(m.byte_size(), 5U);
}

TEST(MessageTest, EmbeddedZeroBytesAreKept) {
  message m;
  m.push_back(std::string_view("a\0b", 3));
  EXPECT_EQ(m.byte_size(), 3U);
  EXPECT_EQ(m.view(0), std::string_view("a\0b", 3));
}

TEST(MessageTest, PushFrontPrependsFrames) {
  message m = make_message("body");
  m.push_front("");
  m.push_front(make_frame("peer"));
  EXPECT_EQ(texts(m), (std::vector<std::string>{"peer", "", "body"}));
}

TEST(MessageTest, PushBackAcceptsFramesStringsAndRawBytes) {
  message m;
  m.push_back(make_frame("one"));
  m.push_back(std::string_view("two"));
  const char raw[] = {'t', 'h', 'r', 'e', 'e'};
  m.push_back(raw, sizeof raw);
  EXPECT_EQ(texts(m), (std::vector<std::string>{"one", "two", "three"}));
}

TEST(MessageTest, PopFrontAndPopBackReturnTheEndFrames) {
  message m = make_message("a", "b", "c");
  frame first = m.pop_front();
  frame last = m.pop_back();
  EXPECT_EQ(view(first), "a");
  EXPECT_EQ(view(last), "c");
  EXPECT_EQ(texts(m), (std::vector<std::string>{"b"}));
  frame only = m.pop_front();
  EXPECT_EQ(view(only), "b");
  EXPECT_TRUE(m.empty());
}

TEST(MessageTest, CloneIsADeepCopy) {
  message original = make_message("alpha", "beta");
  message copy = original.clone();
  ASSERT_EQ(texts(copy), texts(original));
  EXPECT_NE(copy[0].data(), original[0].data());
  static_cast<char*>(copy[0].data())[0] = 'A';
  EXPECT_EQ(original.view(0), "alpha");
  EXPECT_EQ(copy.view(0), "Alpha");
}

TEST(MessageTest, CloneOfEmptyIsEmpty) {
  const message m;
  EXPECT_TRUE(m.clone().empty());
}

TEST(MessageTest, MoveConstructionLeavesTheSourceEmpty) {
  message source = make_message("a", "b");
  const void* data = source[0].data();
  message target(std::move(source));
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  ASSERT_EQ(target.size(), 2U);
  EXPECT_EQ(target[0].data(), data);  // frames moved, not copied
}

TEST(MessageTest, MoveAssignmentLeavesTheSourceEmpty) {
  message source = make_message("x");
  message target = make_message("old", "frames");
  target = std::move(source);
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(texts(target), (std::vector<std::string>{"x"}));
}

TEST(MessageTest, PushingAFrameMovesItOut) {
  frame f = make_frame("payload");
  message m;
  m.push_back(std::move(f));
  EXPECT_EQ(f.size(), 0U);  // NOLINT(bugprone-use-after-move): zmq::message_t moves to empty
  EXPECT_EQ(m.view(0), "payload");
}

TEST(MessageTest, ClearEmptiesButKeepsCapacity) {
  message m = make_message("a", "b", "c");
  const auto capacity = m.frames().capacity();
  m.clear();
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.frames().capacity(), capacity);
}

TEST(MessageTest, EmplaceBackAppendsAnEmptyFrame) {
  message m = make_message("a");
  frame& f = m.emplace_back();
  EXPECT_EQ(f.size(), 0U);
  EXPECT_EQ(m.size(), 2U);
}

TEST(MessageTest, FrontBackAndIndexAgree) {
  message m = make_message("first", "middle", "last");
  EXPECT_EQ(view(m.front()), "first");
  EXPECT_EQ(view(m.back()), "last");
  EXPECT_EQ(view(m[1]), "middle");
  const message& cm = m;
  EXPECT_EQ(view(cm.front()), "first");
  EXPECT_EQ(view(cm.back()), "last");
}

TEST(MessageTest, ContainerConstructorTakesTheFrames) {
  message::container frames;
  frames.push_back(make_frame("p"));
  frames.push_back(make_frame("q"));
  const message m(std::move(frames));
  EXPECT_EQ(texts(m), (std::vector<std::string>{"p", "q"}));
}

}  // namespace
}  // namespace fabric
