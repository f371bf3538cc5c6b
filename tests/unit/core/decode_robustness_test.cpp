// Tests that every decoder (decode_msgpack, unpack<T>, decode_header, decode_envelope) rejects hostile input cleanly.
#include <fabric/codec.hpp>
#include <fabric/envelope.hpp>

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

std::string b(std::string_view bytes) { return std::string(bytes); }
std::string b(const char* bytes, std::size_t size) { return std::string(bytes, size); }
using writer = std::function<void(packer&)>;

std::string packed(const writer& write) {
  msgpack::sbuffer buffer;
  packer pk(buffer);
  write(pk);
  return std::string(buffer.data(), buffer.size());
}

// ---- building header maps field by field ----

void put_str(packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void put_bin(packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<std::uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

// One key/value entry of a map.
struct entry {
  writer key;
  writer value;
};

entry field(std::uint64_t key, writer value) {
  return {[key](packer& pk) { pk.pack_uint64(key); }, std::move(value)};
}

writer str_value(std::string s) {
  return [s = std::move(s)](packer& pk) { put_str(pk, s); };
}
writer bin_value(std::string s) {
  return [s = std::move(s)](packer& pk) { put_bin(pk, s); };
}
writer uint_value(std::uint64_t v) {
  return [v](packer& pk) { pk.pack_uint64(v); };
}
writer int_value(std::int64_t v) {
  return [v](packer& pk) { pk.pack_int64(v); };
}

// Bytes written as they are (msgpack-c's packer rewrites integral doubles as integers).
writer raw_value(std::string bytes) {
  return [bytes = std::move(bytes)](packer& pk) { pk.pack_str_body(bytes.data(), static_cast<std::uint32_t>(bytes.size())); };
}

entry id_field() { return field(header_key::id, bin_value(std::string(16, '\x07'))); }
entry producer_field() { return field(header_key::producer, str_value("producer")); }
entry seq_field() { return field(header_key::seq, uint_value(1)); }
entry ts_field() { return field(header_key::ts, int_value(1'700'000'000'000'000'000)); }

writer map_of(std::vector<entry> entries) {
  return [entries = std::move(entries)](packer& pk) {
    pk.pack_map(static_cast<std::uint32_t>(entries.size()));
    for (const entry& e : entries) {
      e.key(pk);
      e.value(pk);
    }
  };
}

// A header map: the four required fields (minus any in `drop`) followed by `extra`.
std::string header_with(std::vector<entry> extra, std::vector<std::uint8_t> drop = {}) {
  std::vector<entry> entries;
  const std::pair<std::uint8_t, entry> required[] = {{header_key::id, id_field()},
                                                     {header_key::producer, producer_field()},
                                                     {header_key::seq, seq_field()},
                                                     {header_key::ts, ts_field()}};
  for (const auto& [key, e] : required) {
    bool dropped = false;
    for (auto d : drop) dropped = dropped || d == key;
    if (!dropped) entries.push_back(e);
  }
  for (auto& e : extra) entries.push_back(std::move(e));
  return packed(map_of(std::move(entries)));
}

std::string user_headers(std::size_t n) {
  std::vector<entry> users;
  for (std::size_t i = 0; i < n; ++i)
    users.push_back({str_value(std::string("k").append(std::to_string(i))), bin_value("v")});
  return header_with({field(header_key::user, map_of(std::move(users)))});
}

header valid_header() {
  header h;
  id_generator ids;
  h.id = ids.next();
  h.producer = "robust-producer";
  h.stream = "stream.a";
  h.seq = 77;
  h.timestamp_ns = 1'700'000'000'000'000'000;
  h.ttl_ms = 1500;
  h.user = {{"content-type", "x"}, {"trace", std::string("\x00\x01", 2)}};
  return h;
}

std::string valid_header_bytes() { return std::string(view(encode_header(valid_header()))); }

std::string nested_arrays(std::size_t depth) {
  std::string s(depth, '\x91');
  s.push_back('\xc0');
  return s;
}

// `levels` array32 headers nested in each other, each claiming nearly the whole input (which is
// `size` bytes, padded with nils): each claim alone fits the input, together they cannot.
std::string nested_claims(std::size_t levels, std::size_t size) {
  std::string s;
  const auto claim = static_cast<std::uint32_t>(size - 5 * levels);
  for (std::size_t i = 0; i < levels; ++i) {
    s.push_back('\xdd');
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(claim >> shift));
  }
  s.resize(size, '\xc0');
  return s;
}

// A header map with an unknown key (from a newer producer, so skipped) holding `n` nils.
std::string header_with_unknown_array(std::size_t n) {
  return header_with({field(7, [n](packer& pk) {
    pk.pack_array(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) pk.pack_nil();
  })});
}

std::string nested_maps(std::size_t depth) {
  std::string s;
  for (std::size_t i = 0; i < depth; ++i) s += "\x81\x01";
  s.push_back('\xc0');
  return s;
}



// ---- the table ----

// What a case must decode to.
enum class expect { malformed, too_large, rejected /* either of the two */ };

// Which layer the input breaks: msgpack itself (every decoder rejects it), or only the header
// schema (it is valid msgpack, so decode_msgpack accepts it).
enum class layer { msgpack, header };

struct bad_input {
  std::string name;
  std::string bytes;
  layer broken;
  expect outcome;
};

void PrintTo(const bad_input& c, std::ostream* os) {
  *os << c.name << " (" << c.bytes.size() << " bytes:";
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < c.bytes.size() && i < 24; ++i) {
    const auto byte = static_cast<unsigned char>(c.bytes[i]);
    *os << ' ' << hex[byte >> 4] << hex[byte & 15];
  }
  *os << (c.bytes.size() > 24 ? " ...)" : ")");
}

std::vector<bad_input> bad_inputs() {
  std::vector<bad_input> cases = {
      // Structure of the msgpack itself.
      {"EmptyInput", "", layer::msgpack, expect::malformed},
      {"NeverUsedTypeByte", b("\xc1"), layer::msgpack, expect::malformed},
      {"Array32ClaimingFourBillionElements", b("\xdd\xff\xff\xff\xff"), layer::msgpack, expect::too_large},
      {"Map32ClaimingFourBillionEntries", b("\xdf\xff\xff\xff\xff"), layer::msgpack, expect::too_large},
      {"Str32ClaimingFourGigabytes", b("\xdb\xff\xff\xff\xff"), layer::msgpack, expect::rejected},
      {"Bin32ClaimingFourGigabytes", b("\xc6\xff\xff\xff\xff"), layer::msgpack, expect::rejected},
      {"Ext32ClaimingFourGigabytes", b("\xc9\xff\xff\xff\xff\x01"), layer::msgpack, expect::rejected},
      {"Array16ClaimingMoreThanTheInput", b("\xdc\xff\xff\x01\x02"), layer::msgpack, expect::too_large},
      {"Map16ClaimingMoreThanTheInput", b("\xde\xff\xff\x01\x02"), layer::msgpack, expect::too_large},
      {"Array32InsideAValidPrefix", b("\x92\x01\xdd\xff\xff\xff\xff"), layer::msgpack, expect::too_large},
      {"Map32AsAHeaderValue", b("\x81\x06\xdf\xff\xff\xff\xff"), layer::msgpack, expect::too_large},
      {"Str8Truncated", b("\xd9\x10" "abc"), layer::msgpack, expect::malformed},
      {"FixstrTruncated", b("\xa5" "ab"), layer::msgpack, expect::malformed},
      {"Bin8Truncated", b("\xc4\x05\x00"), layer::msgpack, expect::malformed},
      {"Uint64Truncated", b("\xcf\x00\x00\x00"), layer::msgpack, expect::malformed},
      {"Float64Truncated", b("\xcb\x40\x09"), layer::msgpack, expect::malformed},
      {"ArrayMissingItsLastElement", b("\x93\x01\x02"), layer::msgpack, expect::malformed},
      {"MapMissingItsLastValue", b("\x82\x01\x02\x03"), layer::msgpack, expect::malformed},
      {"ThirtyThreeNestedArrays", nested_arrays(33), layer::msgpack, expect::too_large},
      {"FortyNestedArrays", nested_arrays(40), layer::msgpack, expect::too_large},
      {"HundredThousandNestedArrays", nested_arrays(100'000), layer::msgpack, expect::too_large},
      {"ThirtyThreeNestedMaps", nested_maps(33), layer::msgpack, expect::too_large},
      // Claims that each fit the input but together exceed it (memory amplification).
      {"ThirtyTwoNestedArraysEachClaimingTheInput", nested_claims(32, 64 * 1024), layer::msgpack,
       expect::too_large},
      {"TwoNestedArraysEachClaimingTheInput", nested_claims(2, 4096), layer::msgpack, expect::too_large},
      // malformed to decode_msgpack; decode_header also refuses it for its element budget.
      {"OneArrayClaimingTheWholeInputOneShort", nested_claims(1, 4096).substr(0, 4095), layer::msgpack,
       expect::rejected},
      {"TrailingByteAfterAnInteger", b("\x01\x02"), layer::msgpack, expect::malformed},
      {"TrailingNilAfterAValidHeader", valid_header_bytes() + b("\xc0"), layer::msgpack, expect::malformed},
      {"SecondHeaderAfterAValidHeader", valid_header_bytes() + valid_header_bytes(), layer::msgpack,
       expect::malformed},

      // The header schema.
      {"HeaderIsAnArray", b("\x94\x01\x02\x03\x04"), layer::header, expect::malformed},
      {"HeaderIsAnInteger", b("\x2a"), layer::header, expect::malformed},
      {"HeaderIsNil", b("\xc0"), layer::header, expect::malformed},
      {"HeaderIsAString", b("\xa4" "FAB1"), layer::header, expect::malformed},
      {"HeaderIsAnEmptyMap", b("\x80"), layer::header, expect::malformed},
      {"KeyIsAString", header_with({{str_value("stream"), str_value("s")}}), layer::header, expect::malformed},
      {"KeyIsNegative", header_with({{int_value(-1), str_value("s")}}), layer::header, expect::malformed},
      {"KeyIsNil", header_with({{[](packer& pk) { pk.pack_nil(); }, str_value("s")}}), layer::header,
       expect::malformed},
      {"KeyIsAbove255", header_with({field(256, str_value("s"))}), layer::header, expect::malformed},
      {"IdIsAString", header_with({field(header_key::id, str_value(std::string(16, 'i')))}, {header_key::id}),
       layer::header, expect::malformed},
      {"IdIsFifteenBytes", header_with({field(header_key::id, bin_value(std::string(15, 'i')))}, {header_key::id}),
       layer::header, expect::malformed},
      {"IdIsSeventeenBytes",
       header_with({field(header_key::id, bin_value(std::string(17, 'i')))}, {header_key::id}), layer::header,
       expect::malformed},
      {"IdIsAnInteger", header_with({field(header_key::id, uint_value(7))}, {header_key::id}), layer::header,
       expect::malformed},
      {"SeqIsNegative", header_with({field(header_key::seq, int_value(-1))}, {header_key::seq}), layer::header,
       expect::malformed},
      {"SeqIsAString", header_with({field(header_key::seq, str_value("1"))}, {header_key::seq}), layer::header,
       expect::malformed},
      {"SeqIsAFloat",
       header_with({field(header_key::seq, raw_value(b("\xcb\x3f\xf8\0\0\0\0\0\0", 9)))}, {header_key::seq}),
       layer::header, expect::malformed},
      {"ProducerIsAnInteger", header_with({field(header_key::producer, uint_value(1))}, {header_key::producer}),
       layer::header, expect::malformed},
      {"ProducerIsBinary", header_with({field(header_key::producer, bin_value("p"))}, {header_key::producer}),
       layer::header, expect::malformed},
      {"ProducerIsNil",
       header_with({field(header_key::producer, [](packer& pk) { pk.pack_nil(); })}, {header_key::producer}),
       layer::header, expect::malformed},
      {"ProducerLongerThan255",
       header_with({field(header_key::producer, str_value(std::string(256, 'p')))}, {header_key::producer}),
       layer::header, expect::malformed},
      {"StreamIsAnInteger", header_with({field(header_key::stream, uint_value(3))}), layer::header,
       expect::malformed},
      {"StreamLongerThan255", header_with({field(header_key::stream, str_value(std::string(256, 's')))}),
       layer::header, expect::malformed},
      {"TsIsAString", header_with({field(header_key::ts, str_value("now"))}, {header_key::ts}), layer::header,
       expect::malformed},
      {"TsIsAFloat", header_with({field(header_key::ts, raw_value(b("\xcb\x3f\xf8\0\0\0\0\0\0", 9)))}, {header_key::ts}),
       layer::header, expect::malformed},
      {"TsAboveInt64Max", header_with({field(header_key::ts, uint_value(UINT64_MAX))}, {header_key::ts}),
       layer::header, expect::malformed},
      {"TtlIsNegative", header_with({field(header_key::ttl, int_value(-5))}), layer::header, expect::malformed},
      {"TtlIsAString", header_with({field(header_key::ttl, str_value("5"))}), layer::header, expect::malformed},
      {"UserHeadersAreAnArray",
       header_with({field(header_key::user, [](packer& pk) {
         pk.pack_array(1);
         put_str(pk, "k");
       })}),
       layer::header, expect::malformed},
      {"UserHeadersHaveIntegerKeys",
       header_with({field(header_key::user, map_of({{uint_value(1), bin_value("v")}}))}), layer::header,
       expect::malformed},
      {"UserHeaderValueIsAnInteger",
       header_with({field(header_key::user, map_of({{str_value("k"), uint_value(1)}}))}), layer::header,
       expect::malformed},
      {"UserHeaderKeyLongerThan255",
       header_with({field(header_key::user, map_of({{str_value(std::string(256, 'k')), bin_value("v")}}))}),
       layer::header, expect::malformed},
      {"UserHeaderValueLongerThan65536",
       header_with({field(header_key::user, map_of({{str_value("k"), bin_value(std::string(65537, 'v'))}}))}),
       layer::header, expect::malformed},
      {"SixtyFiveUserHeaders", user_headers(65), layer::header, expect::too_large},
      {"ThousandUserHeaders", user_headers(1000), layer::header, expect::too_large},
      {"UnknownFieldOverTheHeaderElementBudget", header_with_unknown_array(1100), layer::header,
       expect::too_large},
      {"HeaderFrameOverTheSizeCap",
       header_with({field(7, bin_value(std::string(header_limits::max_header_bytes, 'x')))}), layer::header,
       expect::too_large},
      {"DuplicateIdKey", header_with({id_field()}), layer::header, expect::malformed},
      {"DuplicateProducerKey", header_with({field(header_key::producer, str_value("other"))}), layer::header,
       expect::malformed},
      {"DuplicateSeqKey", header_with({seq_field()}), layer::header, expect::malformed},
      {"DuplicateTsKey", header_with({ts_field()}), layer::header, expect::malformed},
      {"DuplicateStreamKey",
       header_with({field(header_key::stream, str_value("a")), field(header_key::stream, str_value("a"))}),
       layer::header, expect::malformed},
      {"DuplicateUserKey",
       header_with({field(header_key::user, map_of({})), field(header_key::user, map_of({}))}), layer::header,
       expect::malformed},
      {"MissingId", header_with({}, {header_key::id}), layer::header, expect::malformed},
      {"MissingProducer", header_with({}, {header_key::producer}), layer::header, expect::malformed},
      {"MissingSeq", header_with({}, {header_key::seq}), layer::header, expect::malformed},
      {"MissingTs", header_with({}, {header_key::ts}), layer::header, expect::malformed},
      {"MissingEveryRequiredKey",
       header_with({field(header_key::stream, str_value("s"))},
                   {header_key::id, header_key::producer, header_key::seq, header_key::ts}),
       layer::header, expect::malformed},
  };

  // Every strict prefix of a valid header frame (the empty one is EmptyInput above).
  const std::string whole = valid_header_bytes();
  for (std::size_t n = 1; n < whole.size(); ++n)
    cases.push_back({"TruncatedHeaderPrefix" + std::to_string(n), whole.substr(0, n), layer::msgpack,
                     expect::rejected});
  return cases;
}

bool matches(const std::error_code& ec, expect outcome) {
  switch (outcome) {
    case expect::malformed: return ec == errc::malformed;
    case expect::too_large: return ec == errc::too_large;
    case expect::rejected: return ec == errc::malformed || ec == errc::too_large;
  }
  return false;
}

class DecodeRejectsTest : public ::testing::TestWithParam<bad_input> {};

TEST_P(DecodeRejectsTest, EveryDecoderRejectsItCleanly) {
  const bad_input& c = GetParam();
  const frame f = make_frame(c.bytes);

  auto raw = decode_msgpack(bytes(f));
  if (c.broken == layer::msgpack) {
    EXPECT_FALSE(raw) << "decode_msgpack accepted it";
    EXPECT_TRUE(matches(raw.error(), c.outcome)) << "decode_msgpack: " << raw.error().message();
    auto as_vector = unpack<std::vector<int>>(f);
    EXPECT_TRUE(matches(as_vector.error(), c.outcome)) << "unpack<vector>: " << as_vector.error().message();
    auto as_map = unpack<std::map<std::string, std::string>>(bytes(f));
    EXPECT_TRUE(matches(as_map.error(), c.outcome)) << "unpack<map>: " << as_map.error().message();
  } else {
    EXPECT_TRUE(raw) << "the case is meant to be valid msgpack: " << raw.error().message();
  }

  auto h = decode_header(f);
  EXPECT_FALSE(h) << "decode_header accepted it";
  EXPECT_TRUE(matches(h.error(), c.outcome)) << "decode_header: " << h.error().message();

  message m;
  m.push_back(envelope_tag);
  m.push_back(make_frame(c.bytes));
  m.push_back("body");
  auto e = decode_envelope(std::move(m));
  EXPECT_FALSE(e) << "decode_envelope accepted it";
  EXPECT_TRUE(matches(e.error(), c.outcome)) << "decode_envelope: " << e.error().message();
}

INSTANTIATE_TEST_SUITE_P(Hostile, DecodeRejectsTest, ::testing::ValuesIn(bad_inputs()),
                         [](const ::testing::TestParamInfo<bad_input>& param_info) { return param_info.param.name; });

TEST(DecodeRobustnessTest, TableCaseNamesAreUniqueAndAlphanumeric) {
  std::map<std::string, int> names;
  for (const auto& c : bad_inputs()) {
    for (char ch : c.name) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch))) << c.name;
    EXPECT_EQ(++names[c.name], 1) << c.name;
  }
}

TEST(DecodeRobustnessTest, TheUnbrokenHeaderDecodes) {
  // The table's builders, unbroken, make a valid header: so each case fails for its own reason.
  EXPECT_TRUE(decode_header(make_frame(header_with({}))));
  EXPECT_TRUE(decode_header(make_frame(user_headers(64))));
  EXPECT_TRUE(decode_header(make_frame(valid_header_bytes())));
  auto unknown = decode_header(make_frame(header_with({field(7, str_value("future")), field(255, uint_value(1))})));
  EXPECT_TRUE(unknown) << "unknown keys 7-255 must be skipped";
}

// ---- envelopes whose frames are wrong ----

struct bad_envelope {
  std::string name;
  std::vector<std::string> frames;
};

void PrintTo(const bad_envelope& c, std::ostream* os) { *os << c.name << " (" << c.frames.size() << " frames)"; }

std::vector<bad_envelope> bad_envelopes() {
  const std::string h = valid_header_bytes();
  return {
      {"NoFrames", {}},
      {"TagOnly", {"FAB1"}},
      {"WrongTag", {"FAB2", h, "body"}},
      {"LowercaseTag", {"fab1", h}},
      {"TagWithATrailingByte", {std::string("FAB1\0", 5), h}},
      {"EmptyTag", {"", h}},
      {"HeaderFirst", {h, "FAB1"}},
      {"EmptyHeaderFrame", {"FAB1", ""}},
      {"BadHeaderFrame", {"FAB1", "\xc1", "body"}},
      {"HeaderIsTheBody", {"FAB1", "just some text"}},
  };
}

class DecodeEnvelopeRejectsTest : public ::testing::TestWithParam<bad_envelope> {};

TEST_P(DecodeEnvelopeRejectsTest, ReturnsMalformed) {
  message m;
  for (const auto& f : GetParam().frames) m.push_back(f);
  auto e = decode_envelope(std::move(m));
  EXPECT_TRUE(e.is(errc::malformed)) << e.error().message();
}

INSTANTIATE_TEST_SUITE_P(Hostile, DecodeEnvelopeRejectsTest, ::testing::ValuesIn(bad_envelopes()),
                         [](const ::testing::TestParamInfo<bad_envelope>& param_info) { return param_info.param.name; });

// ---- randomized robustness (fixed seed: failures reproduce) ----

// Decodes `input` every way fabric can; each must succeed or fail with malformed/too_large.
// The decoders are noexcept, so a stray exception would terminate the run.
::testing::AssertionResult decodes_cleanly(const std::string& input) {
  const frame f = make_frame(input);
  const auto acceptable = [](const std::error_code& ec) {
    return !ec || ec == errc::malformed || ec == errc::too_large;
  };
  if (auto r = decode_msgpack(bytes(f)); !acceptable(r.error()))
    return ::testing::AssertionFailure() << "decode_msgpack: " << r.error().message();
  if (auto r = unpack<std::map<std::string, std::vector<std::int64_t>>>(f); !acceptable(r.error()))
    return ::testing::AssertionFailure() << "unpack<map>: " << r.error().message();
  if (auto r = decode_header(f); !acceptable(r.error()))
    return ::testing::AssertionFailure() << "decode_header: " << r.error().message();
  message m;
  m.push_back(envelope_tag);
  m.push_back(make_frame(input));
  if (auto r = decode_envelope(std::move(m)); !acceptable(r.error()))
    return ::testing::AssertionFailure() << "decode_envelope: " << r.error().message();
  return ::testing::AssertionSuccess();
}

std::string hex_of(const std::string& s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    out += hex[byte >> 4];
    out += hex[byte & 15];
  }
  return out;
}

TEST(DecodeRobustnessTest, RandomByteStringsDecodeCleanly) {
  std::mt19937_64 rng(0x5eedf00dULL);
  // Bytes biased towards msgpack type markers, so containers and length prefixes are common.
  const std::string markers = b("\x80\x81\x8f\x90\x91\x9f\xa1\xbf\xc0\xc4\xc5\xc6\xc7\xc9\xcc\xcf\xd3"
                                "\xd9\xda\xdb\xdc\xdd\xde\xdf\xff\x00\x01\x06\x10");
  std::uniform_int_distribution<int> length(0, 48);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> marker(0, markers.size() - 1);
  int accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string input(static_cast<std::size_t>(length(rng)), '\0');
    for (char& c : input) c = (byte(rng) < 96) ? markers[marker(rng)] : static_cast<char>(byte(rng));
    ASSERT_TRUE(decodes_cleanly(input)) << "input " << i << ": " << hex_of(input);
    if (decode_msgpack(input)) ++accepted;
  }
  // The loop must exercise both outcomes, or it tests nothing.
  EXPECT_GT(accepted, 100);
  EXPECT_LT(accepted, 19'900);
}

TEST(DecodeRobustnessTest, RandomMutationsOfAValidHeaderDecodeCleanly) {
  std::mt19937_64 rng(0xfab1ULL);
  const std::string valid = valid_header_bytes();
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> edits(1, 4);
  std::uniform_int_distribution<int> kind(0, 9);
  int headers_accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string input = valid;
    for (int e = edits(rng); e > 0 && !input.empty(); --e) {
      std::uniform_int_distribution<std::size_t> at(0, input.size() - 1);
      switch (kind(rng)) {
        case 0: input.erase(at(rng), 1); break;                                         // delete
        case 1: input.insert(at(rng), 1, static_cast<char>(byte(rng))); break;         // insert
        case 2: input.resize(at(rng)); break;                                           // truncate
        case 3: {  // bit flip
          const std::size_t i_at = at(rng);
          input[i_at] = static_cast<char>(input[i_at] ^ (1 << (byte(rng) % 8)));
          break;
        }
        case 4: input[at(rng)] = b("\xdd\xdf\xdb\xc6\xdc\xde")[static_cast<std::size_t>(byte(rng) % 6)]; break;
        default: input[at(rng)] = static_cast<char>(byte(rng)); break;                  // overwrite
      }
    }
    ASSERT_TRUE(decodes_cleanly(input)) << "mutation " << i << ": " << hex_of(input);
    if (decode_header(make_frame(input))) ++headers_accepted;
  }
  EXPECT_GT(headers_accepted, 0);  // some mutations only touch values and stay valid
}

}  // namespace
}  // namespace fabric
