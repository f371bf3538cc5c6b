// fabric-journal: look inside a fabric journal directory (stats, streams, channels, tail, dump),
// check every record (verify), write a compacted copy (compact), and repair what operators repair
// (dlq, channel reset), for operators and scripts (--json).
#include "commands.hpp"

#include <fabric/version.hpp>

#include <CLI/CLI.hpp>

#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <string>

int main(int argc, char** argv) {
  using namespace fabric::journal_tool;
  options o;
  CLI::App app{std::string("fabric-journal ") + fabric::version_string +
               ": inspect, verify, compact and repair a fabric journal directory"};
  app.require_subcommand(1);
  // Lets --json follow the subcommand too: fabric-journal dump DIR -s S --json.
  app.fallthrough();
  app.set_version_flag("--version", std::string(fabric::version_string));
  app.add_flag("--json", o.json, "machine-readable output: one JSON document (JSON Lines for tail and dump)");
  app.footer("--json may come before or after the subcommand.\n"
             "Exit codes: 0 success, 1 error, 2 the journal is damaged (corrupt records or a damaged\n"
             "file), 64 bad arguments.");

  const auto add_dir = [&o](CLI::App* sub) {
    sub->add_option("dir", o.dir, "the journal's directory (it must already hold data.mdb)")->required();
  };
  const auto add_stream = [&o](CLI::App* sub) {
    sub->add_option("-s,--stream", o.stream, "the stream to read")->required();
    sub->add_flag("--hex", o.hex, "show every payload as hex, even text (adds \"hex\" to --json)");
  };

  std::map<std::string, std::function<int(const options&)>> commands;

  auto* stats = app.add_subcommand(
      "stats", "size on disk, map size, every stream's extent, and every reliable channel's position");
  add_dir(stats);
  commands["stats"] = run_stats;

  auto* streams = app.add_subcommand("streams", "one line per stream: name, first seq, last seq, records");
  add_dir(streams);
  commands["streams"] = run_streams;

  auto* channels = app.add_subcommand(
      "channels", "the journal's incarnation and each reliable channel's position, sending and receiving");
  add_dir(channels);
  commands["channels"] = run_channels;

  auto* tail = app.add_subcommand("tail", "the last records of a stream, and with --follow the new ones");
  add_dir(tail);
  add_stream(tail);
  tail->add_option("-n,--lines", o.lines, "how many records to show")->capture_default_str();
  auto* follow = tail->add_flag("-f,--follow", o.follow,
                                "keep printing records as they are appended, until SIGINT or SIGTERM");
  tail->add_option("--max-wait-ms", o.max_wait_ms, "with --follow: stop after this many milliseconds")
      ->needs(follow);
  commands["tail"] = run_tail;

  auto* dump = app.add_subcommand("dump", "the records of a stream from a sequence number on");
  add_dir(dump);
  add_stream(dump);
  dump->add_option("--from", o.from, "the first sequence number")
      ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()))
      ->capture_default_str();
  dump->add_option("--count", o.count, "at most this many records (default: to the end)")
      ->check(CLI::PositiveNumber);
  commands["dump"] = run_dump;

  auto* verify =
      app.add_subcommand("verify", "check every page and record of the journal; exit 2 when anything is damaged");
  add_dir(verify);
  commands["verify"] = run_verify;

  auto* compact =
      app.add_subcommand("compact", "write a compacted copy of the journal into a new or empty directory");
  add_dir(compact);
  compact->add_option("dest", o.dest, "where the copy goes (created if missing; must be empty)")->required();
  commands["compact"] = run_compact;

  auto* dlq = app.add_subcommand("dlq", "the dead-letter queue: list, requeue or discard dead letters");
  dlq->require_subcommand(1);
  auto* dlq_list = dlq->add_subcommand("list", "the dead letters, with where they came from and why");
  add_dir(dlq_list);
  dlq_list->add_option("--from", o.from, "the first dead-letter id")->capture_default_str();
  dlq_list->add_option("--count", o.count, "at most this many (default 1000)")->check(CLI::PositiveNumber);
  dlq_list->add_flag("--hex", o.hex, "show payloads as hex, even text");
  commands["list"] = run_dlq_list;
  auto* dlq_requeue = dlq->add_subcommand(
      "requeue", "append dead letters back to their streams (needs the journal's writer stopped)");
  add_dir(dlq_requeue);
  dlq_requeue->add_option("ids", o.ids, "dead-letter ids")->required();
  commands["requeue"] = run_dlq_requeue;
  auto* dlq_discard = dlq->add_subcommand("discard", "remove dead letters for good (needs the writer stopped)");
  add_dir(dlq_discard);
  dlq_discard->add_option("ids", o.ids, "dead-letter ids")->required();
  commands["discard"] = run_dlq_discard;

  auto* channel = app.add_subcommand("channel", "repair a journal's reliable channels");
  channel->require_subcommand(1);
  auto* channel_reset = channel->add_subcommand(
      "reset",
      "give the journal a new incarnation: the remedy for a sender refused as sender-regressed after "
      "its journal was restored from an older copy (needs the journal's service stopped)");
  add_dir(channel_reset);
  commands["reset"] = run_channel_reset;

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 has an exit code per kind of mistake; scripts need only "bad arguments".
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  }
  try {
    // The innermost subcommand chosen names the command (dlq's are one level down).
    CLI::App* chosen = app.get_subcommands().front();
    while (!chosen->get_subcommands().empty()) chosen = chosen->get_subcommands().front();
    const int code = commands.at(chosen->get_name())(o);
    std::cout.flush();
    if (!std::cout) {
      std::cerr << "fabric-journal: cannot write the output\n";
      return exit_error;
    }
    return code;
  } catch (const damaged_journal& e) {
    std::cout.flush();
    std::cerr << "fabric-journal: " << e.what() << '\n';
    return exit_corrupt;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "fabric-journal: " << e.what() << '\n';
    return exit_error;
  }
}
