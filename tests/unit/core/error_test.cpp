// Tests fabric's error model: errc, the fabric and zmq categories, fabric::error and result<T>.
#include <fabric/error.hpp>
#include <fabric/result.hpp>

#include <gtest/gtest.h>
#include <zmq.h>

#include <cerrno>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace fabric {
namespace {

std::vector<errc> all_codes() {
  return {errc::timeout,       errc::would_block,      errc::back_pressure, errc::peer_unreachable,
          errc::closed,        errc::malformed,        errc::too_large,     errc::invalid_argument,
          errc::invalid_state, errc::not_supported,    errc::protocol_error, errc::io_error,
          errc::interrupted};
}

TEST(ErrorCategoryTest, FabricCategoryIsNamedFabric) {
  EXPECT_STREQ(fabric_category().name(), "fabric");
}

TEST(ErrorCategoryTest, ZmqCategoryIsNamedZmq) { EXPECT_STREQ(zmq_category().name(), "zmq"); }

TEST(ErrorCategoryTest, EveryCodeHasItsOwnNonEmptyMessage) {
  std::vector<std::string> seen;
  for (errc e : all_codes()) {
    const std::string text = make_error_code(e).message();
    EXPECT_FALSE(text.empty()) << static_cast<int>(e);
    EXPECT_EQ(text.find("unknown"), std::string::npos) << text;
    for (const auto& other : seen) EXPECT_NE(text, other);
    seen.push_back(text);
  }
}

TEST(ErrorCategoryTest, MessagesSayWhatHappened) {
  EXPECT_EQ(make_error_code(errc::timeout).message(), "timed out");
  EXPECT_EQ(make_error_code(errc::malformed).message(), "malformed input");
  EXPECT_NE(make_error_code(errc::closed).message().find("closed"), std::string::npos);
  EXPECT_NE(make_error_code(errc::back_pressure).message().find("back-pressure"), std::string::npos);
}

TEST(ErrorCategoryTest, UnknownValueGetsAGenericMessage) {
  const std::string text = fabric_category().message(999);
  EXPECT_NE(text.find("999"), std::string::npos) << text;
}

TEST(ErrorCategoryTest, CodesAreNumberedFromOneAndStable) {
  EXPECT_EQ(static_cast<int>(errc::timeout), 1);
  EXPECT_EQ(static_cast<int>(errc::would_block), 2);
  EXPECT_EQ(static_cast<int>(errc::closed), 5);
  EXPECT_EQ(static_cast<int>(errc::malformed), 6);
  EXPECT_EQ(static_cast<int>(errc::interrupted), 13);
}

TEST(ErrorCodeTest, ConvertsImplicitlyFromErrc) {
  std::error_code ec = errc::timeout;
  EXPECT_TRUE(ec);
  EXPECT_EQ(&ec.category(), &fabric_category());
  EXPECT_EQ(ec.value(), 1);
  EXPECT_EQ(ec, errc::timeout);
  EXPECT_NE(ec, errc::would_block);
}

TEST(ErrorCodeTest, MappedCodesCompareEqualToStdErrcConditions) {
  EXPECT_EQ(make_error_code(errc::timeout), std::errc::timed_out);
  EXPECT_EQ(make_error_code(errc::would_block), std::errc::operation_would_block);
  EXPECT_EQ(make_error_code(errc::invalid_argument), std::errc::invalid_argument);
  EXPECT_EQ(make_error_code(errc::not_supported), std::errc::not_supported);
  EXPECT_EQ(make_error_code(errc::too_large), std::errc::message_size);
  EXPECT_EQ(make_error_code(errc::peer_unreachable), std::errc::host_unreachable);
  EXPECT_EQ(make_error_code(errc::interrupted), std::errc::interrupted);
}

TEST(ErrorCodeTest, UnmappedCodesDoNotMatchUnrelatedStdErrcConditions) {
  EXPECT_NE(make_error_code(errc::timeout), std::errc::invalid_argument);
  EXPECT_NE(make_error_code(errc::closed), std::errc::timed_out);
  EXPECT_NE(make_error_code(errc::malformed), std::errc::invalid_argument);
  EXPECT_NE(make_error_code(errc::back_pressure), std::errc::operation_would_block);
  // An unmapped code's condition stays in the fabric category.
  const auto condition = make_error_code(errc::malformed).default_error_condition();
  EXPECT_EQ(&condition.category(), &fabric_category());
}

TEST(ErrorCodeTest, ZmqPosixValuesMapToGenericConditions) {
  const std::error_code again(EAGAIN, zmq_category());
  EXPECT_EQ(again, std::errc::resource_unavailable_try_again);
  const std::error_code inuse(EADDRINUSE, zmq_category());
  EXPECT_EQ(inuse, std::errc::address_in_use);
}

TEST(ErrorCodeTest, ZmqPrivateValuesStayInTheZmqCategory) {
  const std::error_code fsm(EFSM, zmq_category());
  const auto condition = fsm.default_error_condition();
  EXPECT_EQ(&condition.category(), &zmq_category());
  EXPECT_EQ(fsm.message(), zmq_strerror(EFSM));
}

TEST(FabricErrorTest, CarriesCodeAndMessage) {
  const error e(errc::invalid_argument, "bad endpoint 'x'");
  EXPECT_EQ(e.code(), errc::invalid_argument);
  EXPECT_NE(std::string(e.what()).find("bad endpoint 'x'"), std::string::npos);
  const error from_string(errc::closed, std::string("socket gone"));
  EXPECT_EQ(from_string.code(), errc::closed);
  EXPECT_NE(std::string(from_string.what()).find("socket gone"), std::string::npos);
}

TEST(FabricErrorTest, IsASystemError) {
  try {
    throw error(errc::io_error, "disk");
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), errc::io_error);
    return;
  }
  ADD_FAILURE() << "fabric::error was not caught as std::system_error";
}

TEST(FabricErrorTest, ThrowZmqErrorUsesTheZmqCategory) {
  try {
    throw_zmq_error(EFSM, "send not allowed");
  } catch (const error& e) {
    EXPECT_EQ(e.code(), std::error_code(EFSM, zmq_category()));
    EXPECT_NE(std::string(e.what()).find("send not allowed"), std::string::npos);
    return;
  }
  ADD_FAILURE() << "throw_zmq_error did not throw fabric::error";
}

TEST(ResultTest, HoldsAValue) {
  result<int> r = 42;
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  EXPECT_FALSE(r.error());
  EXPECT_FALSE(r.is(errc::timeout));
}

TEST(ResultTest, HoldsAnError) {
  result<int> r = errc::timeout;
  EXPECT_FALSE(r.has_value());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error(), errc::timeout);
  EXPECT_TRUE(r.is(errc::timeout));
  EXPECT_FALSE(r.is(errc::closed));
}

TEST(ResultTest, HoldsAForeignErrorCode) {
  result<int> r = std::error_code(EFSM, zmq_category());
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), std::error_code(EFSM, zmq_category()));
  EXPECT_FALSE(r.is(errc::invalid_state));
}

TEST(ResultTest, ValueThrowsTheHeldError) {
  const result<std::string> r = errc::malformed;
  try {
    (void)r.value();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), errc::malformed);
    return;
  }
  ADD_FAILURE() << "value() on an error did not throw fabric::error";
}

TEST(ResultTest, RvalueValueMovesOut) {
  result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST(ResultTest, RvalueValueOfAnErrorThrows) {
  result<std::unique_ptr<int>> r = errc::closed;
  EXPECT_THROW((void)std::move(r).value(), error);
}

TEST(ResultTest, ArrowReachesMembers) {
  result<std::string> r = std::string("hello");
  EXPECT_EQ(r->size(), 5U);
  const result<std::string>& cr = r;
  EXPECT_EQ(cr->front(), 'h');
}

TEST(ResultTest, ValueCanBeModifiedInPlace) {
  result<std::vector<int>> r = std::vector<int>{1, 2};
  r.value().push_back(3);
  (*r).push_back(4);
  EXPECT_EQ(r.value(), (std::vector<int>{1, 2, 3, 4}));
}

TEST(ResultVoidTest, DefaultIsSuccess) {
  const result<void> r;
  EXPECT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_FALSE(r.error());
  EXPECT_NO_THROW(r.value());
  EXPECT_FALSE(r.is(errc::timeout));
}

TEST(ResultVoidTest, HoldsAnErrorAndThrowsItFromValue) {
  const result<void> r = errc::back_pressure;
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::back_pressure);
  EXPECT_TRUE(r.is(errc::back_pressure));
  EXPECT_FALSE(r.is(errc::timeout));
  try {
    r.value();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), errc::back_pressure);
    return;
  }
  ADD_FAILURE() << "value() on an error did not throw fabric::error";
}

TEST(ResultVoidTest, HoldsAForeignErrorCode) {
  const result<void> r = std::error_code(EFSM, zmq_category());
  EXPECT_FALSE(r.has_value());
  EXPECT_THROW(r.value(), error);
  EXPECT_FALSE(r.is(errc::invalid_state));
}

}  // namespace
}  // namespace fabric
