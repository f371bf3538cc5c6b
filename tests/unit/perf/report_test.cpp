// The merged report of several families: from small fixed JSON files (data/), the summary has
// its lines and ratios for every family, the page has a chart for every family and fetches
// nothing; families without a declaration, paced runs and noisy ratios are handled as documented.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "harness/compare.hpp"
#include "harness/family.hpp"
#include "harness/output.hpp"
#include "html_checks.hpp"

namespace fabric::perf {
namespace {

using namespace html_checks;

report fixture(const std::string& name) {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "data" / (name + ".json");
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::ostringstream whole;
  whole << in.rdbuf();
  return read_json(std::move(whole).str());
}

report merged_fixtures() {
  report all;
  for (const char* name : {"patterns", "journal", "majordomo"}) {
    EXPECT_TRUE(merge_into(all, fixture(name))) << name;
  }
  return all;
}

std::string summary_text(const report& r) {
  std::ostringstream out;
  print_summary(r, out);
  return out.str();
}

std::string html_text(const report& r) {
  std::ostringstream out;
  write_html(r, out);
  return out.str();
}

// The lines of `text` from the one starting with `head` up to the next blank line.
std::string block(const std::string& text, const std::string& head) {
  const auto at = text.find("\n" + head);
  if (at == std::string::npos) return {};
  const auto end = text.find("\n\n", at + 1);
  return text.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
}

// The part of the page from the family's heading to the next family's (or the machine facts).
std::string section(const std::string& html, const std::string& family) {
  const auto at = html.find("<h2 id=\"family-" + family + "\"");
  if (at == std::string::npos) return {};
  auto end = html.find("<h2", at + 1);
  return html.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

TEST(ReportSummary, GivesEveryFamilyItsRatiosOnOneScreen) {
  const std::string text = summary_text(merged_fixtures());
  EXPECT_LE(std::count(text.begin(), text.end(), '\n'), 30) << text;

  const std::string patterns = block(text, "patterns (vs raw libzmq)");
  ASSERT_FALSE(patterns.empty()) << text;
  // Throughput 0.5 and 2: a geometric mean of 1, where an arithmetic one would say 1.25.
  EXPECT_NE(patterns.find("throughput   1.00   2 workloads, 0.50 to 2.00"), std::string::npos)
      << patterns;
  // p50 22/20 closed and 30/30 open; p99 40/40 and 60/50.
  EXPECT_NE(patterns.find("latency p50  1.05   2 workloads, 1.00 to 1.10; p99 1.10"),
            std::string::npos)
      << patterns;
  // Repetitions stray 2% and 1% on either side: the median of the four runs, and the widest.
  EXPECT_NE(patterns.find("noise        a workload's repetitions stray \u00b11.5% from their median "
                          "(typical), \u00b12.0% at most"),
            std::string::npos)
      << patterns;
  // Workloads are named by what tells them apart in the family (every one is over tcp here).
  EXPECT_NE(patterns.find("e.g.         push_pull 64 B: fabric 500,000, raw 1,000,000 messages/s"),
            std::string::npos)
      << patterns;
  EXPECT_NE(patterns.find("             req_rep 64 B closed: p50 fabric 22.0, raw 20.0 \u00b5s"),
            std::string::npos)
      << patterns;

  const std::string journal = block(text, "journal (vs raw LMDB)");
  EXPECT_NE(journal.find("throughput   0.80   3 workloads, 0.80 to 0.80"), std::string::npos)
      << journal;
  // Only append_one has a raw latency to compare with.
  EXPECT_NE(journal.find("latency p50  1.25   1 workload; p99 1.20"), std::string::npos) << journal;
  EXPECT_NE(journal.find("append producers 4 window 4096: fabric 240,000, raw_lmdb 300,000 "
                         "records/s"),
            std::string::npos)
      << journal;

  const std::string majordomo = block(text, "majordomo (vs raw DEALER/ROUTER echo)");
  // 0.1, 0.4 and 1: the open loop ran at a fixed rate, so its throughput is not compared; the
  // windowed async closed loop is compared on throughput only.
  EXPECT_NE(majordomo.find("throughput   0.34   3 workloads, 0.10 to 1.00"), std::string::npos)
      << majordomo;
  EXPECT_NE(majordomo.find("latency p50  1.48   2 workloads, 1.10 to 2.00"), std::string::npos)
      << majordomo;
  EXPECT_NE(majordomo.find("async closed workers 4 window 256: fabric 40,000, raw 100,000 "
                           "requests/s"),
            std::string::npos)
      << majordomo;
}

TEST(ReportPage, HasAChartForEveryFamilyAndItsTables) {
  const std::string html = html_text(merged_fixtures());
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_EQ(occurrences(html, "<svg"), occurrences(html, "</svg>"));
  for (const char* family : {"patterns", "journal", "majordomo"}) {
    const std::string part = section(html, family);
    ASSERT_FALSE(part.empty()) << family;
    EXPECT_GE(occurrences(part, "<svg"), 3U) << family;
    EXPECT_NE(part.find("per workload</title>"), std::string::npos) << family;  // ratio chart
    EXPECT_NE(part.find("<title>Latency percentiles"), std::string::npos) << family;
    EXPECT_NE(part.find("<table>"), std::string::npos) << family;
    // The summary table links to the section.
    EXPECT_NE(html.find("<a href=\"#family-" + std::string(family) + "\">"), std::string::npos);
  }
  // Each family along the key it varies.
  EXPECT_NE(section(html, "patterns").find("<title>Throughput by message size: push_pull"),
            std::string::npos);
  EXPECT_NE(section(html, "journal").find("<title>Throughput by producers: append"),
            std::string::npos);
  EXPECT_NE(section(html, "majordomo").find("<title>Throughput by workers: async"),
            std::string::npos);
  // The summary answers first, before any family.
  EXPECT_LT(html.find("How fast is fabric here?"), html.find("<h2 id=\"family-"));
  EXPECT_NE(html.find("RelWithDebInfo build"), std::string::npos);
}

TEST(ReportPage, IsSelfContained) {
  const std::string html = html_text(merged_fixtures());
  EXPECT_EQ(external_reference(html), "");
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  EXPECT_NE(html.find("<style>"), std::string::npos);
}

TEST(ReportPage, GreysRatiosWithinTheSpreadOfRepetitions) {
  report r;
  run f;
  f.set("bench", "thr").set("impl", "fabric").set("pattern", "push_pull").set("size", 64);
  f.set("reps", 3).set("msgs_per_s", 1050.0).set("min_msgs_per_s", 800.0);
  f.set("max_msgs_per_s", 1200.0);
  run b = f;
  b.set("impl", "raw").set("msgs_per_s", 1000.0);
  r.runs = {f, b};
  const std::string html = html_text(r);
  // 1.05 against repetitions that stray by 24%: noise, drawn grey, not blue.
  EXPECT_NE(html.find("<td class=\"big noise\">1.05"), std::string::npos) << html;
  EXPECT_NE(html.find("fill=\"#a6a6a6\"><title>push_pull"), std::string::npos);
  r.runs[0].set("min_msgs_per_s", 1040.0).set("max_msgs_per_s", 1060.0);
  r.runs[1].set("min_msgs_per_s", 990.0).set("max_msgs_per_s", 1010.0);
  EXPECT_NE(html_text(r).find("<td class=\"big faster\">1.05"), std::string::npos);
}

TEST(ReportFamilies, AnUndeclaredBenchGetsAFamilyOfItsOwnWithCharts) {
  report r;
  for (const std::int64_t window : {1, 16, 256}) {
    for (const char* impl : {"fabric", "raw_channel"}) {
      run one;
      one.set("bench", "gossip").set("impl", impl).set("window", window).set("reps", 1);
      one.set("msgs_per_s", (impl[0] == 'f' ? 900.0 : 1000.0) * static_cast<double>(window));
      one.set("p50_us", 10.0).set("p99_us", 20.0).set("max_us", 30.0);
      r.runs.push_back(one);
    }
  }
  const std::string text = summary_text(r);
  EXPECT_NE(text.find("gossip (vs raw_channel)"), std::string::npos) << text;
  EXPECT_NE(text.find("throughput   0.90   3 workloads"), std::string::npos) << text;
  const std::string part = section(html_text(r), "gossip");
  EXPECT_NE(part.find("<title>Throughput by window"), std::string::npos) << part;
  EXPECT_NE(part.find("<title>Latency percentiles"), std::string::npos) << part;
}

TEST(ReportFamilies, RunsWithoutABaselineAreSaidSo) {
  report r = fixture("patterns");
  std::erase_if(r.runs, [](const run& one) { return one.text("impl") != "fabric"; });
  const std::string text = summary_text(r);
  EXPECT_NE(text.find("4 runs, none with a baseline run of the same workload"), std::string::npos)
      << text;
  const std::string html = html_text(r);
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_NE(html.find("no run with a baseline to compare with"), std::string::npos);
}

TEST(ReportCompare, AFabricRunMayHaveSettingsItsBaselineLacks) {
  run fabric;
  fabric.set("bench", "majordomo").set("impl", "fabric").set("workers", 4).set("credit", 16);
  run raw;
  raw.set("bench", "majordomo").set("impl", "raw").set("workers", 4);
  run raw_lb = raw;
  raw_lb.set("impl", "raw_lb").set("credit", 1);
  run other = raw;
  other.set("workers", 1);
  EXPECT_TRUE(same_workload(fabric, raw));
  EXPECT_FALSE(same_workload(fabric, raw_lb));  // a credit of its own, and a different one
  EXPECT_FALSE(same_workload(fabric, other));
  EXPECT_FALSE(same_workload(raw, fabric));  // the baseline has no credit to match
}

TEST(ReportMerge, KeepsTheFirstMachineAndSaysWhenHostsDiffer) {
  report all;
  EXPECT_TRUE(merge_into(all, fixture("patterns")));
  report elsewhere = fixture("journal");
  elsewhere.machine[0].second = std::string("other-box");
  EXPECT_FALSE(merge_into(all, elsewhere));
  EXPECT_EQ(std::get<std::string>(all.machine[0].second), "box");
  EXPECT_EQ(all.runs.size(), 8U + 6U);
}

}  // namespace
}  // namespace fabric::perf
