// The whole public API of fabric in one include.
#pragma once

#include <fabric/actor.hpp>
#include <fabric/binary_star.hpp>
#include <fabric/codec.hpp>
#include <fabric/completion_queue.hpp>
#include <fabric/context.hpp>
#include <fabric/envelope.hpp>
#include <fabric/error.hpp>
#include <fabric/journal.hpp>
#include <fabric/lazy_pirate.hpp>
#include <fabric/log.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/message.hpp>
#include <fabric/message_id.hpp>
#include <fabric/monitor.hpp>
#include <fabric/options.hpp>
#include <fabric/paranoid_pirate.hpp>
#include <fabric/pub_sub.hpp>
#include <fabric/push_pull.hpp>
#include <fabric/reactor.hpp>
#include <fabric/req_rep.hpp>
#include <fabric/result.hpp>
#include <fabric/router_dealer.hpp>
#include <fabric/security.hpp>
#include <fabric/socket.hpp>
#include <fabric/version.hpp>
