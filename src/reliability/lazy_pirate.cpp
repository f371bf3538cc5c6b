// The Lazy Pirate client: request, bounded wait, and on silence a fresh socket and a resend,
// with replies matched to requests by a sequence number REP servers echo back unknowingly.
//
// Wire format (what the DEALER sends; a REP server sees only the body):
//   envelope mode:  sequence | "" | body...     sequence = 8 bytes, big-endian u64
//   none mode:      "" | body...                (the REQ wire format)
// The reply comes back with the same leading frames.
//
// Attempts, deadlines and resends follow the retrying request shared with the Majordomo client
// (retrying_request.hpp): a stale or malformed reply keeps the attempt waiting for the time left.
#include <fabric/lazy_pirate.hpp>
#include <fabric/router_dealer.hpp>

#include "reliability/retrying_request.hpp"

#include <fabric/error.hpp>

#include "core/byte_order.hpp"

#include <array>
#include <chrono>
#include <iterator>
#include <random>
#include <utility>

namespace fabric {

namespace {

constexpr std::size_t sequence_size = 8;

std::array<unsigned char, sequence_size> encode_sequence(std::uint64_t seq) noexcept {
  std::array<unsigned char, sequence_size> out{};
  detail::store_be(seq, out.data());
  return out;
}

std::uint64_t decode_sequence(const frame& f) noexcept {
  return detail::load_be<std::uint64_t>(static_cast<const unsigned char*>(f.data()));
}

// A random first sequence number, so that a restarted client (or a second one given the same
// routing id) cannot mistake a reply meant for an earlier incarnation for its own.
std::uint64_t random_sequence() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ std::uint64_t{rd()};
}

// Moves frames [from, end) of `m` into a new message.
message tail(message& m, std::size_t from) {
  auto& frames = m.frames();
  const auto first = frames.begin() + static_cast<std::ptrdiff_t>(from);
  message out(message::container(std::make_move_iterator(first), std::make_move_iterator(frames.end())));
  m.clear();
  return out;
}

}  // namespace

lazy_pirate_client::lazy_pirate_client(context& ctx, lazy_pirate_options options)
    : ctx_(&ctx), options_(std::move(options)), sequence_(random_sequence()) {
  if (options_.endpoints.empty())
    throw error(errc::invalid_argument, "lazy_pirate_client: give at least one endpoint");
  for (const auto& e : options_.endpoints)
    if (e.empty()) throw error(errc::invalid_argument, "lazy_pirate_client: an endpoint is empty");
  if (options_.timeout <= std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "lazy_pirate_client: timeout must be positive");
  options_.socket.linger = std::chrono::milliseconds(0);
  open_socket();
}

lazy_pirate_client::~lazy_pirate_client() = default;
lazy_pirate_client::lazy_pirate_client(lazy_pirate_client&&) noexcept = default;
lazy_pirate_client& lazy_pirate_client::operator=(lazy_pirate_client&&) noexcept = default;

const std::string& lazy_pirate_client::endpoint() const noexcept { return options_.endpoints[current_]; }

void lazy_pirate_client::open_socket() {
  auto s = std::make_unique<dealer>(*ctx_, options_.socket);
  s->connect(options_.endpoints[current_]);
  socket_ = std::move(s);
  ++stats_.sockets_opened;
}

void lazy_pirate_client::close_socket() noexcept { socket_.reset(); }

result<message> lazy_pirate_client::request(message&& request) {
  if (request.empty())
    throw error(errc::invalid_argument, "lazy_pirate_client::request: a request needs at least one frame");
  if (options_.endpoints.empty())
    throw error(errc::invalid_state, "lazy_pirate_client::request: this client has been moved from");
  ++stats_.requests;
  const std::uint64_t seq = sequence_++;
  const auto seq_bytes = encode_sequence(seq);
  const bool with_sequence = options_.sequence == lazy_pirate_sequence::envelope;
  const std::size_t header = with_sequence ? 2 : 1;
  const std::size_t endpoints = options_.endpoints.size();

  struct hooks final : detail::retry_hooks {
    lazy_pirate_client& c;
    message& request;
    const std::array<unsigned char, sequence_size>& seq_bytes;
    std::uint64_t seq;
    bool with_sequence;
    std::size_t header;
    message reply;

    hooks(lazy_pirate_client& client, message& r, const std::array<unsigned char, sequence_size>& b,
          std::uint64_t s, bool with, std::size_t h)
        : c(client), request(r), seq_bytes(b), seq(s), with_sequence(with), header(h) {}

    result<void> send(std::size_t attempt) override {
      if (attempt > 1) {
        // A fresh socket: libzmq would otherwise keep the unanswered request queued for a
        // server that comes back, and deliver it twice.
        ++c.stats_.retries;
        c.close_socket();
        c.current_ = (c.current_ + 1) % c.options_.endpoints.size();
      }
      if (!c.socket_) c.open_socket();
      ++c.stats_.attempts;
      message out;
      out.reserve(request.size() + header);
      if (with_sequence) out.push_back(seq_bytes.data(), seq_bytes.size());
      out.push_back(std::string_view());
      for (frame& f : request) {
        frame shared;
        shared.copy(f);  // reference-counted for large frames; `request` stays intact for retries
        out.push_back(std::move(shared));
      }
      return c.socket_->send(std::move(out), c.options_.timeout);
    }

    result<std::optional<message>> wait(std::chrono::milliseconds at_most) override {
      auto got = c.socket_->recv(reply, at_most);
      if (!got) {
        if (got.is(errc::timeout)) return std::optional<message>();
        if (got.is(errc::too_large)) {
          ++c.stats_.malformed_replies;
          return std::optional<message>();
        }
        return got.error();
      }
      const bool well_formed = with_sequence
                                   ? reply.size() >= 2 && reply[0].size() == sequence_size && reply[1].size() == 0
                                   : reply.size() >= 1 && reply[0].size() == 0;
      if (!well_formed) {
        ++c.stats_.malformed_replies;
        return std::optional<message>();
      }
      if (with_sequence && decode_sequence(reply[0]) != seq) {
        ++c.stats_.stale_replies;
        return std::optional<message>();
      }
      return std::optional<message>(tail(reply, header));
    }
  } h(*this, request, seq_bytes, seq, with_sequence, header);

  auto answer = detail::retry_blocking({.timeout = options_.timeout, .retries = options_.retries}, h);
  if (answer) {
    ++stats_.replies;
    request.clear();
    return answer;
  }
  if (!answer.is(errc::timeout)) return answer.error();
  ++stats_.failures;
  // Nothing may arrive for this request on the socket the next one uses.
  close_socket();
  current_ = (current_ + 1) % endpoints;
  return errc::timeout;
}

}  // namespace fabric
