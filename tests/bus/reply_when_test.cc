// Header Aion-Reply-When (outside input: every malformed value is refused
// with invalid_argument), the close reply built from an outbox row, and the
// event format (lifecycle events and dead letters in JSON or protobuf).
#define BOOST_TEST_MODULE reply_when_test
#include "aion/bus/reply_when.h"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "aion/bus/codec.h"
#include "aion/bus/event_format.h"
#include "aion/engine/payload.h"

using namespace aion;
using namespace aion::bus;

namespace {

Headers With(std::string when, std::string reply_to = "_INBOX.x") {
  Headers h;
  h.emplace(std::string(kReplyWhenHeader), std::move(when));
  if (!reply_to.empty()) h.emplace(std::string(kReplyToHeader), std::move(reply_to));
  return h;
}

StatusCode CodeOf(const Headers& h, IngressKind kind = IngressKind::kStart) {
  return ParseReplyWhen(h, kind, "aion").status().code();
}

OutboxRow CloseRow(const HistoryEvent& terminal, bool json) {
  OutboxRow row;
  row.set_kind(OutboxRow::KIND_CLOSE_REPLY);
  row.set_workflow_id("w-1");
  row.set_workflow_type("noop");
  *row.mutable_event() = terminal;
  row.mutable_reply()->set_subject("_INBOX.r");
  row.mutable_reply()->set_json(json);
  return row;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reply_when_accepts_recorded_and_closed) {
  BOOST_TEST((*ParseReplyWhen({}, IngressKind::kStart, "aion") == ReplyWhen::kRecorded));
  BOOST_TEST(
      (*ParseReplyWhen(With("recorded"), IngressKind::kSignal, "aion") == ReplyWhen::kRecorded));
  BOOST_TEST((*ParseReplyWhen(With("closed"), IngressKind::kStart, "aion") == ReplyWhen::kClosed));
  BOOST_TEST(
      (*ParseReplyWhen(With(" Closed "), IngressKind::kStart, "aion") == ReplyWhen::kClosed));
  Headers lower_name;
  lower_name.emplace("aion-reply-when", "closed");
  lower_name.emplace("aion-reply-to", "_INBOX.y");
  BOOST_TEST((*ParseReplyWhen(lower_name, IngressKind::kStart, "aion") == ReplyWhen::kClosed));
}

BOOST_AUTO_TEST_CASE(malformed_reply_when_is_invalid_argument) {
  const StatusCode ia = StatusCode::kInvalidArgument;
  BOOST_TEST((CodeOf(With("close")) == ia));
  BOOST_TEST((CodeOf(With("closed,recorded")) == ia));
  BOOST_TEST((CodeOf(With(std::string("clo\0sed", 7))) == ia));
  BOOST_TEST((CodeOf(With("\xff\xfe")) == ia));
  BOOST_TEST((CodeOf(With(std::string(10000, 'c'))) == ia));
  BOOST_TEST((CodeOf(With("closed", "")) == ia));                              // no Aion-Reply-To
  BOOST_TEST((CodeOf(With("closed", "aion.wf.x.start")) == ia));               // an Aion subject
  BOOST_TEST((CodeOf(With("closed", "$JS.API.STREAM.PURGE.AION_IN")) == ia));  // a system one
  BOOST_TEST((CodeOf(With("closed", "_INBOX.*")) == ia));                      // a wildcard
  BOOST_TEST((CodeOf(With("closed", "_INBOX.a b")) == ia));                    // a blank
  BOOST_TEST((CodeOf(With("closed", "_INBOX..a")) == ia));                     // an empty token
  BOOST_TEST((CodeOf(With("closed", ".a")) == ia));
  BOOST_TEST((CodeOf(With("closed", std::string(257, 'a'))) == ia));  // too long
  BOOST_TEST((CodeOf(With("closed", "_INBOX.\xc3\xa9")) == ia));      // not ASCII
  BOOST_TEST((CodeOf(With("closed"), IngressKind::kSignal) == ia));   // start only
  BOOST_TEST((CodeOf(With("closed"), IngressKind::kSignalWithStart) == ia));
  BOOST_TEST(ParseReplyWhen(With("bogus"), IngressKind::kStart, "aion")
                 .status()
                 .message()
                 .find("Aion-Reply-When") != std::string::npos);
}

// Every ingress reply is checked, not only close replies.
BOOST_AUTO_TEST_CASE(reply_subjects_under_the_prefix_or_the_system_are_refused) {
  const StatusCode ia = StatusCode::kInvalidArgument;
  BOOST_TEST(CheckReplySubject("_INBOX.abc", "aion").ok());
  BOOST_TEST(CheckReplySubject("replies.aion.x", "aion").ok());
  BOOST_TEST((CheckReplySubject("aion.wf.victim.terminate", "aion").code() == ia));
  BOOST_TEST((CheckReplySubject("$JS.API.STREAM.DELETE.AION_IN", "aion").code() == ia));
  BOOST_TEST((CheckReplySubject("$SYS.REQ.SERVER.PING", "aion").code() == ia));
  BOOST_TEST((CheckReplySubject("$KV.x.y", "aion").code() == ia));
  BOOST_TEST((CheckReplySubject("myco.wf.x.start", "myco").code() == ia));
}

BOOST_AUTO_TEST_CASE(codec_carries_a_close_reply_into_the_start) {
  const Codec codec(Subjects("aion"), CodecOptions{});
  WireMessage msg;
  msg.subject = Subjects("aion").InboxOf("w-1", IngressKind::kStart, 16);
  msg.headers = With("closed", "_INBOX.z");
  msg.headers.emplace(std::string(kContentTypeHeader), std::string(kJsonContentType));
  msg.data = R"({"workflow_type":"noop","input":1})";
  auto decoded = codec.DecodeIngress(msg, 1, "e");
  BOOST_REQUIRE(decoded.ok());
  BOOST_TEST(decoded->close_reply_to == "_INBOX.z");
  BOOST_TEST(decoded->close_reply_json);
  msg.headers = With("later", "_INBOX.z");
  BOOST_TEST((codec.DecodeIngress(msg, 2, "e").status().code() == StatusCode::kInvalidArgument));
  msg.headers = {{std::string(kContentTypeHeader), std::string(kJsonContentType)}};
  auto plain = codec.DecodeIngress(msg, 3, "e");
  BOOST_REQUIRE(plain.ok());
  BOOST_TEST(plain->close_reply_to.empty());
}

BOOST_AUTO_TEST_CASE(close_reply_carries_status_output_and_run) {
  HistoryEvent done;
  done.set_seq(2);
  done.set_run_id("r-9");
  *done.mutable_workflow_completed()->mutable_output() = JsonPayload({{"ok", true}});
  auto json = CloseReplyFromRow(CloseRow(done, true));
  BOOST_REQUIRE(json.ok());
  BOOST_TEST(json->subject == "_INBOX.r");
  BOOST_TEST(json->headers.at(std::string(kContentTypeHeader)) == "application/json");
  const auto j = nlohmann::json::parse(json->data);
  BOOST_TEST(j["status"] == "completed");
  BOOST_TEST(j["run_id"] == "r-9");
  BOOST_TEST(j["workflow_id"] == "w-1");
  BOOST_TEST(j["output"] == nlohmann::json({{"ok", true}}));

  HistoryEvent failed;
  failed.set_seq(3);
  failed.set_run_id("r-9");
  failed.mutable_workflow_failed()->set_message("boom");
  auto binary = CloseReplyFromRow(CloseRow(failed, false));
  BOOST_REQUIRE(binary.ok());
  BOOST_TEST(binary->headers.empty());
  wire::IngressReply reply;
  BOOST_REQUIRE(reply.ParseFromString(binary->data));
  BOOST_TEST(reply.status() == "failed");
  BOOST_TEST(reply.failure() == "boom");
  BOOST_TEST(!reply.has_error());

  HistoryEvent not_terminal;
  not_terminal.mutable_timer_fired()->set_timer_id("#1");
  BOOST_TEST((CloseReplyFromRow(CloseRow(not_terminal, true)).status().code() ==
              StatusCode::kInvalidArgument));
  OutboxRow no_subject = CloseRow(done, true);
  no_subject.clear_reply();
  BOOST_TEST((CloseReplyFromRow(no_subject).status().code() == StatusCode::kInvalidArgument));
}

BOOST_AUTO_TEST_CASE(event_format_names_and_content_types) {
  BOOST_TEST((*ParseEventFormat("json") == EventFormat::kJson));
  BOOST_TEST((*ParseEventFormat("protobuf") == EventFormat::kProtobuf));
  BOOST_TEST((ParseEventFormat("JSON").status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST((ParseEventFormat("").status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(EventHeaders(EventFormat::kJson).at("Content-Type") == "application/json");
  BOOST_TEST(EventHeaders(EventFormat::kProtobuf).at("Content-Type") == "application/protobuf");
  wire::LifecycleEvent e;
  e.set_workflow_id("w-1");
  e.set_event("started");
  BOOST_TEST(nlohmann::json::parse(EncodeEvent(e, EventFormat::kJson))["event"] == "started");
  wire::LifecycleEvent back;
  BOOST_REQUIRE(back.ParseFromString(EncodeEvent(e, EventFormat::kProtobuf)));
  BOOST_TEST(back.workflow_id() == "w-1");
}
