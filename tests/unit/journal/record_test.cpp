// Tests the journal's record codec: CRC-32C vectors and path agreement, sequence keys, round trips,
// a corruption table (after LevelDB's log_test) that every damaged value must fail, and the rule
// for records of format version 1.
#include "core/byte_order.hpp"
#include "journal/record.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::journal_detail {
namespace {

using bytes = std::vector<std::byte>;

// Bit-at-a-time CRC-32C: slow but obviously correct, an independent reference for both paths.
std::uint32_t crc32c_bitwise(std::uint32_t crc, const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  for (std::size_t i = 0; i < size; ++i) {
    c ^= p[i];
    for (int bit = 0; bit < 8; ++bit) c = (c & 1U) != 0 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
  }
  return ~c;
}

std::uint32_t crc_of(std::string_view s) { return crc32c(0, s.data(), s.size()); }

bytes random_bytes(std::mt19937& rng, std::size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  bytes out(n);
  for (auto& b : out) b = static_cast<std::byte>(byte(rng));
  return out;
}

constexpr std::string_view test_stream = "orders";

bytes encode(std::uint64_t seq, std::int64_t ts, std::uint8_t flags, std::string_view payload,
             std::string_view stream = test_stream) {
  bytes out(record_size(payload.size()));
  encode_record(stream, seq, ts, flags, payload, out.data());
  return out;
}

// Copies into an exactly sized heap buffer first, so that ASan flags any read past the end.
record_fault decode(std::uint64_t seq, const bytes& value, record_view& out,
                    std::string_view stream = test_stream) {
  const bytes exact(value.begin(), value.end());
  return decode_record(stream, seq, exact, out);
}

record_fault decode(std::uint64_t seq, const bytes& value, std::string_view stream = test_stream) {
  record_view out;
  return decode(seq, value, out, stream);
}

// The bytes a record's CRC covers before the value's own: the stream's name after its length
// (version 2 only), then the big-endian key. Written out here, independently of the codec.
bytes covered_prefix(std::uint8_t version, std::string_view stream, std::uint64_t seq) {
  bytes out;
  if (version == 2) {
    out.push_back(static_cast<std::byte>(stream.size()));
    for (char c : stream) out.push_back(static_cast<std::byte>(c));
  }
  out.resize(out.size() + 8);
  fabric::detail::store_be(seq, out.data() + out.size() - 8);
  return out;
}

// Recomputes the CRC after a test has edited a header field, so the check under test is the
// one that must catch the edit, not the CRC. `rule` is the version whose coverage to use.
void reseal(std::uint64_t seq, bytes& value, std::uint8_t rule = 2, std::string_view stream = test_stream) {
  const bytes prefix = covered_prefix(rule, stream, seq);
  std::uint32_t c = crc32c_bitwise(0, prefix.data(), prefix.size());
  c = crc32c_bitwise(c, value.data() + 4, value.size() - 4);
  fabric::detail::store_le(c, value.data());
}

// A record as version 1 wrote it: the same layout, version 1, the CRC over key and value only.
bytes encode_v1(std::uint64_t seq, std::int64_t ts, std::uint8_t flags, std::string_view payload) {
  bytes out = encode(seq, ts, flags, payload);
  out[4] = std::byte{1};
  reseal(seq, out, 1);
  return out;
}

void set_le32(bytes& value, std::size_t at, std::uint32_t v) {
  fabric::detail::store_le(v, value.data() + at);
}

constexpr std::uint64_t test_seq = 0x0123456789ABCDEFULL;
constexpr std::int64_t test_ts = 1'700'000'000'123'456'789LL;

// ---- CRC-32C ----

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc_of("123456789"), 0xE3069283U);
  EXPECT_EQ(crc32c_portable(0, "123456789", 9), 0xE3069283U);
  EXPECT_EQ(crc32c_bitwise(0, "123456789", 9), 0xE3069283U);
}

TEST(Crc32cTest, MatchesTheIscsiVectorsOfRfc3720) {
  unsigned char buf[32];
  std::memset(buf, 0, sizeof buf);
  EXPECT_EQ(crc32c(0, buf, sizeof buf), 0x8A9136AAU);
  EXPECT_EQ(crc32c_portable(0, buf, sizeof buf), 0x8A9136AAU);
  std::memset(buf, 0xFF, sizeof buf);
  EXPECT_EQ(crc32c(0, buf, sizeof buf), 0x62A8AB43U);
  EXPECT_EQ(crc32c_portable(0, buf, sizeof buf), 0x62A8AB43U);
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c(0, buf, sizeof buf), 0x46DD794EU);
  EXPECT_EQ(crc32c_portable(0, buf, sizeof buf), 0x46DD794EU);
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(crc32c(0, buf, sizeof buf), 0x113FDB5CU);
  EXPECT_EQ(crc32c_portable(0, buf, sizeof buf), 0x113FDB5CU);
}

TEST(Crc32cTest, EmptyInputLeavesTheChecksumUnchanged) {
  EXPECT_EQ(crc32c(0, nullptr, 0), 0U);
  EXPECT_EQ(crc32c_portable(0, nullptr, 0), 0U);
  EXPECT_EQ(crc32c(0xDEADBEEFU, "x", 0), 0xDEADBEEFU);
  EXPECT_EQ(crc32c_portable(0xDEADBEEFU, "x", 0), 0xDEADBEEFU);
}

TEST(Crc32cTest, ContinuingAChecksumEqualsChecksummingTheConcatenation) {
  std::mt19937 rng(1);
  const bytes data = random_bytes(rng, 300);
  const std::uint32_t whole = crc32c(0, data.data(), data.size());
  for (std::size_t split = 0; split <= data.size(); ++split) {
    const std::uint32_t head = crc32c(0, data.data(), split);
    EXPECT_EQ(crc32c(head, data.data() + split, data.size() - split), whole) << split;
    const std::uint32_t phead = crc32c_portable(0, data.data(), split);
    EXPECT_EQ(crc32c_portable(phead, data.data() + split, data.size() - split), whole) << split;
  }
  EXPECT_EQ(crc32c(crc_of("1234"), "56789", 5), 0xE3069283U);
}

TEST(Crc32cTest, HardwareAndPortablePathsAgreeOnEveryLengthAndAlignment) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  ::testing::Test::RecordProperty("sse42", __builtin_cpu_supports("sse4.2") != 0 ? "yes" : "no");
#endif
  std::mt19937 rng(2);
  const bytes data = random_bytes(rng, 4096 + 64);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (std::size_t n : {511U, 512U, 513U, 1000U, 4095U, 4096U}) lengths.push_back(n);
  std::uniform_int_distribution<std::uint32_t> seed;
  for (std::size_t offset = 0; offset < 16; ++offset) {
    for (std::size_t n : lengths) {
      const std::uint32_t init = offset % 2 == 0 ? 0U : seed(rng);
      const std::byte* p = data.data() + offset;
      const std::uint32_t expected = crc32c_bitwise(init, p, n);
      ASSERT_EQ(crc32c(init, p, n), expected) << "offset " << offset << " length " << n;
      ASSERT_EQ(crc32c_portable(init, p, n), expected) << "offset " << offset << " length " << n;
    }
  }
}

// ---- sequence keys ----

TEST(SeqKeyTest, EncodesBigEndian) {
  std::byte key[8];
  encode_seq_key(0x0102030405060708ULL, key);
  for (std::size_t i = 0; i < 8; ++i)
    EXPECT_EQ(std::to_integer<int>(key[i]), static_cast<int>(i + 1));
}

TEST(SeqKeyTest, RoundTripsAndSortsInSequenceOrder) {
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  const std::vector<std::uint64_t> seqs = {0,     1,          255,        256,     65535,
                                           65536, 1ULL << 32, 1ULL << 63, max - 1, max};
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    std::byte key[8];
    encode_seq_key(seqs[i], key);
    std::uint64_t back = 0;
    ASSERT_TRUE(decode_seq_key(key, back));
    EXPECT_EQ(back, seqs[i]);
    if (i > 0) {
      std::byte prev[8];
      encode_seq_key(seqs[i - 1], prev);
      EXPECT_LT(std::memcmp(prev, key, 8), 0) << seqs[i - 1] << " vs " << seqs[i];
    }
  }
}

TEST(SeqKeyTest, RefusesKeysThatAreNotEightBytes) {
  const bytes nine(9);
  std::uint64_t seq = 42;
  for (std::size_t n : {0U, 1U, 7U, 9U}) {
    EXPECT_FALSE(decode_seq_key(std::span<const std::byte>(nine.data(), n), seq)) << n;
  }
  EXPECT_EQ(seq, 42U);
}

// ---- round trips ----

void expect_round_trip(std::uint64_t seq, std::int64_t ts, std::uint8_t flags,
                       std::string_view payload) {
  const bytes value = encode(seq, ts, flags, payload);
  ASSERT_EQ(value.size(), record_header_size + payload.size());
  record_view out;
  ASSERT_EQ(decode_record(test_stream, seq, value, out), record_fault::none);
  EXPECT_EQ(out.version, record_version);
  EXPECT_EQ(out.seq, seq);
  EXPECT_EQ(out.timestamp_ns, ts);
  EXPECT_EQ(out.flags, flags);
  EXPECT_EQ(out.payload.size(), payload.size());
  EXPECT_TRUE(out.payload == payload);
  // Decoded in place, not copied.
  EXPECT_EQ(static_cast<const void*>(out.payload.data()),
            static_cast<const void*>(value.data() + record_header_size));
}

TEST(RecordRoundTripTest, EmptyPayload) { expect_round_trip(test_seq, test_ts, 0, ""); }

TEST(RecordRoundTripTest, OneBytePayload) { expect_round_trip(test_seq, test_ts, 0, "x"); }

TEST(RecordRoundTripTest, OneMebibytePayload) {
  std::mt19937 rng(3);
  const bytes random = random_bytes(rng, 1U << 20);
  expect_round_trip(test_seq, test_ts, 0,
                    std::string_view(reinterpret_cast<const char*>(random.data()), random.size()));
}

TEST(RecordRoundTripTest, BinaryPayloadWithZeros) {
  std::string payload(3, '\0');
  for (int i = 0; i < 256; ++i) payload.push_back(static_cast<char>(i));
  payload.append(3, '\0');
  expect_round_trip(test_seq, test_ts, 0, payload);
}

TEST(RecordRoundTripTest, EnvelopeFlag) {
  expect_round_trip(test_seq, test_ts, flag_envelope, "FAB1");
}

TEST(RecordRoundTripTest, NegativeTimestamps) {
  expect_round_trip(test_seq, -1, 0, "before the epoch");
  expect_round_trip(test_seq, std::numeric_limits<std::int64_t>::min(), 0, "min");
  expect_round_trip(test_seq, std::numeric_limits<std::int64_t>::max(), 0, "max");
}

TEST(RecordRoundTripTest, SequenceNumberZeroAndMaximum) {
  expect_round_trip(0, test_ts, 0, "first");
  expect_round_trip(std::numeric_limits<std::uint64_t>::max(), test_ts, flag_envelope, "last");
}

TEST(RecordRoundTripTest, LayoutFollowsTheGrammar) {
  const bytes v = encode(test_seq, test_ts, flag_envelope, "abc");
  ASSERT_EQ(v.size(), 23U);
  auto at = [&](std::size_t i) { return std::to_integer<unsigned>(v[i]); };
  EXPECT_EQ(at(4), 2U);  // version
  EXPECT_EQ(at(5), 1U);  // flags
  EXPECT_EQ(at(6), 0U);
  EXPECT_EQ(at(7), 0U);
  EXPECT_EQ(at(8), 3U);  // length, little-endian
  EXPECT_EQ(at(9) | at(10) | at(11), 0U);
  EXPECT_EQ(fabric::detail::load_le<std::uint64_t>(v.data() + 12), static_cast<std::uint64_t>(test_ts));
  EXPECT_EQ(at(20), static_cast<unsigned>('a'));
  EXPECT_EQ(at(22), static_cast<unsigned>('c'));

  // The CRC is over the stream's length and name, the big-endian key, then the value after the
  // CRC field.
  bytes covered;
  covered.push_back(std::byte{6});
  for (char c : std::string_view("orders")) covered.push_back(static_cast<std::byte>(c));
  covered.resize(covered.size() + 8);
  fabric::detail::store_be(test_seq, covered.data() + covered.size() - 8);
  covered.insert(covered.end(), v.begin() + 4, v.end());
  const std::uint32_t crc = crc32c_bitwise(0, covered.data(), covered.size());
  EXPECT_EQ(at(0) | at(1) << 8 | at(2) << 16 | at(3) << 24, crc);
}

TEST(RecordRoundTripTest, FailedDecodeLeavesTheOutputUntouched) {
  bytes v = encode(test_seq, test_ts, 0, "payload");
  v.back() ^= std::byte{1};
  record_view out;
  out.seq = 7;
  out.payload = "old";
  ASSERT_EQ(decode(test_seq, v, out), record_fault::bad_crc);
  EXPECT_EQ(out.seq, 7U);
  EXPECT_EQ(out.payload, "old");
}

// ---- faults ----

TEST(RecordFaultTest, EveryFaultHasDistinctText) {
  const record_fault all[] = {record_fault::none,         record_fault::too_short,
                              record_fault::bad_version,  record_fault::bad_length,
                              record_fault::bad_reserved, record_fault::bad_crc};
  std::set<std::string_view> texts;
  for (record_fault f : all) {
    EXPECT_FALSE(to_string(f).empty());
    texts.insert(to_string(f));
  }
  EXPECT_EQ(texts.size(), std::size(all));
  EXPECT_NE(to_string(record_fault::bad_crc).find("CRC"), std::string_view::npos);
}

// ---- corruption table ----

// The fault a single flipped bit must produce, from the field it lands in.
record_fault fault_for_bit_flip(std::size_t byte, int bit) {
  if (byte < 4) return record_fault::bad_crc;
  if (byte == 4) return record_fault::bad_version;
  if (byte == 5) return bit == 0 ? record_fault::bad_crc : record_fault::bad_reserved;
  if (byte < 8) return record_fault::bad_reserved;
  if (byte < 12) return record_fault::bad_length;
  return record_fault::bad_crc;  // timestamp and payload
}

void expect_every_bit_flip_refused(std::uint8_t flags, std::string_view payload) {
  const bytes good = encode(test_seq, test_ts, flags, payload);
  ASSERT_EQ(decode(test_seq, good), record_fault::none);
  for (std::size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      bytes bad = good;
      bad[byte] ^= static_cast<std::byte>(1U << bit);
      const record_fault f = decode(test_seq, bad);
      EXPECT_NE(f, record_fault::none) << "byte " << byte << " bit " << bit;
      EXPECT_EQ(f, fault_for_bit_flip(byte, bit)) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(RecordCorruptionTest, EveryBitFlipIsRefused) {
  expect_every_bit_flip_refused(0, "hello, journal");
}

TEST(RecordCorruptionTest, EveryBitFlipInAnEmptyEnvelopeRecordIsRefused) {
  expect_every_bit_flip_refused(flag_envelope, "");
}

TEST(RecordCorruptionTest, TruncatedValuesAreRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "a payload long enough to cut");
  for (std::size_t n = 0; n < good.size(); ++n) {
    const bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    const record_fault want =
        n < record_header_size ? record_fault::too_short : record_fault::bad_length;
    EXPECT_EQ(decode(test_seq, cut), want) << "length " << n;
  }
}

TEST(RecordCorruptionTest, ValuesWithTrailingBytesAreRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  std::mt19937 rng(4);
  for (std::size_t extra = 1; extra <= 64; ++extra) {
    bytes zeros = good;
    zeros.resize(good.size() + extra);
    EXPECT_EQ(decode(test_seq, zeros), record_fault::bad_length) << extra;
    bytes random = good;
    const bytes tail = random_bytes(rng, extra);
    random.insert(random.end(), tail.begin(), tail.end());
    EXPECT_EQ(decode(test_seq, random), record_fault::bad_length) << extra;
  }
}

TEST(RecordCorruptionTest, WrongLengthFieldIsRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  const auto real = static_cast<std::uint32_t>(good.size() - record_header_size);
  const struct {
    const char* name;
    std::uint32_t length;
  } cases[] = {{"bigger", real + 1},
               {"smaller", real - 1},
               {"zero", 0},
               {"huge", 0xFFFFFFFFU},
               {"high bit", real | 0x80000000U}};
  for (const auto& c : cases) {
    bytes bad = good;
    set_le32(bad, 8, c.length);
    EXPECT_EQ(decode(test_seq, bad), record_fault::bad_length) << c.name;
    reseal(test_seq, bad);
    EXPECT_EQ(decode(test_seq, bad), record_fault::bad_length) << c.name << " with a matching CRC";
  }
}

TEST(RecordCorruptionTest, UnknownVersionsAreRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  for (unsigned version : {0U, 3U, 255U}) {
    bytes bad = good;
    bad[4] = static_cast<std::byte>(version);
    EXPECT_EQ(decode(test_seq, bad), record_fault::bad_version) << version;
    reseal(test_seq, bad);
    EXPECT_EQ(decode(test_seq, bad), record_fault::bad_version)
        << version << " with a matching CRC";
  }
}

TEST(RecordCorruptionTest, NonzeroReservedBytesAreRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  for (std::size_t at : {6U, 7U}) {
    for (unsigned v : {1U, 0x80U, 0xFFU}) {
      bytes bad = good;
      bad[at] = static_cast<std::byte>(v);
      EXPECT_EQ(decode(test_seq, bad), record_fault::bad_reserved) << at << " = " << v;
      reseal(test_seq, bad);
      EXPECT_EQ(decode(test_seq, bad), record_fault::bad_reserved)
          << at << " = " << v << " resealed";
    }
  }
}

TEST(RecordCorruptionTest, UnknownFlagBitsAreRefused) {
  const bytes good = encode(test_seq, test_ts, flag_envelope, "payload");
  for (int bit = 1; bit < 8; ++bit) {
    bytes bad = good;
    bad[5] |= static_cast<std::byte>(1U << bit);
    EXPECT_EQ(decode(test_seq, bad), record_fault::bad_reserved) << "bit " << bit;
    reseal(test_seq, bad);
    EXPECT_EQ(decode(test_seq, bad), record_fault::bad_reserved) << "bit " << bit << " resealed";
  }
}

TEST(RecordCorruptionTest, RecordUnderTheWrongSequenceNumberIsRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  const std::uint64_t wrong[] = {test_seq + 1,
                                 test_seq - 1,
                                 0,
                                 std::numeric_limits<std::uint64_t>::max(),
                                 0xEFCDAB8967452301ULL,  // byte-reversed
                                 test_seq ^ (1ULL << 63)};
  for (std::uint64_t seq : wrong) EXPECT_EQ(decode(seq, good), record_fault::bad_crc) << seq;
}

TEST(RecordCorruptionTest, PayloadFromAnotherRecordOfTheSameSizeIsRefused) {
  const bytes a = encode(test_seq, test_ts, 0, "payload A");
  const bytes b = encode(test_seq, test_ts, 0, "payload B");
  bytes spliced = a;
  std::copy(b.begin() + record_header_size, b.end(), spliced.begin() + record_header_size);
  EXPECT_EQ(decode(test_seq, spliced), record_fault::bad_crc);
}

TEST(RecordCorruptionTest, TornRecordWithAZeroedTailIsRefused) {
  const bytes good = encode(test_seq, test_ts, 0, std::string(100, 'p'));
  for (std::size_t from = record_header_size; from < good.size(); from += 7) {
    bytes torn = good;
    std::fill(torn.begin() + static_cast<std::ptrdiff_t>(from), torn.end(), std::byte{0});
    EXPECT_EQ(decode(test_seq, torn), record_fault::bad_crc) << "zeroed from " << from;
  }
}

TEST(RecordCorruptionTest, ZeroedValuesAreRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  const bytes same_size(good.size());
  EXPECT_EQ(decode(test_seq, same_size), record_fault::bad_version);
  for (std::size_t n = 0; n <= 64; ++n) {
    EXPECT_NE(decode(test_seq, bytes(n)), record_fault::none) << n;
    EXPECT_NE(decode(0, bytes(n)), record_fault::none) << n;
  }
}

TEST(RecordCorruptionTest, RandomValuesAreRefused) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::size_t> size(0, 64);
  for (int i = 0; i < 10'000; ++i) {
    const bytes v = random_bytes(rng, size(rng));
    ASSERT_NE(decode(test_seq, v), record_fault::none) << "iteration " << i;
  }
}

TEST(RecordCorruptionTest, RandomValuesWithAPlausibleHeaderAreRefused) {
  // Past the cheap checks, only the CRC stands between random bytes and a decoded record.
  std::mt19937 rng(6);
  std::uniform_int_distribution<std::size_t> size(record_header_size, 64);
  for (int i = 0; i < 10'000; ++i) {
    bytes v = random_bytes(rng, size(rng));
    v[4] = std::byte{record_version};
    v[5] &= std::byte{flag_envelope};
    v[6] = v[7] = std::byte{0};
    set_le32(v, 8, static_cast<std::uint32_t>(v.size() - record_header_size));
    ASSERT_EQ(decode(test_seq, v), record_fault::bad_crc) << "iteration " << i;
  }
}

TEST(RecordCorruptionTest, RecordCopiedIntoAnotherStreamIsRefused) {
  const bytes good = encode(test_seq, test_ts, 0, "payload", "beta");
  ASSERT_EQ(decode(test_seq, good, "beta"), record_fault::none);
  // Other names, including ones that share a prefix with it, one byte off, or that would read
  // the same if the length byte were left out ("bet" + "a..." of the key).
  const std::vector<std::string> others = {"alpha", "bet", "betaa", "Beta", "betb", "b", std::string("beta\0", 5),
                                           std::string(200, 'a')};
  for (const std::string& other : others)
    EXPECT_EQ(decode(test_seq, good, other), record_fault::bad_crc) << other;
}

TEST(RecordCorruptionTest, AVersionTwoRecordCannotBeReadAsVersionOne) {
  // Relabelling a record as the older version changes the rule its CRC is checked under.
  bytes relabelled = encode(test_seq, test_ts, 0, "payload");
  relabelled[4] = std::byte{1};
  EXPECT_EQ(decode(test_seq, relabelled), record_fault::bad_crc);
  for (std::string_view other : {"alpha", "beta"}) EXPECT_EQ(decode(test_seq, relabelled, other), record_fault::bad_crc);
}

TEST(RecordCorruptionTest, AStreamNameThatCannotHaveBeenWrittenFailsEveryRecord) {
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  EXPECT_EQ(decode(test_seq, good, ""), record_fault::bad_crc);
  EXPECT_EQ(decode(test_seq, good, std::string(256, 's')), record_fault::bad_crc);
}

TEST(RecordRoundTripTest, TheLongestStreamNameRoundTrips) {
  const std::string longest(max_stream_name_size, 'n');
  const bytes v = encode(test_seq, test_ts, 0, "payload", longest);
  record_view out;
  ASSERT_EQ(decode(test_seq, v, out, longest), record_fault::none);
  EXPECT_EQ(out.payload, "payload");
  EXPECT_EQ(decode(test_seq, v, longest.substr(1)), record_fault::bad_crc);
}

TEST(RecordRoundTripTest, CheckingTheHeadThenTheRestInPiecesAgreesWithDecode) {
  std::mt19937 rng(7);
  const bytes random = random_bytes(rng, 10'000);
  const std::string_view payload(reinterpret_cast<const char*>(random.data()), random.size());
  for (const bytes& value : {encode(test_seq, test_ts, 0, payload), encode_v1(test_seq, test_ts, 0, payload)}) {
    std::uint32_t crc = 0;
    std::uint32_t expected = 0;
    const std::span<const std::byte> head(value.data(), record_header_size);
    ASSERT_EQ(check_record_head(test_stream, test_seq, head, value.size(), crc, expected), record_fault::none);
    for (std::size_t at = record_crc_from; at < value.size(); at += 997)
      crc = crc32c(crc, value.data() + at, std::min<std::size_t>(997, value.size() - at));
    EXPECT_EQ(crc, expected);
    bytes bad = value;
    bad[5000] ^= std::byte{0x10};
    ASSERT_EQ(check_record_head(test_stream, test_seq, head, bad.size(), crc, expected), record_fault::none);
    crc = crc32c(crc, bad.data() + record_crc_from, bad.size() - record_crc_from);
    EXPECT_NE(crc, expected);
  }
  std::uint32_t crc = 0;
  std::uint32_t expected = 0;
  const bytes good = encode(test_seq, test_ts, 0, "payload");
  EXPECT_EQ(check_record_head(test_stream, test_seq, std::span<const std::byte>(good.data(), 10), good.size(), crc,
                              expected),
            record_fault::too_short);
  EXPECT_EQ(check_record_head(test_stream, test_seq, good, good.size() + 1, crc, expected), record_fault::bad_length);
}

// ---- version 1 ----

TEST(RecordVersion1Test, AVersionOneRecordIsReadUnderItsOwnRule) {
  const bytes v1 = encode_v1(test_seq, test_ts, flag_envelope, "FAB1 old");
  record_view out;
  ASSERT_EQ(decode(test_seq, v1, out), record_fault::none);
  EXPECT_EQ(out.version, record_version_1);
  EXPECT_EQ(out.seq, test_seq);
  EXPECT_EQ(out.timestamp_ns, test_ts);
  EXPECT_EQ(out.flags, flag_envelope);
  EXPECT_EQ(out.payload, "FAB1 old");
}

TEST(RecordVersion1Test, AVersionOneRecordIsNotBoundToItsStream) {
  // The documented limit of the older format: its CRC never covered the stream.
  const bytes v1 = encode_v1(test_seq, test_ts, 0, "payload");
  for (std::string_view stream : {"alpha", "beta", ""}) EXPECT_EQ(decode(test_seq, v1, stream), record_fault::none);
}

TEST(RecordVersion1Test, AVersionOneRecordUnderTheWrongSequenceNumberIsRefused) {
  const bytes v1 = encode_v1(test_seq, test_ts, 0, "payload");
  for (std::uint64_t seq : {test_seq + 1, test_seq - 1, std::uint64_t{0}}) EXPECT_EQ(decode(seq, v1), record_fault::bad_crc);
}

TEST(RecordVersion1Test, EveryBitFlipInAVersionOneRecordIsRefused) {
  const bytes good = encode_v1(test_seq, test_ts, 0, "old payload");
  for (std::size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      bytes bad = good;
      bad[byte] ^= static_cast<std::byte>(1U << bit);
      const record_fault f = decode(test_seq, bad);
      EXPECT_NE(f, record_fault::none) << "byte " << byte << " bit " << bit;
      // No single flip turns version 1 into 2: the version byte always fails as unknown.
      EXPECT_EQ(f, fault_for_bit_flip(byte, bit)) << "byte " << byte << " bit " << bit;
    }
  }
}

}  // namespace
}  // namespace fabric::journal_detail
