// Fuzz target: the journal's record decoder (src/journal/record.hpp), the one reader of every
// value stored in LMDB. The input gives the stream name, the sequence and the value; with the
// first octet's bit 0 set the target writes the correct CRC into the value first, so that the
// fuzzer reaches what is checked after the CRC. A decoded version-2 record must encode to the
// same bytes, the piecewise check (check_record_head) must agree with decode_record, and both
// CRC paths must agree.
#include "fuzz_frames.hpp"

#include "journal/record.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using fabric::fuzz::check;
namespace jd = fabric::journal_detail;

// The CRC decode_record expects for `value` stored under `seq` in `stream`, by the grammar in
// record.hpp, computed here independently of record.cpp.
std::uint32_t expected_crc(std::string_view stream, std::uint64_t seq, const std::vector<std::byte>& value) {
  std::uint32_t crc = 0;
  if (value[jd::record_crc_from] != std::byte{jd::record_version_1}) {
    const auto length = static_cast<unsigned char>(stream.size());
    crc = jd::crc32c(crc, &length, 1);
    crc = jd::crc32c(crc, stream.data(), stream.size());
  }
  std::byte key[8];
  jd::encode_seq_key(seq, key);
  crc = jd::crc32c(crc, key, sizeof key);
  return jd::crc32c(crc, value.data() + jd::record_crc_from, value.size() - jd::record_crc_from);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const std::string stream(in.frame_bytes());
  const std::uint64_t seq = in.number(8);
  const std::string_view rest = in.rest();
  std::vector<std::byte> value(rest.size());
  if (!rest.empty()) std::memcpy(value.data(), rest.data(), rest.size());

  const bool fix_crc = (mode & 1) != 0 && value.size() >= jd::record_header_size &&
                       !stream.empty() && stream.size() <= jd::max_stream_name_size;
  if (fix_crc) {
    const std::uint32_t crc = expected_crc(stream, seq, value);
    for (std::size_t i = 0; i < 4; ++i) value[i] = static_cast<std::byte>((crc >> (8 * i)) & 0xFF);
  }

  check(jd::crc32c(0, value.data(), value.size()) == jd::crc32c_portable(0, value.data(), value.size()),
        "the hardware and portable CRC-32C disagree");
  std::uint64_t key_seq = 0;
  if (jd::decode_seq_key(std::span(value).first(value.size() < 8 ? value.size() : 8), key_seq)) {
    std::byte key[8];
    jd::encode_seq_key(key_seq, key);
    check(std::memcmp(key, value.data(), 8) == 0, "a sequence key reads back differently");
  }

  jd::record_view view;
  const jd::record_fault fault = jd::decode_record(stream, seq, value, view);
  check(!jd::to_string(fault).empty(), "a fault without a description");

  // The piecewise check, given the head and finishing the CRC itself, reaches the same verdict.
  std::uint32_t crc = 0;
  std::uint32_t stored = 0;
  const std::size_t head = value.size() < jd::record_header_size ? value.size() : jd::record_header_size;
  jd::record_fault piecewise = jd::check_record_head(stream, seq, std::span(value).first(head), value.size(), crc, stored);
  if (piecewise == jd::record_fault::none &&
      jd::crc32c(crc, value.data() + jd::record_crc_from, value.size() - jd::record_crc_from) != stored)
    piecewise = jd::record_fault::bad_crc;
  check(piecewise == fault, "check_record_head and decode_record disagree");

  if (fix_crc && value[jd::record_crc_from] == std::byte{jd::record_version} &&
      value[jd::record_crc_from + 1] <= std::byte{jd::flag_envelope} && value[6] == std::byte{0} &&
      value[7] == std::byte{0}) {
    const std::uint32_t length = static_cast<std::uint32_t>(value[8]) | static_cast<std::uint32_t>(value[9]) << 8 |
                                 static_cast<std::uint32_t>(value[10]) << 16 | static_cast<std::uint32_t>(value[11]) << 24;
    if (length == value.size() - jd::record_header_size)
      check(fault == jd::record_fault::none, "a well-formed record with its correct CRC was refused");
  }
  if (fault != jd::record_fault::none) return 0;

  check(view.seq == seq && view.payload.size() + jd::record_header_size == value.size(),
        "a decoded record's fields disagree with its value");
  check(view.payload.data() == reinterpret_cast<const char*>(value.data()) + jd::record_header_size,
        "the payload does not point into the value");
  if (view.version == jd::record_version) {
    std::vector<std::byte> again(jd::record_size(view.payload.size()));
    jd::encode_record(stream, seq, view.timestamp_ns, view.flags, view.payload, again.data());
    check(again == value, "a version-2 record does not encode to the bytes it was decoded from");
  }
  return 0;
}
