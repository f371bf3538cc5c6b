// Tests the 9/TSP body codec: exact frames of every builder, round trips through the parser of
// the side that receives each body, UUID and status text at their edges, the bounds of the
// grammar at their edge and one past it, a table of malformed bodies each with its own fault, and
// random frames and truncations that must never crash and never be accepted unless the builders
// would write them.
#include "reliability/tsp.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::tsp {
namespace {

using namespace std::string_literals;
using frames = std::vector<std::string>;

message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }
// Lets a parser read a temporary within one full expression, where its views cannot dangle.
const message& lvalue(const message& m) { return m; }
frames frames_of(std::span<const frame> s) {
  frames out;
  for (const frame& f : s) out.emplace_back(static_cast<const char*>(f.data()), f.size());
  return out;
}

// The parsers' views must not outlive their message: a temporary does not compile.
template <class M>
concept request_parses = requires(M&& m) { parse_request(std::forward<M>(m)); };
template <class M>
concept reply_parses = requires(M&& m) { parse_reply_reply(std::forward<M>(m)); };
static_assert(request_parses<const message&> && !request_parses<message>);
static_assert(reply_parses<message&> && !reply_parses<message&&>);

constexpr std::string_view upper = "0123456789ABCDEFFEDCBA9876543210";
constexpr std::string_view lower = "0123456789abcdeffedcba9876543210";

uuid sample() { return *parse_uuid(upper); }

TEST(Tsp, ServiceNamesAreThoseOfTheSpec) {
  EXPECT_EQ(request_service, "titanic.request");
  EXPECT_EQ(reply_service, "titanic.reply");
  EXPECT_EQ(close_service, "titanic.close");
  EXPECT_EQ(keyed_request_service, "titanic.keyed-request");
}

TEST(Tsp, BuildersProduceTheExactFramesOfTheSpec) {
  message m;
  write_request(m, "echo", make({"hello", ""}));
  EXPECT_EQ(frames_of(m), (frames{"echo", "hello", ""}));
  write_keyed_request(m, "\0k"s, "echo", make({"hello"}));
  EXPECT_EQ(frames_of(m), (frames{"\0k"s, "echo", "hello"}));
  write_uuid_request(m, sample());
  EXPECT_EQ(frames_of(m), (frames{std::string(upper)}));
  write_request_reply(m, sample());
  EXPECT_EQ(frames_of(m), (frames{"200", std::string(upper)}));
  write_request_reply(m, sample(), "stored");
  EXPECT_EQ(frames_of(m), (frames{"200 stored", std::string(upper)}));
  write_request_reply(m, status::unknown, "no service frame");
  EXPECT_EQ(frames_of(m), (frames{"400 no service frame"}));
  write_request_reply(m, status::error);
  EXPECT_EQ(frames_of(m), (frames{"500"}));
  write_reply_reply(m, make({"a", "", "c"}));
  EXPECT_EQ(frames_of(m), (frames{"200", "a", "", "c"}));
  write_reply_reply(m, make({""}), "OK");
  EXPECT_EQ(frames_of(m), (frames{"200 OK", ""}));
  write_reply_reply(m, status::pending);
  EXPECT_EQ(frames_of(m), (frames{"300"}));
  write_reply_reply(m, status::error, "service echo had no workers for 10 attempts");
  EXPECT_EQ(frames_of(m), (frames{"500 service echo had no workers for 10 attempts"}));
  write_close_reply(m);
  EXPECT_EQ(frames_of(m), (frames{"200"}));
  write_close_reply(m, status::ok, "closed");
  EXPECT_EQ(frames_of(m), (frames{"200 closed"}));
  EXPECT_EQ(status_frame(status::ok), "200");
  EXPECT_EQ(status_frame(status::pending, "wait"), "300 wait");
  EXPECT_EQ(status_frame(status::unknown), "400");
  EXPECT_EQ(status_frame(status::error, "\0\xff"s), "500 \0\xff"s);
}

TEST(Tsp, BuildersClearTheOutputAndMoveTheBodyIn) {
  message out = make({"old", "frames", "here"});
  message body = make({"x", "y"});
  write_request(out, "svc", std::move(body));
  EXPECT_EQ(frames_of(out), (frames{"svc", "x", "y"}));
  EXPECT_TRUE(body.empty());
  // A large frame's octets live outside it: moved, they stay where they are.
  message large = make({std::string(4096, 'z')});
  const void* bytes = large[0].data();
  write_reply_reply(out, std::move(large));
  EXPECT_EQ(out[1].data(), bytes) << "the reply frame was copied rather than moved";
}

TEST(Tsp, RequestsRoundTripIntoViewsOfTheirFrames) {
  message m;
  write_request(m, "echo", make({"a", "", "ccc"}));
  const parsed_request p = parse_request(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.service, "echo");
  EXPECT_TRUE(p.key.empty());
  EXPECT_EQ(frames_of(p.body), (frames{"a", "", "ccc"}));
  EXPECT_EQ(p.service.data(), m[0].data());
  EXPECT_EQ(p.body.data(), &m[1]);

  write_keyed_request(m, std::string(16, '\x07'), "mmi.x", make({"body"}));
  const parsed_request k = parse_keyed_request(m);
  ASSERT_TRUE(k) << describe(k.error);
  EXPECT_EQ(k.key, std::string(16, '\x07'));
  EXPECT_EQ(k.service, "mmi.x");
  EXPECT_EQ(frames_of(k.body), (frames{"body"}));
  EXPECT_EQ(k.body.data(), &m[2]);
}

TEST(Tsp, UuidRequestsAndRepliesRoundTrip) {
  const uuid id = uuid::random();
  message m;
  write_uuid_request(m, id);
  const parsed_uuid_request u = parse_uuid_request(m);
  ASSERT_TRUE(u) << describe(u.error);
  EXPECT_EQ(u.id, id);

  write_request_reply(m, id, "stored");
  parsed_reply r = parse_request_reply(m);
  ASSERT_TRUE(r) << describe(r.error);
  EXPECT_EQ(r.code, status::ok);
  EXPECT_EQ(r.text, "stored");
  EXPECT_EQ(r.id, id);

  for (const status s : {status::pending, status::unknown, status::error}) {
    write_request_reply(m, s, "why");
    r = parse_request_reply(m);
    ASSERT_TRUE(r) << describe(r.error);
    EXPECT_EQ(r.code, s);
    EXPECT_EQ(r.text, "why");
    EXPECT_EQ(r.id, uuid{});

    write_reply_reply(m, s);
    r = parse_reply_reply(m);
    ASSERT_TRUE(r) << describe(r.error);
    EXPECT_EQ(r.code, s);
    EXPECT_TRUE(r.text.empty());
    EXPECT_TRUE(r.body.empty());

    write_close_reply(m, s, "t");
    r = parse_close_reply(m);
    ASSERT_TRUE(r) << describe(r.error);
    EXPECT_EQ(r.code, s);
    EXPECT_EQ(r.text, "t");
  }

  write_reply_reply(m, make({"r1", "r2"}), "done");
  r = parse_reply_reply(m);
  ASSERT_TRUE(r) << describe(r.error);
  EXPECT_EQ(r.code, status::ok);
  EXPECT_EQ(r.text, "done");
  EXPECT_EQ(frames_of(r.body), (frames{"r1", "r2"}));
  EXPECT_EQ(r.body.data(), &m[1]);

  write_close_reply(m);
  r = parse_close_reply(m);
  ASSERT_TRUE(r) << describe(r.error);
  EXPECT_EQ(r.code, status::ok);
}

TEST(Tsp, UuidsAreWrittenUpperCaseAndReadInEitherCase) {
  const std::optional<uuid> a = parse_uuid(upper);
  const std::optional<uuid> b = parse_uuid(lower);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->bytes[0], 0x01);
  EXPECT_EQ(a->bytes[7], 0xef);
  EXPECT_EQ(a->bytes[8], 0xfe);
  EXPECT_EQ(a->bytes[15], 0x10);
  EXPECT_EQ(to_string(*b), upper);
  const std::optional<uuid> mixed = parse_uuid("0123456789AbCdEffEdCbA9876543210");
  ASSERT_TRUE(mixed);
  EXPECT_EQ(*mixed, *a);
  EXPECT_EQ(to_string(uuid{}), std::string(32, '0'));
  EXPECT_EQ(parse_uuid(std::string(32, 'F'))->bytes, (uuid{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                          0xff, 0xff, 0xff, 0xff}}.bytes));
}

TEST(Tsp, UuidsOfAnyOtherLengthOrCharacterAreRefused) {
  const std::string good(upper);
  EXPECT_FALSE(parse_uuid(""));
  EXPECT_FALSE(parse_uuid(good.substr(0, 31)));
  EXPECT_FALSE(parse_uuid(good + "0"));
  EXPECT_FALSE(parse_uuid("01234567-89AB-CDEF-FEDC-BA9876543210"));
  EXPECT_FALSE(parse_uuid("0x" + good.substr(2)));
  for (const char bad : {'g', 'G', ' ', '-', '\0', '/', ':', '@', '`', '\xff'}) {
    for (const std::size_t at : {std::size_t{0}, std::size_t{15}, std::size_t{31}}) {
      std::string s = good;
      s[at] = bad;
      EXPECT_FALSE(parse_uuid(s)) << "'" << bad << "' at " << at;
    }
  }
}

TEST(Tsp, RandomUuidsDifferAndCarryVersion4) {
  std::set<uuid> seen;
  for (int i = 0; i < 64; ++i) {
    const uuid u = uuid::random();
    EXPECT_EQ(u.bytes[6] >> 4, 4);
    EXPECT_EQ(u.bytes[8] >> 6, 2);
    EXPECT_EQ(parse_uuid(to_string(u)), u);
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 64U);
}

TEST(Tsp, OrderedUuidsRiseCarryVersion7AndDiffer) {
  std::set<uuid> seen;
  uuid last = uuid::ordered();
  for (int i = 0; i < 256; ++i) {
    const uuid u = uuid::ordered();
    EXPECT_EQ(u.bytes[6] >> 4, 7);
    EXPECT_EQ(u.bytes[8] >> 6, 2);
    EXPECT_EQ(parse_uuid(to_string(u)), u);
    // Time and the fraction of the millisecond (the first 8 octets) never go back in one thread.
    EXPECT_GE(std::vector<std::uint8_t>(u.bytes.begin(), u.bytes.begin() + 8),
              std::vector<std::uint8_t>(last.bytes.begin(), last.bytes.begin() + 8));
    last = u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 256U);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  std::uint64_t stamped = 0;
  for (std::size_t i = 0; i < 6; ++i) stamped = (stamped << 8) | last.bytes[i];
  EXPECT_LE(stamped, static_cast<std::uint64_t>(ms));
  EXPECT_GE(stamped + 60'000, static_cast<std::uint64_t>(ms));
}

TEST(Tsp, StatusFramesAreThreeDigitsAndOptionallyASpaceAndText) {
  struct ok_case {
    std::string frame;
    status code;
    std::string text;
  };
  for (const ok_case& c : std::vector<ok_case>{{"200", status::ok, ""},
                                               {"200 OK", status::ok, "OK"},
                                               {"300", status::pending, ""},
                                               {"400 no such request", status::unknown, "no such request"},
                                               {"500 x", status::error, "x"},
                                               {"500  two spaces", status::error, " two spaces"},
                                               {"200 \0\xff\n"s, status::ok, "\0\xff\n"s}}) {
    const parsed_status p = parse_status(c.frame);
    ASSERT_TRUE(p) << c.frame << ": " << describe(p.error);
    EXPECT_EQ(p.code, c.code) << c.frame;
    EXPECT_EQ(p.text, c.text) << c.frame;
    EXPECT_EQ(status_frame(p.code, p.text), c.frame) << "not canonical";
  }
  for (const std::string& bad : {""s, "2"s, "20"s, "200OK"s, "200 "s, "200-OK"s, " 200"s,
                                 "2000"s, "OK"s, "2a0"s, "+20"s, "\0\0\0"s, "200\tOK"s}) {
    EXPECT_EQ(parse_status(bad).error, fault::bad_status) << "'" << bad << "'";
  }
  for (const std::string& unknown : {"201"s, "199"s, "000"s, "999"s, "404 not found"s, "250"s}) {
    EXPECT_EQ(parse_status(unknown).error, fault::unknown_status) << "'" << unknown << "'";
  }
}

TEST(Tsp, BoundsAreAcceptedAtTheirEdgeAndRefusedOnePast) {
  const std::string service255(max_service_size, '~');
  const std::string key255(max_key_size, '\0');
  message m;
  write_request(m, service255, make({"b"}));
  EXPECT_TRUE(parse_request(m));
  EXPECT_EQ(parse_request(lvalue(make({service255 + "~", "b"}))).error, fault::bad_service);
  EXPECT_THROW(write_request(m, service255 + "~", make({"b"})), fabric::error);

  write_keyed_request(m, key255, "s", make({"b"}));
  EXPECT_TRUE(parse_keyed_request(m));
  EXPECT_EQ(parse_keyed_request(lvalue(make({key255 + "k", "s", "b"}))).error, fault::bad_key);
  EXPECT_THROW(write_keyed_request(m, key255 + "k", "s", make({"b"})), fabric::error);

  // The service name's characters: 0x21 and 0x7E in, 0x20 and 0x7F out.
  EXPECT_TRUE(parse_request(lvalue(make({"!~", "b"}))));
  EXPECT_EQ(parse_request(lvalue(make({"a b", "b"}))).error, fault::bad_service);
  EXPECT_EQ(parse_request(lvalue(make({"a\x7f", "b"}))).error, fault::bad_service);
  EXPECT_EQ(parse_request(lvalue(make({"\x80", "b"}))).error, fault::bad_service);

  const frames bodies(max_body_frames, "f");
  frames request{"s"};
  request.insert(request.end(), bodies.begin(), bodies.end());
  EXPECT_TRUE(parse_request(lvalue(make(request))));
  write_request(m, "s", make(bodies));
  EXPECT_EQ(parse_request(m).body.size(), max_body_frames);
  frames keyed = request;
  keyed.insert(keyed.begin(), "k");
  EXPECT_TRUE(parse_keyed_request(lvalue(make(keyed))));
  frames reply = request;
  reply[0] = "200";
  EXPECT_TRUE(parse_reply_reply(lvalue(make(reply))));
  write_reply_reply(m, make(bodies));
  EXPECT_EQ(parse_reply_reply(m).body.size(), max_body_frames);

  request.push_back("f");
  keyed.push_back("f");
  reply.push_back("f");
  EXPECT_EQ(parse_request(lvalue(make(request))).error, fault::too_many_frames);
  EXPECT_EQ(parse_keyed_request(lvalue(make(keyed))).error, fault::too_many_frames);
  EXPECT_EQ(parse_reply_reply(lvalue(make(reply))).error, fault::too_many_frames);
  frames over = bodies;
  over.push_back("f");
  EXPECT_THROW(write_request(m, "s", make(over)), fabric::error);
  EXPECT_THROW(write_keyed_request(m, "k", "s", make(over)), fabric::error);
  EXPECT_THROW(write_reply_reply(m, make(over)), fabric::error);
}

TEST(Tsp, BuildersRefuseWhatTheGrammarForbids) {
  message m = make({"kept"});
  EXPECT_THROW(write_request(m, "", make({"b"})), fabric::error);
  EXPECT_THROW(write_request(m, "a b", make({"b"})), fabric::error);
  EXPECT_THROW(write_request(m, "s", message{}), fabric::error);
  EXPECT_THROW(write_keyed_request(m, "", "s", make({"b"})), fabric::error);
  EXPECT_THROW(write_keyed_request(m, "k", "", make({"b"})), fabric::error);
  EXPECT_THROW(write_keyed_request(m, "k", "s", message{}), fabric::error);
  EXPECT_THROW(write_request_reply(m, status::ok), fabric::error);
  EXPECT_THROW(write_reply_reply(m, status::ok), fabric::error);
  EXPECT_THROW(write_reply_reply(m, message{}), fabric::error);
  EXPECT_THROW(write_close_reply(m, static_cast<status>(201)), fabric::error);
  EXPECT_THROW(write_request_reply(m, static_cast<status>(0)), fabric::error);
  EXPECT_THROW((void)status_frame(static_cast<status>(404)), fabric::error);
  EXPECT_EQ(frames_of(m), (frames{"kept"})) << "a refused build changed the output";
  try {
    write_request(m, "", make({"b"}));
  } catch (const fabric::error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::invalid_argument));
  }
}

TEST(Tsp, EveryFaultHasItsOwnDescription) {
  std::set<std::string_view> seen;
  for (int i = static_cast<int>(fault::none); i <= static_cast<int>(fault::unknown_status); ++i) {
    const std::string_view d = describe(static_cast<fault>(i));
    EXPECT_FALSE(d.empty());
    EXPECT_NE(d, "unknown fault");
    seen.insert(d);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(fault::unknown_status) + 1);
}

// ---------------------------------------------------------------------------------------------
// Malformed bodies, one fault each.

enum class body_of { request, keyed, uuid_req, request_rep, reply_rep, close_rep };

const char* name_of(body_of b) {
  switch (b) {
    case body_of::request: return "request";
    case body_of::keyed: return "keyed request";
    case body_of::uuid_req: return "uuid request";
    case body_of::request_rep: return "request reply";
    case body_of::reply_rep: return "reply reply";
    case body_of::close_rep: return "close reply";
  }
  return "?";
}

fault parse_as(body_of b, const message& m) {
  switch (b) {
    case body_of::request: return parse_request(m).error;
    case body_of::keyed: return parse_keyed_request(m).error;
    case body_of::uuid_req: return parse_uuid_request(m).error;
    case body_of::request_rep: return parse_request_reply(m).error;
    case body_of::reply_rep: return parse_reply_reply(m).error;
    case body_of::close_rep: break;
  }
  return parse_close_reply(m).error;
}

struct bad_input {
  const char* name;
  body_of kind;
  frames input;
  fault expected;
};

frames many(std::string first, std::size_t bodies) {
  frames f{std::move(first)};
  f.insert(f.end(), bodies, "b");
  return f;
}

const std::string id(upper);

std::vector<bad_input> bad_inputs() {
  using B = body_of;
  return {
      {"RequestEmpty", B::request, {}, fault::no_service},
      {"RequestEmptyService", B::request, {"", "b"}, fault::bad_service},
      {"RequestServiceWithSpace", B::request, {"ti tanic", "b"}, fault::bad_service},
      {"RequestServiceWithNul", B::request, {"echo\0"s, "b"}, fault::bad_service},
      {"RequestServiceOf256", B::request, {std::string(256, 's'), "b"}, fault::bad_service},
      {"RequestNoBody", B::request, {"echo"}, fault::no_body},
      {"RequestTooManyBodies", B::request, many("echo", max_body_frames + 1),
       fault::too_many_frames},
      {"KeyedEmpty", B::keyed, {}, fault::no_key},
      {"KeyedEmptyKey", B::keyed, {"", "echo", "b"}, fault::bad_key},
      {"KeyedKeyOf256", B::keyed, {std::string(256, 'k'), "echo", "b"}, fault::bad_key},
      {"KeyedKeyOnly", B::keyed, {"k"}, fault::no_service},
      {"KeyedBadService", B::keyed, {"k", "", "b"}, fault::bad_service},
      {"KeyedNoBody", B::keyed, {"k", "echo"}, fault::no_body},
      {"KeyedTooManyBodies", B::keyed, [] {
         frames f = many("echo", max_body_frames + 1);
         f.insert(f.begin(), "k");
         return f;
       }(), fault::too_many_frames},
      {"UuidRequestEmpty", B::uuid_req, {}, fault::no_uuid},
      {"UuidRequestTwoFrames", B::uuid_req, {id, id}, fault::extra_frames},
      {"UuidRequestShort", B::uuid_req, {id.substr(1)}, fault::bad_uuid},
      {"UuidRequestLong", B::uuid_req, {id + "0"}, fault::bad_uuid},
      {"UuidRequestNotHex", B::uuid_req, {"Z" + id.substr(1)}, fault::bad_uuid},
      {"UuidRequestEmptyFrame", B::uuid_req, {""}, fault::bad_uuid},
      {"RequestReplyEmpty", B::request_rep, {}, fault::no_status},
      {"RequestReplyThreeFrames", B::request_rep, {"200", id, id}, fault::extra_frames},
      {"RequestReply200WithoutUuid", B::request_rep, {"200"}, fault::no_uuid},
      {"RequestReply200BadUuid", B::request_rep, {"200", "not a uuid"}, fault::bad_uuid},
      {"RequestReply400WithUuid", B::request_rep, {"400", id}, fault::extra_frames},
      {"RequestReplyGluedText", B::request_rep, {"200OK", id}, fault::bad_status},
      {"RequestReplyTwoDigits", B::request_rep, {"20", id}, fault::bad_status},
      {"RequestReply201", B::request_rep, {"201", id}, fault::unknown_status},
      {"ReplyReplyEmpty", B::reply_rep, {}, fault::no_status},
      {"ReplyReply200WithoutBody", B::reply_rep, {"200"}, fault::no_body},
      {"ReplyReply300WithBody", B::reply_rep, {"300", "b"}, fault::extra_frames},
      {"ReplyReplyTooManyBodies", B::reply_rep, many("200", max_body_frames + 1),
       fault::too_many_frames},
      {"ReplyReplySpaceNoText", B::reply_rep, {"300 "}, fault::bad_status},
      {"ReplyReply600", B::reply_rep, {"600"}, fault::unknown_status},
      {"CloseReplyEmpty", B::close_rep, {}, fault::no_status},
      {"CloseReplyTwoFrames", B::close_rep, {"200", ""}, fault::extra_frames},
      {"CloseReplyWord", B::close_rep, {"OK"}, fault::bad_status},
      {"CloseReply100", B::close_rep, {"100 continue"}, fault::unknown_status},
  };
}

class TspRejects : public ::testing::TestWithParam<bad_input> {};

TEST_P(TspRejects, EachMalformedBodyWithItsOwnFault) {
  const bad_input& c = GetParam();
  const message m = make(c.input);
  const fault got = parse_as(c.kind, m);
  EXPECT_EQ(got, c.expected) << c.name << " as a " << name_of(c.kind) << ": got '"
                             << describe(got) << "', expected '" << describe(c.expected) << "'";
}

INSTANTIATE_TEST_SUITE_P(Table, TspRejects, ::testing::ValuesIn(bad_inputs()),
                         [](const ::testing::TestParamInfo<bad_input>& param_info) {
                           return param_info.param.name;
                         });

TEST(Tsp, TheMalformedTableCoversEveryFault) {
  std::set<fault> seen;
  for (const bad_input& c : bad_inputs()) seen.insert(c.expected);
  for (int i = static_cast<int>(fault::no_service); i <= static_cast<int>(fault::unknown_status);
       ++i) {
    EXPECT_EQ(seen.count(static_cast<fault>(i)), 1U) << describe(static_cast<fault>(i));
  }
  EXPECT_EQ(seen.count(fault::none), 0U);
}

// ---------------------------------------------------------------------------------------------
// Random frames and truncations.

// Parses `f` as `kind`; when accepted, rebuilds it from the parsed values and requires the same
// frames (UUIDs compared after upper-casing, the one freedom the grammar leaves). Returns whether
// it was accepted.
bool check(const frames& f, body_of kind) {
  const message m = make(f);
  message again;
  frames want = f;
  switch (kind) {
    case body_of::request: {
      const parsed_request p = parse_request(m);
      if (!p) return false;
      message body;
      for (const frame& b : p.body) body.push_back(fabric::view(b));
      write_request(again, p.service, std::move(body));
      break;
    }
    case body_of::keyed: {
      const parsed_request p = parse_keyed_request(m);
      if (!p) return false;
      message body;
      for (const frame& b : p.body) body.push_back(fabric::view(b));
      write_keyed_request(again, p.key, p.service, std::move(body));
      break;
    }
    case body_of::uuid_req: {
      const parsed_uuid_request p = parse_uuid_request(m);
      if (!p) return false;
      write_uuid_request(again, p.id);
      want[0] = to_string(*parse_uuid(want[0]));
      break;
    }
    case body_of::request_rep: {
      const parsed_reply p = parse_request_reply(m);
      if (!p) return false;
      if (p.code == status::ok) {
        write_request_reply(again, p.id, p.text);
        want[1] = to_string(*parse_uuid(want[1]));
      } else {
        write_request_reply(again, p.code, p.text);
      }
      break;
    }
    case body_of::reply_rep: {
      const parsed_reply p = parse_reply_reply(m);
      if (!p) return false;
      if (p.code == status::ok) {
        message body;
        for (const frame& b : p.body) body.push_back(fabric::view(b));
        write_reply_reply(again, std::move(body), p.text);
      } else {
        write_reply_reply(again, p.code, p.text);
      }
      break;
    }
    case body_of::close_rep: {
      const parsed_reply p = parse_close_reply(m);
      if (!p) return false;
      write_close_reply(again, p.code, p.text);
      break;
    }
  }
  EXPECT_EQ(frames_of(again), want) << "accepted as a " << name_of(kind)
                                    << " but not what the builders write";
  return true;
}

std::vector<std::pair<frames, body_of>> valid_messages() {
  return {{{"echo", "hello", ""}, body_of::request},
          {{"k3y", "echo", "a", "b"}, body_of::keyed},
          {{id}, body_of::uuid_req},
          {{std::string(lower)}, body_of::uuid_req},
          {{"200", id}, body_of::request_rep},
          {{"200 stored", std::string(lower)}, body_of::request_rep},
          {{"400 bad"}, body_of::request_rep},
          {{"200", "r1", "", "r3"}, body_of::reply_rep},
          {{"300 wait"}, body_of::reply_rep},
          {{"500 gave up"}, body_of::reply_rep},
          {{"200"}, body_of::close_rep}};
}

TEST(Tsp, TruncationsAndRandomFramesNeverCrashNorPassUnlessCanonical) {
  constexpr body_of kinds[] = {body_of::request,     body_of::keyed,     body_of::uuid_req,
                               body_of::request_rep, body_of::reply_rep, body_of::close_rep};
  const auto valid = valid_messages();
  for (const auto& [f, kind] : valid) {
    ASSERT_TRUE(check(f, kind)) << name_of(kind) << " " << f[0];
    for (std::size_t n = 0; n <= f.size(); ++n) {
      const frames prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      for (const body_of k : kinds) (void)check(prefix, k);
    }
    for (std::size_t i = 0; i < f.size(); ++i) {
      for (std::size_t n = 0; n < f[i].size(); ++n) {
        frames cut = f;
        cut[i].resize(n);
        const bool accepted = check(cut, kind);
        const bool is_uuid = (kind == body_of::uuid_req && i == 0) ||
                             (kind == body_of::request_rep && i == 1);
        EXPECT_FALSE(accepted && is_uuid) << "a UUID cut to " << n << " digits parsed";
        EXPECT_FALSE(accepted && kind != body_of::request && kind != body_of::keyed && i == 0 &&
                     n < 3)
            << "a status cut to " << n << " octets parsed";
      }
    }
  }

  std::mt19937_64 rng(20240913);
  const std::vector<std::string> atoms = {
      "", "\0"s, "b", "echo", "titanic.request", "200", "200 OK", "200OK", "300", "400", "500 x",
      "201", "20", "2000", "300 ", id, std::string(lower), id.substr(1), id + "0",
      std::string(255, 'k'), std::string(256, 'k'), "a b", "\x7f"};
  const auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  constexpr int iterations = 20000;
  int accepted = 0;
  for (int i = 0; i < iterations; ++i) {
    frames f;
    if (pick(3) == 0) {
      f.resize(pick(6));
      for (auto& s : f) s = atoms[pick(atoms.size())];
    } else {
      f = valid[pick(valid.size())].first;
      const std::size_t mutations = 1 + pick(3);
      for (std::size_t k = 0; k < mutations && !f.empty(); ++k) {
        const std::size_t at = pick(f.size());
        const auto it = f.begin() + static_cast<std::ptrdiff_t>(at);
        switch (pick(6)) {
          case 0: f.resize(at); break;
          case 1: f.erase(it); break;
          case 2: f.insert(it, atoms[pick(atoms.size())]); break;
          case 3: f[at] = atoms[pick(atoms.size())]; break;
          case 4:
            if (!f[at].empty()) f[at][pick(f[at].size())] = static_cast<char>(rng());
            break;
          default:
            if (pick(2) == 0 && !f[at].empty()) f[at].pop_back();
            else f[at].push_back(static_cast<char>(rng()));
            break;
        }
      }
    }
    for (const body_of k : kinds) accepted += check(f, k) ? 1 : 0;
    if (HasFailure()) {
      ADD_FAILURE() << "iteration " << i;
      return;
    }
  }
  EXPECT_GT(accepted, iterations / 20);
  EXPECT_LT(accepted, iterations * 6);
}

}  // namespace
}  // namespace fabric::tsp
