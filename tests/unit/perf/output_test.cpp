// fabric-perf writers: JSON parsed back and compared, CSV quoting, table pairing and ratios,
// HTML self-contained with balanced tags, and every writer on odd reports.
#include "harness/output.hpp"
#include "html_checks.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fabric/version.hpp>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fabric::perf {
namespace {

using namespace html_checks;

// A strict little JSON parser, enough to prove the writer's output is well formed and to read
// values back. Any syntax error makes parse() return nullopt.
struct json {
  enum class kind { null, boolean, number, string, array, object } type = kind::null;
  double number = 0.0;
  std::string text;
  std::vector<json> items;
  // Two vectors, not one of pairs: std::pair cannot hold the still incomplete json.
  std::vector<std::string> keys;
  std::vector<json> values;

  const json* at(std::string_view key) const {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return &values[i];
    }
    return nullptr;
  }
};

class json_parser {
 public:
  explicit json_parser(std::string_view s) : s_(s) {}

  std::optional<json> parse() {
    json v;
    if (!value(v)) return std::nullopt;
    space();
    if (i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  bool value(json& v) {
    space();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') return object(v);
    if (c == '[') return array(v);
    if (c == '"') {
      v.type = json::kind::string;
      return string(v.text);
    }
    if (literal("null")) return true;
    if (literal("true") || literal("false")) {
      v.type = json::kind::boolean;
      return true;
    }
    return number(v);
  }
  bool object(json& v) {
    v.type = json::kind::object;
    ++i_;
    space();
    if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
    while (true) {
      space();
      std::string key;
      if (i_ >= s_.size() || s_[i_] != '"' || !string(key)) return false;
      space();
      if (i_ >= s_.size() || s_[i_++] != ':') return false;
      json member;
      if (!value(member)) return false;
      v.keys.push_back(std::move(key));
      v.values.push_back(std::move(member));
      space();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == '}') return ++i_, true;
      if (s_[i_++] != ',') return false;
    }
  }
  bool array(json& v) {
    v.type = json::kind::array;
    ++i_;
    space();
    if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
    while (true) {
      json item;
      if (!value(item)) return false;
      v.items.push_back(std::move(item));
      space();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == ']') return ++i_, true;
      if (s_[i_++] != ',') return false;
    }
  }
  bool string(std::string& out) {
    ++i_;  // opening quote
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) return false;
          const std::string hex(s_.substr(i_, 4));
          i_ += 4;
          char* end = nullptr;
          const unsigned long cp = std::strtoul(hex.c_str(), &end, 16);
          if (end != hex.c_str() + 4) return false;
          // Only the BMP without surrogates is needed here.
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool number(json& v) {
    const std::size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    const std::size_t digits = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    if (i_ == digits) return false;
    if (s_[digits] == '0' && i_ - digits > 1) return false;  // no leading zeros
    if (i_ < s_.size() && s_[i_] == '.') {
      const std::size_t frac = ++i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ == frac) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      const std::size_t exp = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ == exp) return false;
    }
    v.type = json::kind::number;
    v.number = std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr);
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

std::optional<json> parse_json(const std::string& s) { return json_parser(s).parse(); }

run thr(std::string impl, std::string transport, std::int64_t size, double rate) {
  run r;
  r.set("bench", "thr").set("impl", std::move(impl)).set("pattern", "push_pull");
  r.set("transport", std::move(transport)).set("size", size).set("reps", std::int64_t{3});
  r.set("msgs_per_s", rate).set("mb_per_s", rate * static_cast<double>(size) / 1e6);
  return r;
}

run lat(std::string impl, std::string transport, std::int64_t size, double p50) {
  run r;
  r.set("bench", "lat").set("impl", std::move(impl)).set("pattern", "req_rep");
  r.set("transport", std::move(transport)).set("size", size).set("mode", "closed");
  r.set("reps", std::int64_t{3}).set("p50_us", p50).set("p90_us", p50 * 1.5);
  r.set("p99_us", p50 * 3).set("p999_us", p50 * 6).set("max_us", p50 * 40);
  r.set("count", std::int64_t{100000});
  return r;
}

report sample_report() {
  report rep;
  rep.machine = {{"hostname", std::string("box")}, {"logical_cores", std::int64_t{2}}};
  for (const std::string transport : {"inproc", "ipc", "tcp"}) {
    for (const std::int64_t size : {16, 256, 4096, 65536}) {
      const double base =
          4e6 / std::sqrt(static_cast<double>(size)) * (transport == "tcp" ? 0.5 : 1.0);
      rep.runs.push_back(thr("fabric", transport, size, base * 0.93));
      rep.runs.push_back(thr("raw", transport, size, base));
      const double p50 = (transport == "tcp" ? 30.0 : 8.0) + static_cast<double>(size) / 4096.0;
      rep.runs.push_back(lat("fabric", transport, size, p50 * 1.04));
      rep.runs.push_back(lat("raw", transport, size, p50));
    }
  }
  return rep;
}

std::string table_text(const report& r) {
  std::ostringstream out;
  print_table(r, out);
  return out.str();
}

std::string json_text(const report& r) {
  std::ostringstream out;
  write_json(r, out);
  return out.str();
}

std::string csv_text(const report& r) {
  std::ostringstream out;
  write_csv(r, out);
  return out.str();
}

std::string html_text(const report& r) {
  std::ostringstream out;
  write_html(r, out);
  return out.str();
}

// The line of `text` containing every one of `needles`, or "".
std::string line_with(const std::string& text, std::initializer_list<std::string_view> needles) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    bool all = true;
    for (const auto n : needles) all = all && line.find(n) != std::string::npos;
    if (all) return line;
  }
  return {};
}

// ------------------------------------------------------------------------------------ JSON

TEST(OutputJson, SmallReportMatchesExpectedText) {
  report r;
  r.machine = {{"hostname", std::string("box")}, {"logical_cores", std::int64_t{4}}};
  run one;
  one.set("bench", "thr")
      .set("impl", "fabric")
      .set("size", std::int64_t{64})
      .set("msgs_per_s", 1.5e6);
  r.runs.push_back(one);
  EXPECT_EQ(json_text(r),
            "{\"machine\": {\"hostname\":\"box\",\"logical_cores\":4},\n"
            " \"runs\": [\n"
            "  {\"bench\":\"thr\",\"impl\":\"fabric\",\"size\":64,\"msgs_per_s\":1500000.0}\n"
            " ]}\n");
}

TEST(OutputJson, SampleReportParsesBackWithFieldsInOrder) {
  const report r = sample_report();
  const auto doc = parse_json(json_text(r));
  ASSERT_TRUE(doc.has_value());
  ASSERT_EQ(doc->type, json::kind::object);
  ASSERT_EQ(doc->keys.size(), 2U);
  EXPECT_EQ(doc->keys[0], "machine");
  EXPECT_EQ(doc->keys[1], "runs");
  const json& runs = doc->values[1];
  ASSERT_EQ(runs.type, json::kind::array);
  ASSERT_EQ(runs.items.size(), r.runs.size());
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    const auto& fields = r.runs[i].fields;
    ASSERT_EQ(runs.items[i].keys.size(), fields.size());
    for (std::size_t f = 0; f < fields.size(); ++f) {
      EXPECT_EQ(runs.items[i].keys[f], fields[f].first);
      const json& v = runs.items[i].values[f];
      if (const auto* s = std::get_if<std::string>(&fields[f].second)) {
        EXPECT_EQ(v.text, *s);
      } else {
        EXPECT_EQ(v.number, *r.runs[i].number(fields[f].first)) << fields[f].first;
      }
    }
  }
}

TEST(OutputJson, EscapesQuotesBackslashesAndControlCharacters) {
  report r;
  const std::string nasty = std::string(
                                "a\"b\\c\nd\te\x01"
                                "f") +
                            '\0' + "g\x7f";
  r.machine = {{"cpu_model", nasty}};
  const std::string text = json_text(r);
  EXPECT_NE(text.find(R"("a\"b\\c\nd\te\u0001f\u0000g)"), std::string::npos) << text;
  const auto doc = parse_json(text);
  ASSERT_TRUE(doc.has_value()) << text;
  const json* machine = doc->at("machine");
  ASSERT_NE(machine, nullptr);
  const json* cpu = machine->at("cpu_model");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->text, nasty);
}

TEST(OutputJson, PassesUtf8ThroughAndReplacesInvalidBytes) {
  report r;
  r.machine = {{"a", std::string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80")},
               {"b", std::string("bad\xff\xc3(")},
               {"c", std::string("\xed\xa0\x80")}};  // an encoded surrogate
  const std::string text = json_text(r);
  EXPECT_NE(text.find("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80"), std::string::npos);
  // Each invalid byte becomes U+FFFD, written as UTF-8.
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_NE(text.find("\"bad" + fffd + fffd + "(\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"" + fffd + fffd + fffd + "\""), std::string::npos) << text;
  EXPECT_TRUE(parse_json(text).has_value());
}

TEST(OutputJson, WritesNullForNanAndInfinity) {
  report r;
  run one;
  one.set("bench", "x")
      .set("impl", "y")
      .set("a", std::nan(""))
      .set("b", std::numeric_limits<double>::infinity());
  one.set("c", -std::numeric_limits<double>::infinity());
  r.runs.push_back(one);
  const std::string text = json_text(r);
  EXPECT_NE(text.find(R"("a":null,"b":null,"c":null)"), std::string::npos) << text;
  EXPECT_TRUE(parse_json(text).has_value());
}

TEST(OutputJson, DoublesRoundTripAndIntegersStayIntegers) {
  report r;
  run one;
  one.set("tenth", 0.1).set("third", 1.0 / 3.0).set("tiny", 123456.789e-20).set("whole", -2.0);
  one.set("big", std::numeric_limits<std::int64_t>::max()).set("neg", std::int64_t{-5});
  r.runs.push_back(one);
  const std::string text = json_text(r);
  EXPECT_NE(text.find(R"("tenth":0.1,"third":0.3333333333333333,)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("whole":-2.0,)"), std::string::npos) << text;
  EXPECT_NE(text.find("\"big\":9223372036854775807"), std::string::npos) << text;
  EXPECT_NE(text.find("\"neg\":-5"), std::string::npos) << text;
  const auto doc = parse_json(text);
  ASSERT_TRUE(doc.has_value()) << text;
  const json* runs = doc->at("runs");
  ASSERT_NE(runs, nullptr);
  ASSERT_FALSE(runs->items.empty());
  const json* tiny = runs->items.front().at("tiny");
  ASSERT_NE(tiny, nullptr);
  EXPECT_EQ(tiny->number, 123456.789e-20);
  // Read back, integers stay integers and doubles stay doubles.
  const report back = read_json(text);
  ASSERT_EQ(back.runs.size(), 1U);
  EXPECT_TRUE(std::holds_alternative<double>(*back.runs[0].get("whole")));
  EXPECT_EQ(std::get<std::int64_t>(*back.runs[0].get("big")),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(std::get<double>(*back.runs[0].get("tiny")), 123456.789e-20);
}

TEST(OutputJson, EmptyReportIsWellFormed) {
  const std::string text = json_text(report{});
  EXPECT_EQ(text, "{\"machine\": {},\n \"runs\": []}\n");
  EXPECT_TRUE(parse_json(text).has_value());
}

// What read_json throws for `text`, or "" when it reads it.
std::string read_error(const std::string& text) {
  try {
    (void)read_json(text);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return {};
}

TEST(OutputJsonRead, ReadsBackWhatWriteJsonWrote) {
  report r = sample_report();
  r.runs[0].set("nan", std::nan(""));
  const report back = read_json(json_text(r));
  EXPECT_EQ(back.machine, r.machine);
  ASSERT_EQ(back.runs.size(), r.runs.size());
  for (std::size_t i = 1; i < r.runs.size(); ++i) EXPECT_EQ(back.runs[i].fields, r.runs[i].fields);
  const value* nan = back.runs[0].get("nan");
  ASSERT_NE(nan, nullptr);
  EXPECT_TRUE(std::isnan(std::get<double>(*nan)));
  EXPECT_EQ(json_text(back), json_text(r));
}

TEST(OutputJsonRead, AcceptsAReportWithoutMachineFacts) {
  const report r = read_json(R"({"runs": [{"bench": "thr", "impl": "raw", "size": 64}]})");
  EXPECT_TRUE(r.machine.empty());
  ASSERT_EQ(r.runs.size(), 1U);
  EXPECT_EQ(r.runs[0].number("size"), 64.0);
}

TEST(OutputJsonRead, RefusesWhatIsNotAReportWithAClearError) {
  EXPECT_NE(read_error("{\"runs\": [").find("not JSON"), std::string::npos);
  EXPECT_NE(read_error("").find("not JSON"), std::string::npos);
  EXPECT_NE(read_error("[1, 2]").find("not an object"), std::string::npos);
  EXPECT_NE(read_error("{\"machine\": {}}").find("no \"runs\" array"), std::string::npos);
  EXPECT_NE(read_error("{\"runs\": {}}").find("no \"runs\" array"), std::string::npos);
  EXPECT_NE(read_error("{\"runs\": [{}, 5]}").find("run 1 is number"), std::string::npos);
  EXPECT_NE(read_error(R"({"runs": [{"size": [64]}]})").find("run 0 \"size\" is array"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"runs": [{"ok": true}]})").find("run 0 \"ok\" is boolean"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"machine": [], "runs": []})").find("\"machine\" is array"),
            std::string::npos);
}

TEST(OutputJsonRead, RefusesDeepNestingWithoutBuildingIt) {
  const std::string deep = "{\"runs\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_NE(read_error(deep).find("nested deeper"), std::string::npos);
}

// ------------------------------------------------------------------------------------ CSV

TEST(OutputCsv, HeaderIsTheUnionOfKeysInFirstSeenOrder) {
  report r;
  run a;
  a.set("bench", "thr").set("impl", "fabric").set("msgs_per_s", 10.5);
  run b;
  b.set("bench", "journal").set("fsync_ns", std::int64_t{300}).set("impl", "raw_lmdb");
  r.runs = {a, b};
  EXPECT_EQ(csv_text(r),
            "bench,impl,msgs_per_s,fsync_ns\r\n"
            "thr,fabric,10.5,\r\n"
            "journal,raw_lmdb,,300\r\n");
}

TEST(OutputCsv, QuotesCommasQuotesAndLineBreaks) {
  report r;
  run a;
  a.set("plain", "abc").set("comma", "a,b").set("quote", "say \"hi\"").set("newline", "x\ny");
  a.set("cr", "x\ry").set("nan", std::nan(""));
  r.runs = {a};
  EXPECT_EQ(csv_text(r),
            "plain,comma,quote,newline,cr,nan\r\n"
            "abc,\"a,b\",\"say \"\"hi\"\"\",\"x\ny\",\"x\ry\",\r\n");
}

TEST(OutputCsv, EmptyReportWritesNothing) { EXPECT_EQ(csv_text(report{}), ""); }

// ------------------------------------------------------------------------------------ table

TEST(OutputTable, PairsFabricWithRawAndShowsTheRatio) {
  report r;
  r.runs.push_back(thr("fabric", "tcp", 64, 900'000));
  r.runs.push_back(thr("raw", "tcp", 64, 1'000'000));
  const std::string text = table_text(r);
  const std::string row = line_with(text, {"push_pull", "tcp"});
  ASSERT_FALSE(row.empty()) << text;
  EXPECT_NE(row.find("900,000"), std::string::npos) << row;
  EXPECT_NE(row.find("1,000,000"), std::string::npos) << row;
  EXPECT_NE(row.find("0.90"), std::string::npos) << row;
  EXPECT_NE(row.find("64 B"), std::string::npos) << row;
  EXPECT_NE(row.find("57.6"), std::string::npos) << row;  // fabric MB/s
  EXPECT_EQ(occurrences(text, "push_pull"), 1U) << text;
}

TEST(OutputTable, PairsRegardlessOfFieldOrderAndRunOrder) {
  report r;
  run raw;
  raw.set("msgs_per_s", 2000.0).set("size", std::int64_t{8}).set("transport", "ipc");
  raw.set("pattern", "pub_sub").set("impl", "raw").set("bench", "thr");
  r.runs.push_back(raw);
  r.runs.push_back(thr("fabric", "inproc", 8, 5000));
  run fab = thr("fabric", "ipc", 8, 3000);
  fab.set("pattern", "pub_sub");
  r.runs.push_back(fab);
  const std::string text = table_text(r);
  const std::string row = line_with(text, {"pub_sub", "ipc"});
  EXPECT_NE(row.find("1.50"), std::string::npos) << text;
  EXPECT_NE(line_with(text, {"push_pull", "inproc", "5,000"}), "") << text;
}

TEST(OutputTable, RunWithoutBaselineStillPrintsWithDashRatio) {
  report r;
  r.runs.push_back(thr("fabric", "tcp", 1024, 123'456));
  const std::string row = line_with(table_text(r), {"push_pull"});
  EXPECT_NE(row.find("123,456"), std::string::npos) << row;
  EXPECT_NE(row.find("1 KiB"), std::string::npos) << row;
  EXPECT_NE(row.find(" - "), std::string::npos) << row;
}

TEST(OutputTable, ShowsSpreadAsFarthestRepetitionFromMedian) {
  report r;
  run f = thr("fabric", "tcp", 64, 1000);
  f.set("min_msgs_per_s", 950.0).set("max_msgs_per_s", 1020.0);
  r.runs.push_back(f);
  const std::string row = line_with(table_text(r), {"push_pull"});
  EXPECT_NE(row.find("\u00b15.0%"), std::string::npos) << row;
  r.runs[0].set("reps", std::int64_t{1});
  const std::string single = line_with(table_text(r), {"push_pull"});
  EXPECT_EQ(single.find("\u00b1"), std::string::npos) << single;
}

TEST(OutputTable, LatencyTableShowsPercentilesAndP50Ratio) {
  report r;
  r.runs.push_back(lat("fabric", "tcp", 64, 26.0));
  r.runs.push_back(lat("raw", "tcp", 64, 20.0));
  const std::string text = table_text(r);
  const std::string row = line_with(text, {"req_rep", "tcp", "closed"});
  ASSERT_FALSE(row.empty()) << text;
  for (const char* cell : {"26.0", "78.0", "156", "1,040", "20.0", "60.0", "120", "800", "1.30"}) {
    EXPECT_NE(row.find(cell), std::string::npos) << cell << " in " << row;
  }
  EXPECT_NE(text.find("fabric \u00b5s"), std::string::npos) << text;
  EXPECT_NE(text.find("raw \u00b5s"), std::string::npos) << text;
  EXPECT_NE(text.find("p99.9"), std::string::npos) << text;
}

TEST(OutputTable, OtherBaselinesArePairedAndNamed) {
  report r;
  run f;
  f.set("bench", "lat").set("impl", "fabric").set("pattern", "journal").set("p50_us", 30.0);
  run b;
  b.set("bench", "lat").set("impl", "raw_lmdb").set("pattern", "journal").set("p50_us", 20.0);
  r.runs = {f, b};
  const std::string text = table_text(r);
  const std::string row = line_with(text, {"journal", "1.50"});
  EXPECT_NE(row.find("raw_lmdb"), std::string::npos) << text;
}

TEST(OutputTable, OpenModeShowsItsRate) {
  report r;
  run f = lat("fabric", "tcp", 64, 10.0);
  f.set("mode", "open").set("rate", std::int64_t{10000});
  r.runs.push_back(f);
  EXPECT_NE(line_with(table_text(r), {"open 10,000/s"}), "");
}

TEST(OutputTable, UnknownBenchFallsBackToItsFieldsInOrder) {
  report r;
  run j;
  j.set("bench", "journal")
      .set("impl", "fabric")
      .set("durability", "fsync")
      .set("appends_per_s", 4321.5);
  r.runs.push_back(j);
  const std::string text = table_text(r);
  EXPECT_NE(text.find("journal"), std::string::npos);
  const std::string header = line_with(text, {"impl", "durability", "appends_per_s"});
  ASSERT_FALSE(header.empty()) << text;
  EXPECT_LT(header.find("impl"), header.find("durability"));
  EXPECT_LT(header.find("durability"), header.find("appends_per_s"));
  EXPECT_NE(line_with(text, {"fabric", "fsync", "4,322"}), "") << text;
}

TEST(OutputTable, ColumnsAreAlignedAcrossRows) {
  const std::string text = table_text(sample_report());
  const std::string header = line_with(text, {"fabric msgs/s"});
  const std::string row = line_with(text, {"push_pull", "tcp", "64 KiB"});
  ASSERT_FALSE(header.empty());
  ASSERT_FALSE(row.empty());
  // Right-aligned numbers end under the end of their header.
  const std::size_t header_end = header.find("fabric msgs/s") + std::string("fabric msgs/s").size();
  EXPECT_NE(row[header_end - 1], ' ');
  EXPECT_EQ(row[header_end], ' ');
}

TEST(OutputTable, EmptyReportSaysSo) { EXPECT_EQ(table_text(report{}), "No runs.\n"); }

// ------------------------------------------------------------------------------------ HTML

TEST(OutputHtml, SampleReportIsSelfContainedWithCharts) {
  const std::string html = html_text(sample_report());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_EQ(occurrences(html, "<svg"), occurrences(html, "</svg>"));
  // The throughput and the p50 ratio per workload, throughput by size, latency percentiles.
  EXPECT_EQ(occurrences(html, "<svg"), 4U);
  EXPECT_EQ(external_reference(html), "");
  EXPECT_NE(html.find("stroke-dasharray"), std::string::npos);
  EXPECT_NE(html.find("p99.9"), std::string::npos);
  EXPECT_NE(html.find("box"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
}

TEST(OutputHtml, LatencyChartsAreSplitByModeWithSharedFieldsInTheTitle) {
  report r;
  r.runs.push_back(lat("fabric", "tcp", 64, 10.0));
  r.runs.push_back(lat("fabric", "ipc", 64, 8.0));
  run open = lat("fabric", "tcp", 64, 12.0);
  open.set("mode", "open").set("rate", std::int64_t{20000});
  r.runs.push_back(open);
  const std::string html = html_text(r);
  EXPECT_EQ(occurrences(html, "<svg"), 2U);
  EXPECT_NE(html.find("Latency percentiles: req_rep (64 B, closed)"), std::string::npos);
  EXPECT_NE(html.find("Latency percentiles: req_rep (tcp, 64 B, open, 20,000/s)"), std::string::npos);
  EXPECT_EQ(unbalanced_tag(html), "");
}

TEST(OutputHtml, EscapesTextFromRuns) {
  report r;
  r.machine = {{"hostname", std::string("<b>&\"host\"")}};
  r.runs.push_back(thr("fabric", "<tcp>", 64, 1000));
  const std::string html = html_text(r);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_EQ(html.find("<tcp>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;&amp;&quot;host&quot;"), std::string::npos);
  EXPECT_EQ(unbalanced_tag(html), "");
}

TEST(OutputHtml, EmptyReportIsStillACompletePage) {
  const std::string html = html_text(report{});
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_NE(html.find("No runs."), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);
}

// ------------------------------------------------------------------------------------ any report

TEST(OutputAnyReport, WritersCopeWithMissingFieldsAndUnknownBenches) {
  report r;
  r.runs.emplace_back();  // no fields at all
  run bare;
  bare.set("bench", "thr");
  r.runs.push_back(bare);
  run odd;
  odd.set("bench", "lat").set("impl", "fabric").set("p50_us", -1.0).set("max_us", std::nan(""));
  r.runs.push_back(odd);
  run journal;
  journal.set("bench", "journal").set("size", "big");
  r.runs.push_back(journal);
  run zero = thr("raw", "tcp", 0, 0.0);
  r.runs.push_back(zero);
  EXPECT_TRUE(parse_json(json_text(r)).has_value());
  EXPECT_FALSE(csv_text(r).empty());
  const std::string text = table_text(r);
  EXPECT_NE(text.find("journal"), std::string::npos);
  const std::string html = html_text(r);
  EXPECT_EQ(unbalanced_tag(html), "");
  for (const char* leak : {">nan", ">-nan", ">inf", ">-inf", "NaN", "=\"nan", "=\"inf"}) {
    EXPECT_EQ(html.find(leak), std::string::npos) << leak;
  }
}

// ------------------------------------------------------------------------------------ machine

TEST(OutputMachine, InfoHasEveryFactInOrder) {
  const auto facts = machine_info("Custom");
  const std::vector<std::string> keys = {
      "hostname",       "cpu_model",      "logical_cores", "memory_total_mib", "kernel",
      "libzmq_version", "fabric_version", "compiler",      "build_type",       "timestamp"};
  ASSERT_EQ(facts.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(facts[i].first, keys[i]);
  EXPECT_GT(std::get<std::int64_t>(facts[2].second), 0);
  EXPECT_GT(std::get<std::int64_t>(facts[3].second), 0);
  EXPECT_EQ(std::get<std::string>(facts[6].second), fabric::version_string);
  EXPECT_EQ(std::get<std::string>(facts[8].second), "Custom");
  const std::string stamp = std::get<std::string>(facts[9].second);
  ASSERT_EQ(stamp.size(), 20U) << stamp;
  EXPECT_EQ(stamp[4], '-');
  EXPECT_EQ(stamp[10], 'T');
  EXPECT_EQ(stamp[19], 'Z');
  EXPECT_EQ(std::get<std::string>(facts[5].second).find('.'), 1U);
  EXPECT_FALSE(std::get<std::string>(machine_info()[8].second).empty());
}

TEST(OutputMachine, PrintMachineListsFacts) {
  report r;
  r.machine = {{"hostname", std::string("box")}, {"logical_cores", std::int64_t{2}}};
  std::ostringstream out;
  print_machine(r, out);
  EXPECT_EQ(out.str(), "hostname:      box\nlogical_cores: 2\n");
}

// ------------------------------------------------------------------------------------ format

TEST(OutputFormat, NumbersReadWell) {
  EXPECT_EQ(format::grouped(1234567.4), "1,234,567");
  EXPECT_EQ(format::grouped(-1234.0), "-1,234");
  EXPECT_EQ(format::grouped(999.0), "999");
  EXPECT_EQ(format::grouped(std::nan("")), "-");
  EXPECT_EQ(format::micros(0.1234), "0.123");
  EXPECT_EQ(format::micros(1.234), "1.23");
  EXPECT_EQ(format::micros(12.34), "12.3");
  EXPECT_EQ(format::micros(123.4), "123");
  EXPECT_EQ(format::micros(12345.6), "12,346");
  EXPECT_EQ(format::ratio(0.954), "0.95");
  EXPECT_EQ(format::ratio(std::numeric_limits<double>::infinity()), "-");
  EXPECT_EQ(format::bytes(64), "64 B");
  EXPECT_EQ(format::bytes(1024), "1 KiB");
  EXPECT_EQ(format::bytes(1536), "1.5 KiB");
  EXPECT_EQ(format::bytes(65536), "64 KiB");
  EXPECT_EQ(format::bytes(1048576), "1 MiB");
  EXPECT_EQ(format::compact(950), "950");
  EXPECT_EQ(format::compact(12300), "12.3k");
  EXPECT_EQ(format::compact(2'000'000), "2M");
  EXPECT_EQ(format::readable(value{std::int64_t{65536}}), "65,536");
  EXPECT_EQ(format::readable(value{0.123456}), "0.1235");
  EXPECT_EQ(format::readable(value{std::string("x")}), "x");
}

}  // namespace
}  // namespace fabric::perf
