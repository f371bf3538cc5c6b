// Tests of fabric-journal, run as a child process against journals built with the library: each
// subcommand's output and exit code, --json well-formedness, corrupt records and refusals.
#include <fabric/journal.hpp>
#include <fabric/reliable_channel.hpp>

#include "core/byte_order.hpp"
#include "journal/record.hpp"
#include "reliability/frc_receiver.hpp"
#include "reliability/frc_sender.hpp"
#include "support/damaged_journal.hpp"
#include "support/process.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using fabric::durability;
using fabric::journal;
using fabric::journal_options;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

#ifdef FABRIC_JOURNAL_TOOL
constexpr std::string_view tool_path = FABRIC_JOURNAL_TOOL;
#else
constexpr std::string_view tool_path;  // tools not built: every test skips
#endif

using clock_type = std::chrono::steady_clock;

// fabric-journal running in a child process (see support/process.hpp).
class tool_process : public fabric::testing::child_process {
 public:
  explicit tool_process(const std::vector<std::string>& args) : child_process(with_tool(args)) {}

 private:
  static std::vector<std::string> with_tool(const std::vector<std::string>& args) {
    std::vector<std::string> words{std::string(tool_path)};
    words.insert(words.end(), args.begin(), args.end());
    return words;
  }
};

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

run_result run_tool(const std::vector<std::string>& args) {
  tool_process p(args);
  const int code = p.finish();
  return {code, p.out, p.err};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A strict little JSON checker: enough to catch a missing comma, quote, brace or bracket.
class json_checker {
 public:
  static bool well_formed(std::string_view text) {
    json_checker c(text);
    c.space();
    if (!c.value()) return false;
    c.space();
    return c.at_ == text.size();
  }

 private:
  explicit json_checker(std::string_view text) : s_(text) {}

  bool value() {
    if (at_ >= s_.size()) return false;
    switch (s_[at_]) {
      case '{': return container('}', true);
      case '[': return container(']', false);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  bool container(char close, bool object) {
    ++at_;
    space();
    if (eat(close)) return true;
    for (;;) {
      space();
      if (object) {
        if (!string()) return false;
        space();
        if (!eat(':')) return false;
        space();
      }
      if (!value()) return false;
      space();
      if (eat(close)) return true;
      if (!eat(',')) return false;
    }
  }

  bool string() {
    if (!eat('"')) return false;
    while (at_ < s_.size()) {
      const char c = s_[at_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '\\') {
        if (at_ >= s_.size()) return false;
        const char e = s_[at_++];
        if (e == 'u') {
          for (int k = 0; k < 4; ++k)
            if (at_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[at_++]))) return false;
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
      }
    }
    return false;
  }

  bool number() {
    const std::size_t start = at_;
    eat('-');
    while (at_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[at_])) || s_[at_] == '.' ||
                               s_[at_] == 'e' || s_[at_] == 'E' || s_[at_] == '+' || s_[at_] == '-'))
      ++at_;
    return at_ > start && std::isdigit(static_cast<unsigned char>(s_[at_ - 1]));
  }

  bool literal(std::string_view word) {
    if (s_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  bool eat(char c) {
    if (at_ < s_.size() && s_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }

  void space() {
    while (at_ < s_.size() && std::string_view(" \t\r\n").find(s_[at_]) != std::string_view::npos) ++at_;
  }

  std::string_view s_;
  std::size_t at_ = 0;
};

// Whether `doc` has `"key":` followed by `value` (pass "" for any value).
bool has_field(const std::string& doc, const std::string& key, const std::string& value = "") {
  return doc.find("\"" + key + "\":" + value) != std::string::npos;
}


class JournalToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tool_path.empty()) GTEST_SKIP() << "fabric-journal is not built (FABRIC_BUILD_TOOLS=OFF)";
  }

  std::string path() const { return dir_.path().string(); }

  // Appends `count` records "<prefix> 1".."<prefix> count" to `stream`.
  void append(const std::string& stream, const std::string& prefix, int count) {
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    for (int i = 1; i <= count; ++i)
      ASSERT_TRUE(j.append_wait(stream, prefix + " " + std::to_string(i)));
  }

  void append_payloads(const std::string& stream, const std::vector<std::string>& payloads) {
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    for (const auto& p : payloads) ASSERT_TRUE(j.append_wait(stream, p));
  }

  temp_dir dir_;
};

// ---- arguments

TEST_F(JournalToolTest, HelpIsAvailableForTheToolAndEverySubcommand) {
  const auto top = run_tool({"--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* sub : {"stats", "streams", "channels", "tail", "dump", "verify", "compact"}) {
    EXPECT_NE(top.out.find(sub), std::string::npos) << sub;
    const auto help = run_tool({sub, "--help"});
    EXPECT_EQ(help.code, 0) << sub;
    EXPECT_NE(help.out.find("Usage:"), std::string::npos) << sub;
    EXPECT_NE(help.out.find("dir"), std::string::npos) << sub;
  }
}

TEST_F(JournalToolTest, NoSubcommandOrAnUnknownOneIsABadArgument) {
  const auto none = run_tool({});
  EXPECT_EQ(none.code, 64);
  EXPECT_FALSE(none.err.empty());
  const auto unknown = run_tool({"frobnicate", path()});
  EXPECT_EQ(unknown.code, 64);
  EXPECT_FALSE(unknown.err.empty());
}

TEST_F(JournalToolTest, AMissingStreamOptionOrDirectoryIsABadArgument) {
  append("orders", "order", 1);
  const auto no_stream = run_tool({"dump", path()});
  EXPECT_EQ(no_stream.code, 64);
  EXPECT_NE(no_stream.err.find("--stream"), std::string::npos) << no_stream.err;
  EXPECT_EQ(run_tool({"stats"}).code, 64);
  EXPECT_EQ(run_tool({"compact", path()}).code, 64);
  EXPECT_EQ(run_tool({"dump", path(), "-s", "orders", "--from", "0"}).code, 64);
  EXPECT_EQ(run_tool({"tail", path(), "-s", "orders", "-n", "many"}).code, 64);
}

TEST_F(JournalToolTest, MaxWaitWithoutFollowIsABadArgument) {
  append("orders", "order", 1);
  EXPECT_EQ(run_tool({"tail", path(), "-s", "orders", "--max-wait-ms", "10"}).code, 64);
}

// ---- refusals

TEST_F(JournalToolTest, AMissingDirectoryIsRefusedAndNotCreated) {
  const std::string missing = (dir_.path() / "nowhere").string();
  for (const char* sub : {"stats", "streams", "verify"}) {
    const auto r = run_tool({sub, missing});
    EXPECT_EQ(r.code, 1) << sub;
    EXPECT_NE(r.err.find("no such directory: " + missing), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(missing));
}

TEST_F(JournalToolTest, ADirectoryWithoutDataMdbIsRefusedAndNotTurnedIntoAJournal) {
  const std::vector<std::vector<std::string>> commands{
      {"stats", path()},  {"streams", path()}, {"verify", path()},
      {"tail", path(), "-s", "x"}, {"dump", path(), "-s", "x"}, {"compact", path(), path() + "-copy"}};
  for (const auto& args : commands) {
    const auto r = run_tool(args);
    EXPECT_EQ(r.code, 1) << args[0];
    EXPECT_NE(r.err.find("not a journal: " + path() + " has no data.mdb"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  EXPECT_TRUE(fs::is_empty(dir_.path()));
  EXPECT_FALSE(fs::exists(path() + "-copy"));
}

TEST_F(JournalToolTest, AFileInsteadOfADirectoryIsRefused) {
  const fs::path file = dir_.path() / "plain";
  std::ofstream(file) << "not a journal";
  const auto r = run_tool({"stats", file.string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
}

TEST_F(JournalToolTest, AnUnknownStreamIsAnErrorThatNamesTheStreamsThereAre) {
  append("orders", "order", 2);
  append("audit", "entry", 1);
  for (const char* sub : {"tail", "dump"}) {
    const auto r = run_tool({sub, path(), "--stream", "nosuch"});
    EXPECT_EQ(r.code, 1) << sub;
    EXPECT_NE(r.err.find("unknown stream 'nosuch'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("audit, orders"), std::string::npos) << r.err;
  }
}

// ---- stats and streams

TEST_F(JournalToolTest, StatsShowsSizesStreamsAndRecordTotals) {
  append("orders", "order", 5);
  append("audit", "entry", 3);
  const auto r = run_tool({"stats", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto size = fs::file_size(dir_.path() / "data.mdb");
  EXPECT_NE(r.out.find("(" + std::to_string(size) + " bytes)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("map size"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("streams    2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("records    8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("orders      1     5        5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("audit       1     3        3"), std::string::npos) << r.out;
}

TEST_F(JournalToolTest, StatsJsonIsWellFormedWithEveryKey) {
  append("orders", "order", 5);
  append("audit", "entry", 3);
  const auto r = run_tool({"--json", "stats", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(json_checker::well_formed(r.out)) << r.out;
  const auto size = fs::file_size(dir_.path() / "data.mdb");
  EXPECT_TRUE(has_field(r.out, "data_file_bytes", std::to_string(size))) << r.out;
  EXPECT_TRUE(has_field(r.out, "map_size_bytes")) << r.out;
  EXPECT_TRUE(has_field(r.out, "stream_count", "2")) << r.out;
  EXPECT_TRUE(has_field(r.out, "records", "8")) << r.out;
  EXPECT_NE(r.out.find(R"({"name":"audit","first_seq":1,"last_seq":3,"records":3})"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(R"({"name":"orders","first_seq":1,"last_seq":5,"records":5})"), std::string::npos)
      << r.out;
}

TEST_F(JournalToolTest, StreamsPrintsOneLinePerStreamWithItsExtent) {
  append("orders", "order", 12);
  append("audit", "entry", 3);
  const auto r = run_tool({"streams", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines_of(r.out), (std::vector<std::string>{"STREAM  FIRST  LAST  RECORDS",
                                                       "audit       1     3        3",
                                                       "orders      1    12       12"}));
}

TEST_F(JournalToolTest, StreamsJsonListsEveryStreamAndAnEmptyJournalHasNone) {
  append("orders", "order", 2);
  const auto r = run_tool({"streams", path(), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(json_checker::well_formed(r.out)) << r.out;
  EXPECT_EQ(r.out, "{\"streams\":[{\"name\":\"orders\",\"first_seq\":1,\"last_seq\":2,\"records\":2}]}\n");

  temp_dir empty;
  { auto j = journal::open(empty.path(), fabric::testing::fast_journal_options()); }
  const auto none = run_tool({"--json", "streams", empty.path().string()});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(none.out, "{\"streams\":[]}\n");
  const auto plain = run_tool({"streams", empty.path().string()});
  EXPECT_EQ(plain.code, 0);
  EXPECT_TRUE(plain.out.empty()) << plain.out;
}

// ---- dump

TEST_F(JournalToolTest, DumpPrintsEveryRecordWithSeqTimestampSizeAndText) {
  append("orders", "order", 3);
  const auto r = run_tool({"dump", path(), "--stream", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    EXPECT_EQ(lines[i].rfind(n + "  ", 0), 0u) << lines[i];
    EXPECT_NE(lines[i].find("Z  7 bytes  text: order " + n), std::string::npos) << lines[i];
  }
}

TEST_F(JournalToolTest, DumpHonoursFromAndCount) {
  append("orders", "order", 3000);  // more than one read chunk
  const auto middle = run_tool({"dump", path(), "-s", "orders", "--from", "1500", "--count", "3"});
  ASSERT_EQ(middle.code, 0) << middle.err;
  const auto lines = lines_of(middle.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("text: order 1500"), std::string::npos);
  EXPECT_NE(lines[2].find("text: order 1502"), std::string::npos);

  const auto rest = run_tool({"dump", path(), "-s", "orders", "--from", "1001"});
  ASSERT_EQ(rest.code, 0) << rest.err;
  const auto rest_lines = lines_of(rest.out);
  ASSERT_EQ(rest_lines.size(), 2000u);
  EXPECT_NE(rest_lines.front().find("text: order 1001"), std::string::npos);
  EXPECT_NE(rest_lines.back().find("text: order 3000"), std::string::npos);

  const auto past = run_tool({"dump", path(), "-s", "orders", "--from", "3001"});
  EXPECT_EQ(past.code, 0);
  EXPECT_TRUE(past.out.empty());
}

TEST_F(JournalToolTest, DumpShowsBinaryPayloadsAsHexAndHexForcesIt) {
  append_payloads("mixed", {std::string("\x00\xff\x10", 3), "two\nlines", "\x1b[31mred", "héllo"});
  const auto r = run_tool({"dump", path(), "-s", "mixed"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_NE(lines[0].find("3 bytes  hex: 00ff10"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("9 bytes  text: two\\nlines"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("hex: 1b5b33316d726564"), std::string::npos) << lines[2];  // no terminal escapes
  EXPECT_NE(lines[3].find("6 bytes  text: héllo"), std::string::npos) << lines[3];

  const auto hex = run_tool({"dump", path(), "-s", "mixed", "--hex", "--from", "4"});
  ASSERT_EQ(hex.code, 0) << hex.err;
  EXPECT_NE(hex.out.find("hex: 68c3a96c6c6f"), std::string::npos) << hex.out;
}

// Parses 2024-05-01T12:34:56.123456789Z to ns since the epoch, independently of the tool.
bool parse_iso8601(const std::string& s, std::int64_t& ns) {
  std::tm tm{};
  long long fraction = 0;
  char zone = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%9lld%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &fraction, &zone) != 8 ||
      zone != 'Z' || s.size() != 30)
    return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  ns = static_cast<std::int64_t>(::timegm(&tm)) * 1'000'000'000 + fraction;
  return true;
}

TEST_F(JournalToolTest, DumpTimestampsAreIso8601UtcWithNanosecondsAndMatchTheJournal) {
  append("orders", "order", 3);
  std::vector<fabric::journal_record> records;
  {
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    auto chunk = j.read("orders", 1);
    ASSERT_TRUE(chunk);
    records = chunk->records;
  }
  const auto r = run_tool({"dump", path(), "-s", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), records.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto start = lines[i].find("  ") + 2;
    const std::string stamp = lines[i].substr(start, lines[i].find("  ", start) - start);
    std::int64_t ns = 0;
    ASSERT_TRUE(parse_iso8601(stamp, ns)) << stamp;
    EXPECT_EQ(ns, records[i].timestamp_ns) << stamp;
  }
}

TEST_F(JournalToolTest, DumpJsonGivesBase64AndTextOnlyForPrintablePayloads) {
  append_payloads("mixed", {"hello", std::string("\x00\xff", 2), "say \"hi\"\n"});
  // --json before the subcommand and after it mean the same.
  for (const auto& args : std::vector<std::vector<std::string>>{{"--json", "dump", path(), "-s", "mixed"},
                                                                {"dump", path(), "-s", "mixed", "--json"}}) {
    const auto r = run_tool(args);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 3u) << r.out;
    for (const auto& line : lines) {
      EXPECT_TRUE(json_checker::well_formed(line)) << line;
      for (const char* key : {"stream", "seq", "timestamp", "timestamp_ns", "size", "payload"})
        EXPECT_TRUE(has_field(line, key)) << key << " in " << line;
    }
    EXPECT_TRUE(has_field(lines[0], "payload", "\"aGVsbG8=\"")) << lines[0];
    EXPECT_TRUE(has_field(lines[0], "text", "\"hello\"")) << lines[0];
    EXPECT_TRUE(has_field(lines[1], "payload", "\"AP8=\"")) << lines[1];
    EXPECT_FALSE(has_field(lines[1], "text")) << lines[1];
    EXPECT_TRUE(has_field(lines[2], "text", R"("say \"hi\"\n")")) << lines[2];
    EXPECT_TRUE(has_field(lines[2], "size", "9")) << lines[2];
  }
}

// ---- corrupt records

TEST_F(JournalToolTest, DumpStopsAtACorruptRecordAfterPrintingTheValidOnes) {
  append("orders", "order", 5);
  fabric::testing::damage_journal_record(dir_.path(), "orders", 3, [](std::string& v) { v.back() ^= 0x01; });
  const auto r = run_tool({"dump", path(), "-s", "orders"});
  EXPECT_EQ(r.code, 2);
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_NE(lines[1].find("text: order 2"), std::string::npos);
  EXPECT_NE(r.err.find("corrupt record in stream 'orders' at seq 3: CRC mismatch"), std::string::npos)
      << r.err;

  // Past the damage reads on.
  const auto after = run_tool({"dump", path(), "-s", "orders", "--from", "4"});
  EXPECT_EQ(after.code, 0) << after.err;
  EXPECT_EQ(lines_of(after.out).size(), 2u);
}

TEST_F(JournalToolTest, TailReportsACorruptRecordAmongTheLast) {
  append("orders", "order", 5);
  fabric::testing::damage_journal_record(dir_.path(), "orders", 4, [](std::string& v) { v.resize(v.size() - 2); });
  const auto r = run_tool({"tail", path(), "-s", "orders", "-n", "3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
  EXPECT_NE(r.err.find("stream 'orders' at seq 4"), std::string::npos) << r.err;
}

TEST_F(JournalToolTest, VerifyOfACleanJournalExitsZero) {
  append("orders", "order", 5);
  append("audit", "entry", 2);
  const auto r = run_tool({"verify", path()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("checked 7 records (49 payload bytes) in 2 streams"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clean"), std::string::npos) << r.out;
}

TEST_F(JournalToolTest, VerifyReportsEveryCorruptRecordAndExitsTwo) {
  append("orders", "order", 5);
  append("audit", "entry", 2);
  fabric::testing::damage_journal_record(dir_.path(), "orders", 2, [](std::string& v) { v.back() ^= 0x40; });
  fabric::testing::damage_journal_record(dir_.path(), "orders", 4, [](std::string& v) { v[4] = 9; });  // unknown version
  const auto r = run_tool({"verify", path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("checked 5 records"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("corrupt: stream 'orders' seq 2: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("corrupt: stream 'orders' seq 4: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 corrupt records"), std::string::npos) << r.out;

  const auto json = run_tool({"verify", path(), "--json"});
  EXPECT_EQ(json.code, 2);
  EXPECT_TRUE(json_checker::well_formed(json.out)) << json.out;
  EXPECT_TRUE(has_field(json.out, "clean", "false"));
  EXPECT_TRUE(has_field(json.out, "records", "5"));
  EXPECT_TRUE(has_field(json.out, "streams", "2"));
  EXPECT_NE(json.out.find(R"({"stream":"orders","seq":2,"what":")"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find(R"({"stream":"orders","seq":4,"what":")"), std::string::npos) << json.out;
}

// ---- damaged journals

// The damage table: verify must say what is wrong and exit 2, never die of a signal.
TEST_F(JournalToolTest, VerifyReportsEveryDamagedFileWithExitCodeTwoAndNeverCrashes) {
  fabric::testing::build_damage_subject(dir_.path());
  for (const auto& damage : fabric::testing::damaged_file_cases()) {
    SCOPED_TRACE(damage.name);
    temp_dir copy;
    fabric::testing::write_damaged_copy(dir_.path(), copy.path(), damage);
    const auto r = run_tool({"verify", copy.path().string()});
    if (damage.name == "grown with garbage") {
      // Pages past the last one a meta names are what an interrupted commit leaves: not damage.
      EXPECT_EQ(r.code, 0) << r.out << r.err;
      EXPECT_NE(r.out.find("clean"), std::string::npos) << r.out;
      continue;
    }
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    const bool says_what = r.out.find("damaged: ") != std::string::npos || r.out.find("corrupt: ") != std::string::npos;
    EXPECT_TRUE(says_what) << r.out << r.err;
    if (damage.refused_at_open) {
      EXPECT_NE(r.out.find(damage.says), std::string::npos) << r.out;
    }
    const auto json = run_tool({"--json", "verify", copy.path().string()});
    EXPECT_EQ(json.code, 2) << json.out << json.err;
    EXPECT_TRUE(json_checker::well_formed(json.out)) << json.out;
    EXPECT_TRUE(has_field(json.out, "clean", "false")) << json.out;
  }
}

TEST_F(JournalToolTest, OtherSubcommandsRefuseADamagedFileWithExitCodeTwo) {
  fabric::testing::build_damage_subject(dir_.path());
  temp_dir copy;
  const auto cases = fabric::testing::damaged_file_cases();
  fabric::testing::write_damaged_copy(dir_.path(), copy.path(), cases[5]);  // one page short
  for (const std::vector<std::string>& args : {std::vector<std::string>{"stats", copy.path().string()},
                                               {"dump", copy.path().string(), "-s", "orders"}}) {
    const auto r = run_tool(args);
    EXPECT_EQ(r.code, 2) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  }
}

TEST_F(JournalToolTest, VerifyReportsACrashOfTheCheckAsDamage) {
  append("orders", "order", 3);
  // The check runs in a child process; this makes the child die as a damaged page could make
  // LMDB fault, to show what the parent reports then.
  const std::string path_arg = path();
  ASSERT_EQ(::setenv("FABRIC_JOURNAL_VERIFY_CRASH_FOR_TESTS", "1", 1), 0);
  const auto r = run_tool({"verify", path_arg});
  const auto json = run_tool({"--json", "verify", path_arg});
  ASSERT_EQ(::unsetenv("FABRIC_JOURNAL_VERIFY_CRASH_FOR_TESTS"), 0);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("damaged: the check crashed (Segmentation fault)"), std::string::npos) << r.out;
  EXPECT_EQ(json.code, 2);
  EXPECT_TRUE(json_checker::well_formed(json.out)) << json.out;
  EXPECT_TRUE(has_field(json.out, "clean", "false")) << json.out;
  EXPECT_EQ(run_tool({"verify", path_arg}).code, 0);
}

TEST_F(JournalToolTest, VerifyReportsAStreamWhoseAccountsDisagreeWithItsRecords) {
  append("orders", "order", 5);
  fabric::testing::damage_journal_record(dir_.path(), "orders", 2, [](std::string& v) { v += "grown"; });
  const auto r = run_tool({"verify", path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("corrupt: stream 'orders' seq 2: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("damaged: stream 'orders': the journal keeps 35 payload bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 corrupt record, 1 damage report"), std::string::npos) << r.out;
  const auto json = run_tool({"--json", "verify", path()});
  EXPECT_TRUE(json_checker::well_formed(json.out)) << json.out;
  EXPECT_NE(json.out.find(R"("damage":[{"stream":"orders","what":"the journal keeps 35)"), std::string::npos) << json.out;
}

// ---- tail

TEST_F(JournalToolTest, TailShowsTheLastTenRecordsByDefaultAndNOnRequest) {
  append("orders", "order", 25);
  const auto ten = run_tool({"tail", path(), "-s", "orders"});
  ASSERT_EQ(ten.code, 0) << ten.err;
  auto lines = lines_of(ten.out);
  ASSERT_EQ(lines.size(), 10u);
  EXPECT_NE(lines.front().find("text: order 16"), std::string::npos);
  EXPECT_NE(lines.back().find("text: order 25"), std::string::npos);

  const auto three = run_tool({"tail", path(), "-s", "orders", "-n", "3"});
  ASSERT_EQ(three.code, 0);
  lines = lines_of(three.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines.front().find("text: order 23"), std::string::npos);

  const auto all = run_tool({"tail", path(), "-s", "orders", "-n", "100"});
  EXPECT_EQ(lines_of(all.out).size(), 25u);
  const auto none = run_tool({"tail", path(), "-s", "orders", "-n", "0"});
  EXPECT_EQ(none.code, 0);
  EXPECT_TRUE(none.out.empty());

  const auto json = run_tool({"--json", "tail", path(), "-s", "orders", "-n", "2"});
  lines = lines_of(json.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(json_checker::well_formed(lines[0])) << lines[0];
  EXPECT_TRUE(has_field(lines[1], "seq", "25"));
}

TEST_F(JournalToolTest, TailFollowEndsAfterMaxWait) {
  append("orders", "order", 3);
  const auto started = clock_type::now();
  const auto r = run_tool({"tail", path(), "-s", "orders", "-n", "1", "--follow", "--max-wait-ms", "300"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_GE(clock_type::now() - started, 300ms);
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("text: order 3"), std::string::npos);
}

// The tool follows a journal this process keeps open and appends to, as it would a live
// service's.
void follow_and_stop(const fs::path& dir, int sig) {
  auto j = journal::open(dir, fabric::testing::fast_journal_options());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(j.append_wait("events", "event " + std::to_string(i)));
  tool_process tool({"tail", dir.string(), "-s", "events", "-n", "2", "-f", "--max-wait-ms", "60000"});
  ASSERT_TRUE(tool.read_until("text: event 3")) << tool.out << tool.err;
  EXPECT_EQ(tool.out.find("event 1"), std::string::npos);
  for (int i = 4; i <= 6; ++i) ASSERT_TRUE(j.append_wait("events", "event " + std::to_string(i)));
  ASSERT_TRUE(tool.read_until("text: event 6")) << tool.out << tool.err;
  ASSERT_TRUE(j.append_wait("events", "event 7"));
  ASSERT_TRUE(tool.read_until("text: event 7")) << tool.out << tool.err;
  tool.signal(sig);
  EXPECT_EQ(tool.finish(5s), 0) << tool.err;
  const auto lines = lines_of(tool.out);
  ASSERT_EQ(lines.size(), 6u) << tool.out;
  for (std::size_t i = 0; i < lines.size(); ++i)
    EXPECT_NE(lines[i].find("text: event " + std::to_string(i + 2)), std::string::npos) << lines[i];
}

TEST_F(JournalToolTest, TailFollowPrintsRecordsAppendedByAnotherProcessAndStopsOnSigint) {
  follow_and_stop(dir_.path(), SIGINT);
}

TEST_F(JournalToolTest, TailFollowStopsCleanlyOnSigterm) { follow_and_stop(dir_.path(), SIGTERM); }

// The journal's writer runs scheduled delivery, TTL expiry and age retention once a second. A
// tool that kept the journal open would run it too, beside the service, and the service's cached
// sequence numbers would go stale: its next append would fail. The tool must leave that to the
// service. Here the tool opens the journal before the "service" does, so a tool that kept it
// open would reach the scheduled record first.
TEST_F(JournalToolTest, TailFollowLeavesScheduledDeliveryToTheServiceThatOwnsTheJournal) {
  {
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(j.append_wait("events", "event " + std::to_string(i)));
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    ASSERT_TRUE(j.schedule("events", "scheduled", now.count()));
  }
  tool_process tool({"tail", path(), "-s", "events", "-n", "1", "-f", "--max-wait-ms", "60000"});
  ASSERT_TRUE(tool.read_until("text: event 3")) << tool.out << tool.err;
  auto service = journal::open(dir_.path(), fabric::testing::fast_journal_options());
  ASSERT_TRUE(tool.read_until("text: scheduled")) << tool.out << tool.err;
  EXPECT_EQ(service.stats().delivered_scheduled, 1u);
  const auto appended = service.append_wait("events", "after");
  ASSERT_TRUE(appended) << appended.error().message();
  EXPECT_EQ(*appended, 5u);
  ASSERT_TRUE(tool.read_until("text: after")) << tool.out << tool.err;
  tool.signal(SIGINT);
  EXPECT_EQ(tool.finish(5s), 0);
  EXPECT_TRUE(tool.err.empty()) << tool.err;
}

// ---- compact

std::vector<std::string> all_payloads(const fs::path& dir, const std::string& stream) {
  auto j = journal::open(dir, fabric::testing::fast_journal_options());
  std::vector<std::string> payloads;
  auto replayed = j.replay(stream, 1, [&](const fabric::journal_record& r) {
    payloads.push_back(r.payload);
    return true;
  });
  EXPECT_TRUE(replayed);
  return payloads;
}

TEST_F(JournalToolTest, CompactWritesACopyNoLargerThatReadsTheSameIntoANewDirectory) {
  append("orders", "order", 2000);
  append("audit", "entry", 10);
  const fs::path dest = dir_.path() / "copies" / "compacted";  // parents are created too
  const auto r = run_tool({"compact", path(), dest.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto before = fs::file_size(dir_.path() / "data.mdb");
  const auto after = fs::file_size(dest / "data.mdb");
  EXPECT_LE(after, before);
  EXPECT_NE(r.out.find("before  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(" + std::to_string(before) + " bytes)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(" + std::to_string(after) + " bytes)"), std::string::npos) << r.out;
  EXPECT_EQ(all_payloads(dest, "orders"), all_payloads(dir_.path(), "orders"));
  EXPECT_EQ(all_payloads(dest, "audit").size(), 10u);
  EXPECT_EQ(run_tool({"verify", dest.string()}).code, 0);
}

TEST_F(JournalToolTest, CompactIntoAnExistingEmptyDirectoryReportsBothSizesAsJson) {
  append("orders", "order", 10);
  temp_dir dest;
  const auto r = run_tool({"--json", "compact", path(), dest.path().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(json_checker::well_formed(r.out)) << r.out;
  EXPECT_TRUE(has_field(r.out, "bytes_before", std::to_string(fs::file_size(dir_.path() / "data.mdb"))));
  EXPECT_TRUE(has_field(r.out, "bytes_after", std::to_string(fs::file_size(dest.path() / "data.mdb"))));
  EXPECT_TRUE(has_field(r.out, "source"));
  EXPECT_TRUE(has_field(r.out, "dest"));
}

TEST_F(JournalToolTest, CompactRefusesANonEmptyDirectoryAndLeavesItAlone) {
  append("orders", "order", 10);
  temp_dir dest;
  std::ofstream(dest.path() / "keep.txt") << "precious";
  const auto r = run_tool({"compact", path(), dest.path().string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("refusing to compact into " + dest.path().string() + ": the directory is not empty"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dest.path() / "data.mdb"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dest.path()), fs::directory_iterator()), 1);

  // The journal itself is not empty either: compacting onto itself is refused the same way.
  EXPECT_EQ(run_tool({"compact", path(), path()}).code, 1);
}

}  // namespace

// ---- the dead-letter queue

namespace {

TEST_F(JournalToolTest, DlqListShowsEachDeadLetterWithItsOriginAndReason) {
  append("work", "job", 3);
  {
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    ASSERT_TRUE(j.transact([](fabric::journal_txn& t) { t.dead_letter("work", 2, "handler threw", 4); }));
  }
  const auto text = run_tool({"dlq", "list", path()});
  EXPECT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("id 1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("from 'work' seq 2"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("attempts 4"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("handler threw"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("text: job 2"), std::string::npos) << text.out;
  const auto json = run_tool({"--json", "dlq", "list", path()});
  EXPECT_EQ(json.code, 0) << json.err;
  EXPECT_TRUE(json_checker::well_formed(json.out)) << json.out;
  EXPECT_NE(json.out.find("\"reason\":\"handler threw\""), std::string::npos) << json.out;
}

TEST_F(JournalToolTest, DlqListOfAnEmptyQueueSaysSo) {
  append("work", "job", 1);
  const auto r = run_tool({"dlq", "list", path()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("empty"), std::string::npos) << r.out;
}

TEST_F(JournalToolTest, DlqRequeueAppendsTheLetterBackAndDiscardRemovesOne) {
  append("work", "job", 3);
  {
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    ASSERT_TRUE(j.transact([](fabric::journal_txn& t) {
      t.dead_letter("work", 1, "r", 1);
      t.dead_letter("work", 3, "r", 1);
    }));
  }
  const auto requeued = run_tool({"dlq", "requeue", path(), "1"});
  EXPECT_EQ(requeued.code, 0) << requeued.err;
  EXPECT_NE(requeued.out.find("requeued as seq 4"), std::string::npos) << requeued.out;
  const auto discarded = run_tool({"dlq", "discard", path(), "2"});
  EXPECT_EQ(discarded.code, 0) << discarded.err;
  const auto missing = run_tool({"dlq", "requeue", path(), "7"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no such dead letter"), std::string::npos) << missing.err;
  auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
  EXPECT_TRUE(j.dead_letters().value().empty());
  auto chunk = j.read("work", 1);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(chunk->records.size(), 2u);
  EXPECT_EQ(chunk->records[1].payload, "job 1");
}

TEST_F(JournalToolTest, DlqRequeueIsRefusedWhileAnotherProcessWritesTheJournal) {
  append("work", "job", 1);
  // This test process holds the journal open for writing, as a running service would.
  auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
  const auto r = run_tool({"dlq", "requeue", path(), "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("open for writing in another process"), std::string::npos) << r.err;
}

}  // namespace

// ---- reliable channels

namespace {

using fabric::journal_txn;

std::string be64(std::uint64_t v) {
  std::string bytes(8, '\0');
  fabric::detail::store_be(v, bytes.data());
  return bytes;
}

std::string hex16(std::uint64_t v) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(v));
  return buffer;
}

// The incarnation a reliable channel keeps in the journal at `dir` (0 when none).
std::uint64_t incarnation_in(const fs::path& dir) {
  auto j = journal::open(dir, fabric::testing::fast_journal_options());
  const auto value = j.get("frc.identity", "incarnation").value();
  if (!value || value->size() != 8) return 0;
  return fabric::detail::load_be<std::uint64_t>(value->data());
}

// The state FRC/1 leaves in a journal that both sends and receives, written as the library
// writes it: sending to billing (payments: 7 sent, 4 acknowledged; refunds: welcomed, nothing
// sent yet) and receiving from two senders, one of them replaced once.
constexpr std::uint64_t own_incarnation = 0x0123456789abcdefULL;
constexpr std::uint64_t billing_incarnation = 0xfedcba9876543210ULL;
constexpr std::uint64_t shop_incarnation = 0x1111222233334444ULL;
constexpr std::uint64_t web_incarnation = 0x00000000000000aaULL;

void write_channel_state(const fs::path& dir) {
  auto j = journal::open(dir, fabric::testing::fast_journal_options());
  for (int i = 1; i <= 7; ++i)
    ASSERT_TRUE(j.append_wait("frc.out/billing/payments", fabric::frc::encode_outbox(0, "p" + std::to_string(i))));
  ASSERT_TRUE(j.transact([](journal_txn& t) {
    t.put("frc.identity", "incarnation", be64(own_incarnation));
    t.set_cursor("frc.acked/billing/payments", 4);
    t.put("frc.peers", "billing/payments", be64(billing_incarnation));
    t.put("frc.peers", "billing/refunds", be64(billing_incarnation));
    const std::string shop = fabric::frc::channel_key("shop", "orders");
    t.put("frc.in", shop, fabric::frc::encode_record({shop_incarnation, 42}));
    t.put("frc.expired", shop, fabric::frc::encode_seqs({40, 41}));
    t.put("frc.history", shop, std::string(24, '\x01'));
    const std::string web = fabric::frc::channel_key("web", "orders/eu");
    t.put("frc.in", web, fabric::frc::encode_record({web_incarnation, 3}));
  }));
}

TEST_F(JournalToolTest, ChannelsShowsEachChannelSendingAndReceivingAndTheJournalsIncarnation) {
  write_channel_state(dir_.path());
  const auto r = run_tool({"channels", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines_of(r.out),
            (std::vector<std::string>{
                "incarnation  0123456789abcdef",
                "",
                "SEND TO  STREAM    LAST  ACKED  BACKLOG  RECEIVER INCARNATION",
                "billing  payments     7      4        3  fedcba9876543210",
                "billing  refunds      0      0        0  fedcba9876543210",
                "",
                "RECEIVE FROM  STREAM     SENDER INCARNATION  TAKEN  EXPIRED KEPT  REPLACED",
                "shop          orders     1111222233334444       42             2         1",
                "web           orders/eu  00000000000000aa        3             0         0"}))
      << r.out;
}

TEST_F(JournalToolTest, ChannelsJsonGivesEveryPositionWithIncarnationsAsHex) {
  write_channel_state(dir_.path());
  const auto r = run_tool({"--json", "channels", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(json_checker::well_formed(r.out)) << r.out;
  EXPECT_EQ(r.out,
            R"({"channels":{"incarnation":"0123456789abcdef","sending":[)"
            R"({"receiver":"billing","stream":"payments","last_seq":7,"acked":4,"backlog":3,"receiver_incarnation":"fedcba9876543210"},)"
            R"({"receiver":"billing","stream":"refunds","last_seq":0,"acked":0,"backlog":0,"receiver_incarnation":"fedcba9876543210"}],)"
            R"("receiving":[)"
            R"({"sender":"shop","stream":"orders","sender_incarnation":"1111222233334444","taken":42,"expired_kept":2,"replaced_incarnations":1},)"
            R"({"sender":"web","stream":"orders/eu","sender_incarnation":"00000000000000aa","taken":3,"expired_kept":0,"replaced_incarnations":0}]}})"
            "\n");
}

TEST_F(JournalToolTest, StatsShowsTheReliableChannelsAfterTheStreams) {
  write_channel_state(dir_.path());
  const auto r = run_tool({"stats", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto at = r.out.find("\nreliable channels\nincarnation  0123456789abcdef\n");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_LT(r.out.find("frc.out/billing/payments      1     7        7"), at) << r.out;
  EXPECT_NE(r.out.find("billing  payments     7      4        3  fedcba9876543210", at), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("shop          orders     1111222233334444       42             2         1", at),
            std::string::npos)
      << r.out;

  const auto json = run_tool({"stats", path(), "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_TRUE(json_checker::well_formed(json.out)) << json.out;
  EXPECT_TRUE(has_field(json.out, "channels", R"({"incarnation":"0123456789abcdef","sending":[{"receiver":"billing")"))
      << json.out;
  EXPECT_NE(json.out.find(R"("last_seq":7,"acked":4,"backlog":3)"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find(R"("taken":42,"expired_kept":2,"replaced_incarnations":1)"), std::string::npos) << json.out;
}

TEST_F(JournalToolTest, AJournalNoChannelHasUsedHasNoChannelsToShow) {
  append("orders", "order", 2);
  const auto r = run_tool({"channels", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "incarnation  none (no reliable channel has used this journal)\n");
  const auto json = run_tool({"channels", path(), "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.out, "{\"channels\":{\"incarnation\":null,\"sending\":[],\"receiving\":[]}}\n");
  const auto stats = run_tool({"stats", path()});
  ASSERT_EQ(stats.code, 0) << stats.err;
  EXPECT_EQ(stats.out.find("reliable channels"), std::string::npos) << stats.out;
  const auto stats_json = run_tool({"--json", "stats", path()});
  EXPECT_TRUE(has_field(stats_json.out, "channels", R"({"incarnation":null,"sending":[],"receiving":[]})"))
      << stats_json.out;
}

TEST_F(JournalToolTest, DamagedChannelStateIsReportedAsDamageNotShown) {
  const std::vector<std::function<void(journal_txn&)>> damage{
      [](journal_txn& t) { t.put("frc.identity", "incarnation", "short"); },
      [](journal_txn& t) { t.put("frc.identity", "incarnation", be64(0)); },
      [](journal_txn& t) { t.put("frc.peers", "billing/payments", "1234"); },
      [](journal_txn& t) { t.put("frc.in", fabric::frc::channel_key("shop", "orders"), be64(7)); },
      [](journal_txn& t) { t.put("frc.in", std::string("\x09shop", 5), std::string(16, '\x01')); },
      [](journal_txn& t) { t.put("frc.expired", fabric::frc::channel_key("shop", "orders"), "123"); },
      [](journal_txn& t) { t.put("frc.history", fabric::frc::channel_key("shop", "orders"), std::string(25, 'h')); },
  };
  for (std::size_t i = 0; i < damage.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    temp_dir dir;
    write_channel_state(dir.path());
    {
      auto j = journal::open(dir.path(), fabric::testing::fast_journal_options());
      ASSERT_TRUE(j.transact(damage[i]));
    }
    for (const char* sub : {"channels", "stats"}) {
      const auto r = run_tool({sub, dir.path().string()});
      EXPECT_EQ(r.code, 2) << sub << ": " << r.out << r.err;
      EXPECT_NE(r.err.find("fabric-journal: damaged reliable-channel state: "), std::string::npos) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  }
}

// What a receiver's handler saw, shared with the test's thread.
class deliveries {
 public:
  void add(const fabric::reliable_delivery& d) {
    std::lock_guard lock(mu_);
    seen_[std::string(d.body)] = d.seq;
    cv_.notify_all();
  }
  /// The sequence `body` was delivered with, waiting for it at most wait_bound (0: not delivered).
  std::uint64_t wait_for(const std::string& body) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, fabric::testing::wait_bound, [&] { return seen_.count(body) > 0; });
    const auto it = seen_.find(body);
    return it == seen_.end() ? 0 : it->second;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::uint64_t> seen_;
};

class JournalToolChannelTest : public JournalToolTest {
 protected:
  JournalToolChannelTest() : endpoint_("ipc://" + (dir_.path() / "rx.sock").string()) {}

  fabric::reliable_sender_options sender_options() const {
    fabric::reliable_sender_options o;
    o.name = "orders";
    o.receiver = "billing";
    o.endpoint = endpoint_;
    o.heartbeat = 200ms;
    o.reconnect_interval = 10ms;
    o.reconnect_interval_max = 100ms;
    o.retransmit_interval = 300ms;
    o.send_timeout = fabric::testing::wait_bound;
    return o;
  }

  fabric::reliable_receiver_options receiver_options() {
    fabric::reliable_receiver_options o;
    o.endpoint = endpoint_;
    o.heartbeat = 200ms;
    o.on_message = [this](const fabric::reliable_delivery& d) { got_.add(d); };
    o.on_notice = [this](const fabric::channel_notice& n) {
      if (n.what == fabric::channel_notice::kind::sender_replaced) replaced_at_ = n.to;
    };
    return o;
  }

  journal open_journal(const std::string& name) {
    return journal::open(dir_.path() / name, fabric::testing::fast_journal_options());
  }

  // Waits until `tx`'s acknowledged cursor for billing/payments reaches `seq`: the sender writes
  // it shortly after the ACK arrives.
  static bool acked_through(const journal& tx, std::uint64_t seq) {
    const auto deadline = clock_type::now() + fabric::testing::wait_bound;
    for (;;) {
      const auto acked = tx.cursor("frc.acked/billing/payments");
      if (acked && acked->value_or(0) >= seq) return true;
      if (clock_type::now() >= deadline) return false;
      std::this_thread::yield();
    }
  }

  fabric::context ctx_;
  std::string endpoint_;
  deliveries got_;
  std::atomic<std::uint64_t> replaced_at_{0};
};

TEST_F(JournalToolChannelTest, ChannelsShowsWhereARealSenderAndReceiverStand) {
  {
    journal tx = open_journal("tx");
    journal rx = open_journal("rx");
    fabric::reliable_receiver in(ctx_, rx, receiver_options());
    fabric::reliable_sender out(ctx_, tx, sender_options());
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(out.send("payments", "payment " + std::to_string(i)));
    ASSERT_EQ(got_.wait_for("payment 5"), 5u);
    ASSERT_TRUE(acked_through(tx, 5));
  }
  const auto tx_incarnation = incarnation_in(dir_.path() / "tx");
  const auto rx_incarnation = incarnation_in(dir_.path() / "rx");
  ASSERT_NE(tx_incarnation, 0u);
  ASSERT_NE(rx_incarnation, 0u);

  const auto sender = run_tool({"channels", (dir_.path() / "tx").string()});
  ASSERT_EQ(sender.code, 0) << sender.err;
  EXPECT_EQ(lines_of(sender.out), (std::vector<std::string>{
                                      "incarnation  " + hex16(tx_incarnation),
                                      "",
                                      "SEND TO  STREAM    LAST  ACKED  BACKLOG  RECEIVER INCARNATION",
                                      "billing  payments     5      5        0  " + hex16(rx_incarnation)}))
      << sender.out;

  const auto receiver = run_tool({"--json", "channels", (dir_.path() / "rx").string()});
  ASSERT_EQ(receiver.code, 0) << receiver.err;
  EXPECT_EQ(receiver.out, R"({"channels":{"incarnation":")" + hex16(rx_incarnation) +
                              R"(","sending":[],"receiving":[{"sender":"orders","stream":"payments","sender_incarnation":")" +
                              hex16(tx_incarnation) +
                              R"(","taken":5,"expired_kept":0,"replaced_incarnations":0}]}})" + "\n");
}

TEST_F(JournalToolTest, ChannelResetPrintsTheOldAndNewIncarnationAndKeepsTheNewOne) {
  write_channel_state(dir_.path());
  const auto r = run_tool({"channel", "reset", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto first = incarnation_in(dir_.path());
  EXPECT_NE(first, 0u);
  EXPECT_NE(first, own_incarnation);
  EXPECT_EQ(lines_of(r.out), (std::vector<std::string>{"reset the incarnation of " + path(),
                                                       "old  " + hex16(own_incarnation), "new  " + hex16(first)}));

  const auto json = run_tool({"--json", "channel", "reset", path()});
  ASSERT_EQ(json.code, 0) << json.err;
  const auto second = incarnation_in(dir_.path());
  EXPECT_NE(second, first);
  EXPECT_EQ(json.out, R"({"path":")" + path() + R"(","old_incarnation":")" + hex16(first) +
                          R"(","new_incarnation":")" + hex16(second) + "\"}\n");
  // Only the incarnation changes: every channel keeps its position.
  const auto channels = run_tool({"channels", path()});
  EXPECT_NE(channels.out.find("billing  payments     7      4        3"), std::string::npos) << channels.out;
}

TEST_F(JournalToolTest, ChannelResetReplacesADamagedIncarnation) {
  append("orders", "order", 1);
  {
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    ASSERT_TRUE(j.transact([](journal_txn& t) { t.put("frc.identity", "incarnation", "abc"); }));
  }
  const auto r = run_tool({"channel", "reset", path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("old  damaged (3 bytes: 616263)"), std::string::npos) << r.out;
  EXPECT_NE(incarnation_in(dir_.path()), 0u);
}

TEST_F(JournalToolTest, ChannelResetRefusesAJournalNoChannelHasUsed) {
  append("orders", "order", 1);
  const auto r = run_tool({"channel", "reset", path()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no reliable channel has used " + path() + ": it has no incarnation to reset"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(incarnation_in(dir_.path()), 0u);
  EXPECT_EQ(run_tool({"channel", "reset", (dir_.path() / "nowhere").string()}).code, 1);
  EXPECT_EQ(run_tool({"channel", path()}).code, 64);  // reset must be named
}

TEST_F(JournalToolTest, ChannelResetIsRefusedWhileAnotherProcessWritesTheJournal) {
  write_channel_state(dir_.path());
  {
    // This test process holds the journal open for writing, as a running service would.
    auto j = journal::open(dir_.path(), fabric::testing::fast_journal_options());
    const auto r = run_tool({"channel", "reset", path()});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("open for writing in another process"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  EXPECT_EQ(incarnation_in(dir_.path()), own_incarnation);
}

// The remedy end to end (docs/reliable-channel.md, section 7): a sender journal restored from
// an older copy is refused as sender-regressed until channel reset gives it a new incarnation;
// then its receiver takes it from its acknowledged cursor on.
TEST_F(JournalToolChannelTest, ChannelResetLetsAReceiverTakeASenderRestoredFromAnOlderCopy) {
  journal rx = open_journal("rx");
  fabric::reliable_receiver in(ctx_, rx, receiver_options());
  {
    journal tx = open_journal("tx");
    fabric::reliable_sender out(ctx_, tx, sender_options());
    for (int i = 1; i <= 2; ++i) ASSERT_TRUE(out.send("payments", "payment " + std::to_string(i)));
    ASSERT_TRUE(acked_through(tx, 2));
    fs::create_directories(dir_.path() / "backup");
    ASSERT_TRUE(tx.copy_to(dir_.path() / "backup"));
    for (int i = 3; i <= 5; ++i) ASSERT_TRUE(out.send("payments", "payment " + std::to_string(i)));
    ASSERT_EQ(got_.wait_for("payment 5"), 5u);
  }
  const std::string backup = (dir_.path() / "backup").string();
  const auto before = incarnation_in(backup);
  {
    journal tx = journal::open(backup, fabric::testing::fast_journal_options());
    fabric::reliable_sender out(ctx_, tx, sender_options());
    const auto deadline = clock_type::now() + fabric::testing::wait_bound;
    fabric::reliable_sender_stats s;
    do {
      s = out.stats();
    } while ((s.channels.empty() || s.channels[0].refusals == 0) && clock_type::now() < deadline);
    ASSERT_FALSE(s.channels.empty());
    ASSERT_GT(s.channels[0].refusals, 0u);
    EXPECT_EQ(s.channels[0].refusal.rfind("sender-regressed", 0), 0u) << s.channels[0].refusal;
  }

  const auto reset = run_tool({"channel", "reset", backup});
  ASSERT_EQ(reset.code, 0) << reset.err;
  EXPECT_NE(reset.out.find("old  " + hex16(before)), std::string::npos) << reset.out;

  journal tx = journal::open(backup, fabric::testing::fast_journal_options());
  fabric::reliable_sender out(ctx_, tx, sender_options());
  const auto seq = out.send("payments", "payment after the restore");
  ASSERT_TRUE(seq) << seq.error().message();
  EXPECT_EQ(*seq, 3u);
  EXPECT_EQ(got_.wait_for("payment after the restore"), 3u);
  EXPECT_EQ(replaced_at_.load(), 5u);  // the old incarnation ended where the receiver had taken it
}

}  // namespace
