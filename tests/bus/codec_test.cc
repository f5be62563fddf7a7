// Codec: every malformed ingress message is a kInvalidArgument, never a crash;
// binary and JSON encodings of the same message decode alike.
#define BOOST_TEST_MODULE codec
#include "aion/bus/codec.h"

#include <google/protobuf/util/message_differencer.h>

#include <boost/test/unit_test.hpp>
#include <limits>
#include <memory>

#include "aion/engine/history.h"
#include "aion/engine/ids.h"
#include "support/workflow_messages.h"

namespace aion::bus {
namespace {

namespace pb = google::protobuf;

const Headers kJson = {{"Content-Type", "application/json"}};
constexpr std::uint32_t kP = 16;

std::string In(std::string_view id, std::string_view kind) {
  return "aion.in." + std::to_string(PartitionOf(id, kP)) + "." + std::string(id) + "." +
         std::string(kind);
}

WireMessage Binary(std::string subject, std::string data) {
  return {std::move(subject), {}, std::move(data)};
}
WireMessage JsonMsg(std::string subject, std::string data) {
  return {std::move(subject), kJson, std::move(data)};
}

wire::StartWorkflow SampleStart() {
  wire::StartWorkflow start;
  start.set_workflow_type("order");
  ValueFromJson(Json::parse(R"({"sku":"A1","qty":2,"tags":["x",true,null],"price":2.5})"),
                start.mutable_input());
  start.set_request_id("r-1");
  return start;
}

void ExpectInvalid(const Status& status, const std::string& fragment) {
  BOOST_TEST_CONTEXT("status: " << status.ToString() << "; expected: " << fragment) {
    BOOST_TEST((status.code() == StatusCode::kInvalidArgument));
    BOOST_TEST(status.message().find(fragment) != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(binary_and_json_starts_decode_to_the_same_message) {
  Codec codec;
  auto from_binary =
      codec.DecodeIngress(Binary(In("order-42", "start"), SampleStart().SerializeAsString()));
  auto from_json = codec.DecodeIngress(JsonMsg(
      In("order-42", "start"),
      R"({"workflow_type":"order","input":{"sku":"A1","qty":2,"tags":["x",true,null],"price":2.5},"request_id":"r-1"})"));
  BOOST_REQUIRE(from_binary.ok());
  BOOST_REQUIRE(from_json.ok());
  for (const auto* m : {&*from_binary, &*from_json}) {
    BOOST_TEST((m->kind == IngressMessage::Kind::kStart));
    BOOST_TEST(m->workflow_id == "order-42");
    BOOST_TEST(m->workflow_type == "order");
    BOOST_TEST(m->request_id == "r-1");
    BOOST_TEST(m->dedupe_key == "start:order-42:r-1");
    BOOST_TEST(m->input.encoding() == "json/plain");
    BOOST_TEST((*ParseJsonPayload(m->input) ==
                Json::parse(R"({"sku":"A1","qty":2,"tags":["x",true,null],"price":2.5})")));
  }
  BOOST_TEST(from_binary->input.data() == from_json->input.data());
}

BOOST_AUTO_TEST_CASE(binary_and_json_signals_decode_to_the_same_message) {
  Codec codec;
  wire::SignalWorkflow signal;
  signal.set_name("approve");
  ValueFromJson(Json::parse(R"({"by":"ana"})"), signal.mutable_input());
  auto from_binary = codec.DecodeIngress(Binary(In("o-1", "signal"), signal.SerializeAsString()));
  // camelCase and snake_case names both work in JSON; request_id is optional.
  auto from_json = codec.DecodeIngress(
      JsonMsg(In("o-1", "signal"), R"({"name":"approve","input":{"by":"ana"}})"));
  BOOST_REQUIRE(from_binary.ok());
  BOOST_REQUIRE(from_json.ok());
  for (const auto* m : {&*from_binary, &*from_json}) {
    BOOST_TEST((m->kind == IngressMessage::Kind::kSignal));
    BOOST_TEST(m->signal_name == "approve");
    BOOST_TEST(m->input.data() == R"({"by":"ana"})");
    BOOST_TEST(m->dedupe_key == "seq:0");
  }
}

BOOST_AUTO_TEST_CASE(json_content_type_is_matched_loosely) {
  Codec codec;
  WireMessage msg{In("w", "start"),
                  {{"content-type", "Application/JSON; charset=utf-8"}},
                  R"({"workflowType":"noop"})"};
  auto decoded = codec.DecodeIngress(msg);
  BOOST_REQUIRE(decoded.ok());
  BOOST_TEST(decoded->workflow_type == "noop");
  BOOST_TEST(decoded->input.data() == "null");  // absent input reads as JSON null
}

BOOST_AUTO_TEST_CASE(dedupe_key_prefers_request_id_then_msg_id_then_stream_sequence) {
  Codec codec;
  WireMessage msg = JsonMsg(In("w", "signal"), R"({"name":"go"})");
  BOOST_TEST(codec.DecodeIngress(msg, 17, "")->dedupe_key == "seq:17");
  BOOST_TEST(codec.DecodeIngress(msg, 17, "1700")->dedupe_key == "seq:1700:17");
  msg.headers["Nats-Msg-Id"] = "client-9";
  BOOST_TEST(codec.DecodeIngress(msg, 17, "1700")->dedupe_key == "msgid:signal:w:client-9");
  msg.headers["Nats-Msg-Id"] = std::string(kMaxMsgIdBytes + 1, 'x');
  ExpectInvalid(codec.DecodeIngress(msg, 17, "1700").status(), "Nats-Msg-Id");
  msg.headers["Nats-Msg-Id"] = "client-9";
  msg.data = R"({"name":"go","request_id":"r-2"})";
  BOOST_TEST(codec.DecodeIngress(msg, 17, "1700")->dedupe_key == "signal:w:r-2");
}

// Every malformed body, for both supported kinds.
BOOST_AUTO_TEST_CASE(malformed_bodies_are_invalid_argument_for_every_kind) {
  Codec codec;
  std::string start = SampleStart().SerializeAsString();
  wire::SignalWorkflow s;
  s.set_name("approve");
  ValueFromJson(Json::parse(R"({"a":"a long enough string to cut"})"), s.mutable_input());
  std::string signal = s.SerializeAsString();
  struct Kind {
    std::string name, valid_binary, name_field;
  };
  for (const Kind& k : {Kind{"start", start, "workflow_type"}, Kind{"signal", signal, "name"}}) {
    BOOST_TEST_CONTEXT("kind " << k.name) {
      const std::string subject = In("w-1", k.name);
      ExpectInvalid(codec.DecodeIngress(Binary(subject, "\xff\xff\xff\xff garbage")).status(),
                    "not a valid");
      ExpectInvalid(
          codec.DecodeIngress(Binary(subject, k.valid_binary.substr(0, k.valid_binary.size() - 3)))
              .status(),
          "not a valid");
      ExpectInvalid(codec.DecodeIngress(Binary(subject, "")).status(), "is empty");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, "{not json")).status(), "JSON");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, "")).status(), "JSON");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, "[1,2]")).status(), "JSON");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, "{\"" + k.name_field + "\":5}")).status(),
                    "JSON");
      ExpectInvalid(codec
                        .DecodeIngress(
                            JsonMsg(subject, "{\"" + k.name_field + "\":\"x\",\"request_id\":[1]}"))
                        .status(),
                    "JSON");
      ExpectInvalid(
          codec.DecodeIngress(JsonMsg(subject, "{\"" + k.name_field + "\":\"x\",\"bogus\":1}"))
              .status(),
          "bogus");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"input":{"a":1}})")).status(),
                    "is empty");
      ExpectInvalid(
          codec.DecodeIngress(JsonMsg(subject, "{\"" + k.name_field + "\":\"\"}")).status(),
          "is empty");
      ExpectInvalid(
          codec.DecodeIngress(JsonMsg(subject, "{\"" + k.name_field + "\":\"has space\"}"))
              .status(),
          "invalid character");
      ExpectInvalid(codec
                        .DecodeIngress(JsonMsg(
                            subject, "{\"" + k.name_field + "\":\"x\",\"request_id\":\"a/b\"}"))
                        .status(),
                    "request_id");
      // The JSON input is valid but its body is not what Binary says it is.
      ExpectInvalid(
          codec.DecodeIngress(Binary(subject, "{\"" + k.name_field + "\":\"x\"}")).status(), "");
    }
  }
}

BOOST_AUTO_TEST_CASE(invalid_subjects_and_kinds_are_invalid_argument) {
  Codec codec;
  const std::string body = R"({"workflow_type":"noop"})";
  ExpectInvalid(codec.DecodeIngress(JsonMsg("aion.in.0.bad%id.start", body)).status(),
                "invalid character");
  ExpectInvalid(
      codec.DecodeIngress(JsonMsg("aion.in.0." + std::string(200, 'x') + ".start", body)).status(),
      "longer than 128");
  ExpectInvalid(codec.DecodeIngress(JsonMsg("aion.in.0.a.b.start", body)).status(), "tokens");
  ExpectInvalid(codec.DecodeIngress(JsonMsg("aion.wf.w.start", body)).status(),
                "does not start with");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(In("w", "launch"), body)).status(),
                "unknown ingress kind 'launch'");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(In("w", "signal_with_start"), body)).status(),
                "signal_name is empty");
  // Kinds that are supported check their own body: a start body is not one.
  for (const char* kind : {"cancel", "terminate", "activity_result"}) {
    ExpectInvalid(codec.DecodeIngress(JsonMsg(In("w", kind), body)).status(), "workflow_type");
  }
  const std::uint32_t wrong = (PartitionOf("w", kP) + 1) % kP;
  ExpectInvalid(
      codec.DecodeIngress(JsonMsg("aion.in." + std::to_string(wrong) + ".w.start", body)).status(),
      "belongs to partition");
}

BOOST_AUTO_TEST_CASE(oversized_payloads_are_invalid_argument) {
  Codec codec(Subjects(), CodecOptions{.max_payload_bytes = 1024, .partitions = kP});
  const std::string big(2000, 'a');
  ExpectInvalid(codec
                    .DecodeIngress(JsonMsg(In("w", "start"),
                                           R"({"workflow_type":"noop","input":")" + big + "\"}"))
                    .status(),
                "exceeds the limit of 1024 bytes");
  wire::StartWorkflow start;
  start.set_workflow_type("noop");
  start.mutable_input()->set_string_value(big);
  ExpectInvalid(codec.DecodeIngress(Binary(In("w", "start"), start.SerializeAsString())).status(),
                "exceeds the limit");
  // The body fits but its input grows past the limit once it is JSON text.
  wire::StartWorkflow nested;
  nested.set_workflow_type("noop");
  auto* list = nested.mutable_input()->mutable_list_value();
  for (int i = 0; i < 150; ++i) list->add_values()->set_number_value(0.1234567891234);
  BOOST_REQUIRE(nested.ByteSizeLong() < 2048);
  Codec mid(Subjects(), CodecOptions{.max_payload_bytes = 2048, .partitions = kP});
  ExpectInvalid(mid.DecodeIngress(Binary(In("w", "start"), nested.SerializeAsString())).status(),
                "input of");
}

BOOST_AUTO_TEST_CASE(dlq_kind_is_the_kind_token_or_unknown) {
  Codec codec;
  BOOST_TEST(codec.DlqKind("aion.in.3.w.signal") == "signal");
  BOOST_TEST(codec.DlqKind("aion.in.3.w.cancel") == "cancel");
  BOOST_TEST(codec.DlqKind("aion.in.3.w.launch") == "unknown");
  BOOST_TEST(codec.DlqKind("garbage") == "unknown");
}

BOOST_AUTO_TEST_CASE(requests_decode_from_empty_binary_and_json) {
  Codec codec;
  wire::ResultRequest request;
  request.set_timeout_ms(99);
  BOOST_TEST(codec.DecodeRequest(Binary("s", ""), &request).ok());
  BOOST_TEST(request.timeout_ms() == 0u);
  BOOST_TEST(codec.DecodeRequest(JsonMsg("s", R"({"timeout_ms":250})"), &request).ok());
  BOOST_TEST(request.timeout_ms() == 250u);
  wire::HistoryRequest history;
  ExpectInvalid(codec.DecodeRequest(JsonMsg("s", R"({"from_seq":"x"})"), &history), "JSON");
  ExpectInvalid(codec.DecodeRequest(Binary("s", "\xff\xff"), &history), "not a valid");
}

BOOST_AUTO_TEST_CASE(replies_encode_as_json_or_binary) {
  IngressOutcome outcome;
  outcome.status = Status(StatusCode::kAlreadyStarted, "run abc is open");
  wire::IngressReply reply = MakeIngressReply("w-1", outcome);
  auto json = Json::parse(EncodeMessage(reply, true));
  BOOST_TEST(json["workflow_id"] == "w-1");
  BOOST_TEST(json["error"]["code"] == "already_started");
  BOOST_TEST(json["error"]["message"] == "run abc is open");
  wire::IngressReply back;
  BOOST_REQUIRE(back.ParseFromString(EncodeMessage(reply, false)));
  BOOST_TEST(back.error().code() == "already_started");

  IngressOutcome ok;
  ok.run_id = "r1";
  ok.duplicate = true;
  auto ok_json = Json::parse(EncodeMessage(MakeIngressReply("w-1", ok), true));
  BOOST_TEST(ok_json["run_id"] == "r1");
  BOOST_TEST(ok_json["duplicate"] == true);
  BOOST_TEST(!ok_json.contains("error"));
}

OutboxRow Row(HistoryEvent event) {
  OutboxRow row;
  row.set_key("k-1");
  row.set_kind(OutboxRow::KIND_LIFECYCLE);
  row.set_workflow_id("w-1");
  row.set_workflow_type("noop");
  *row.mutable_event() = std::move(event);
  return row;
}

BOOST_AUTO_TEST_CASE(lifecycle_events_come_from_outbox_rows) {
  Subjects subjects;
  HistoryEvent started;
  started.set_seq(1);
  started.set_run_id("run-1");
  started.set_recorded_at_us(123);
  *started.mutable_workflow_started()->mutable_input() = JsonPayload(Json{{"n", 5}});
  auto m = LifecycleFromRow(Row(started), subjects);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->subject == "aion.evt.noop.w-1.started");
  BOOST_TEST(m->event.event() == "started");
  BOOST_TEST(m->event.run_id() == "run-1");
  BOOST_TEST(m->event.seq() == 1u);
  BOOST_TEST(m->event.time_us() == 123);
  BOOST_TEST((JsonFromValue(m->event.input()) == Json{{"n", 5}}));

  HistoryEvent completed;
  completed.set_seq(2);
  *completed.mutable_workflow_completed()->mutable_output() = JsonPayload(Json("done"));
  m = LifecycleFromRow(Row(completed), subjects);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->subject == "aion.evt.noop.w-1.completed");
  BOOST_TEST(m->event.output().string_value() == "done");

  HistoryEvent failed;
  failed.mutable_workflow_failed()->set_message("boom");
  m = LifecycleFromRow(Row(failed), subjects);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->event.event() == "failed");
  BOOST_TEST(m->event.failure() == "boom");

  HistoryEvent timer;
  timer.mutable_timer_fired()->set_timer_id("t");
  ExpectInvalid(LifecycleFromRow(Row(timer), subjects).status(), "not a lifecycle event");
  OutboxRow other = Row(started);
  other.set_kind(OutboxRow::KIND_UNSPECIFIED);
  ExpectInvalid(LifecycleFromRow(other, subjects).status(), "not a lifecycle row");
}

BOOST_AUTO_TEST_CASE(values_and_json_convert_both_ways) {
  const Json doc = Json::parse(
      R"({"i":-3,"big":9007199254740992,"f":0.5,"s":"x","b":false,"n":null,"a":[1,{"k":[]}]})");
  pb::Value value;
  ValueFromJson(doc, &value);
  BOOST_TEST((JsonFromValue(value) == doc));
  pb::Value unset;
  BOOST_TEST(JsonFromValue(unset).is_null());
  Payload binary;
  binary.set_encoding("binary/plain");
  binary.set_data("\x01\x02");
  BOOST_TEST(ValueFromPayload(binary).struct_value().fields().at("base64").string_value() ==
             "AQI=");
  BOOST_TEST(WorkflowStatusName(WorkflowStatus::WORKFLOW_STATUS_COMPLETED) == "completed");
  BOOST_TEST(WorkflowStatusName(WorkflowStatus::WORKFLOW_STATUS_RUNNING) == "running");
}

BOOST_AUTO_TEST_CASE(error_text_quoting_bad_input_stays_valid_utf8) {
  BOOST_TEST(SanitizeUtf8("plain ä € 😀") == "plain ä € 😀");
  BOOST_TEST(SanitizeUtf8("a\xff b") == "a\uFFFD b");
  BOOST_TEST(SanitizeUtf8("\xC0\xAF") == "\uFFFD\uFFFD");             // overlong
  BOOST_TEST(SanitizeUtf8("\xED\xA0\x80") == "\uFFFD\uFFFD\uFFFD");   // surrogate
  BOOST_TEST(SanitizeUtf8("x\xE2\x82") == "x\uFFFD\uFFFD");           // cut short
  BOOST_TEST(SanitizeUtf8("\xF4\x90\x80\x80").find("\uFFFD") == 0u);  // beyond U+10FFFF

  Codec codec;
  const std::string garbage = "\xff\xfe\x00\x80 {\"workflow_type\":\"\xc3\x28\"}";
  auto decoded = codec.DecodeIngress(JsonMsg(In("w", "start"), garbage));
  ExpectInvalid(decoded.status(), "JSON");
  wire::Error error = ErrorFromStatus(decoded.status());
  wire::Error parsed;
  BOOST_TEST(parsed.ParseFromString(error.SerializeAsString()));  // fails on invalid UTF-8
  BOOST_TEST(SanitizeUtf8(error.message()) == error.message());
  BOOST_TEST(error.message().size() < 1000u);
}

// ---- run timeout, cancel, terminate ----

BOOST_AUTO_TEST_CASE(start_carries_its_run_timeout_in_microseconds) {
  Codec codec;
  auto none = codec.DecodeIngress(JsonMsg(In("w", "start"), R"({"workflow_type":"noop"})"));
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->run_timeout_us == 0);
  auto json = codec.DecodeIngress(
      JsonMsg(In("w", "start"), R"({"workflow_type":"noop","run_timeout_ms":1500})"));
  BOOST_REQUIRE(json.ok());
  BOOST_TEST(json->run_timeout_us == 1'500'000);
  wire::StartWorkflow start;
  start.set_workflow_type("noop");
  start.set_run_timeout_ms(30000);
  auto binary = codec.DecodeIngress(Binary(In("w", "start"), start.SerializeAsString()));
  BOOST_REQUIRE(binary.ok());
  BOOST_TEST(binary->run_timeout_us == 30'000'000);
  start.set_run_timeout_ms(-1);
  ExpectInvalid(codec.DecodeIngress(Binary(In("w", "start"), start.SerializeAsString())).status(),
                "run_timeout_ms -1 is out of range");
  start.set_run_timeout_ms(kMaxRunTimeoutMs + 1);
  ExpectInvalid(codec.DecodeIngress(Binary(In("w", "start"), start.SerializeAsString())).status(),
                "out of range");
  // The largest allowed timeout does not overflow once in microseconds.
  start.set_run_timeout_ms(kMaxRunTimeoutMs);
  auto longest = codec.DecodeIngress(Binary(In("w", "start"), start.SerializeAsString()));
  BOOST_REQUIRE(longest.ok());
  BOOST_TEST(longest->run_timeout_us == kMaxRunTimeoutMs * 1000);
  ExpectInvalid(codec
                    .DecodeIngress(JsonMsg(In("w", "start"),
                                           R"({"workflow_type":"noop","run_timeout_ms":"x"})"))
                    .status(),
                "JSON");
}

BOOST_AUTO_TEST_CASE(cancel_and_terminate_decode_from_binary_and_json) {
  Codec codec;
  wire::CancelWorkflow cancel;
  cancel.set_reason("customer asked");
  cancel.set_request_id("c-1");
  wire::TerminateWorkflow terminate;
  terminate.set_reason("stuck");
  terminate.set_request_id("t-1");
  struct Case {
    std::string kind;
    IngressMessage::Kind expected;
    std::string binary, json, reason, key;
  };
  for (const Case& c :
       {Case{"cancel", IngressMessage::Kind::kCancel, cancel.SerializeAsString(),
             R"({"reason":"customer asked","request_id":"c-1"})", "customer asked",
             "cancel:w-1:c-1"},
        Case{"terminate", IngressMessage::Kind::kTerminate, terminate.SerializeAsString(),
             R"({"reason":"stuck","request_id":"t-1"})", "stuck", "terminate:w-1:t-1"}}) {
    BOOST_TEST_CONTEXT("kind " << c.kind) {
      auto from_binary = codec.DecodeIngress(Binary(In("w-1", c.kind), c.binary));
      auto from_json = codec.DecodeIngress(JsonMsg(In("w-1", c.kind), c.json));
      BOOST_REQUIRE_MESSAGE(from_binary.ok(), from_binary.status().ToString());
      BOOST_REQUIRE_MESSAGE(from_json.ok(), from_json.status().ToString());
      for (const auto* m : {&*from_binary, &*from_json}) {
        BOOST_TEST((m->kind == c.expected));
        BOOST_TEST(m->workflow_id == "w-1");
        BOOST_TEST(m->reason == c.reason);
        BOOST_TEST(m->dedupe_key == c.key);
      }
      // Everything is optional: an empty body is a cancel without a reason,
      // deduplicated by its stream sequence.
      auto bare = codec.DecodeIngress(Binary(In("w-1", c.kind), ""), 7, "99");
      BOOST_REQUIRE(bare.ok());
      BOOST_TEST(bare->reason.empty());
      BOOST_TEST(bare->dedupe_key == "seq:99:7");
      auto by_msg_id = codec.DecodeIngress(
          WireMessage{In("w-1", c.kind), {{"Nats-Msg-Id", "m-5"}}, ""}, 7, "99");
      BOOST_REQUIRE(by_msg_id.ok());
      BOOST_TEST(by_msg_id->dedupe_key == "msgid:" + c.kind + ":w-1:m-5");

      const std::string subject = In("w-1", c.kind);
      ExpectInvalid(codec.DecodeIngress(Binary(subject, "\xff\xff\xff garbage")).status(),
                    "not a valid");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, "{")).status(), "JSON");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"reason":5})")).status(), "JSON");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"reason":"x","why":1})")).status(),
                    "why");
      ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"request_id":"a b"})")).status(),
                    "request_id");
      ExpectInvalid(
          codec
              .DecodeIngress(
                  JsonMsg(subject, Json{{"reason", std::string(kMaxReasonBytes + 1, 'r')}}.dump()))
              .status(),
          "reason is 4097 bytes");
      BOOST_TEST(codec
                     .DecodeIngress(JsonMsg(
                         subject, Json{{"reason", std::string(kMaxReasonBytes, 'r')}}.dump()))
                     .ok());
      ExpectInvalid(
          codec.DecodeIngress(JsonMsg(subject, "[" + std::string(60, '[') + "]")).status(),
          "levels deep");
    }
  }
}

// ---- activity results ----

wire::ActivityResult SampleResult() {
  wire::ActivityResult r;
  r.set_run_id("0123456789abcdef0123456789abcdef");
  r.set_activity_id("#3");
  r.set_attempt(2);
  ValueFromJson(Json{{"charged", 12.5}}, r.mutable_output());
  return r;
}

BOOST_AUTO_TEST_CASE(activity_results_decode_from_binary_and_json) {
  Codec codec;
  const std::string subject = In("order-7", "activity_result");
  auto from_binary =
      codec.DecodeIngress(Binary(subject, SampleResult().SerializeAsString()), 3, "e");
  auto from_json = codec.DecodeIngress(
      JsonMsg(
          subject,
          R"({"run_id":"0123456789abcdef0123456789abcdef","activity_id":"#3","attempt":2,"output":{"charged":12.5}})"),
      3, "e");
  BOOST_REQUIRE_MESSAGE(from_binary.ok(), from_binary.status().ToString());
  BOOST_REQUIRE_MESSAGE(from_json.ok(), from_json.status().ToString());
  for (const auto* m : {&*from_binary, &*from_json}) {
    BOOST_TEST((m->kind == IngressMessage::Kind::kActivityResult));
    BOOST_TEST(m->workflow_id == "order-7");
    BOOST_TEST(m->run_id == "0123456789abcdef0123456789abcdef");
    BOOST_TEST(m->activity_id == "#3");
    BOOST_TEST(m->attempt == 2u);
    BOOST_TEST(!m->activity_failed);
    BOOST_TEST(m->input.encoding() == "json/plain");
    BOOST_TEST((*ParseJsonPayload(m->input) == Json{{"charged", 12.5}}));
    BOOST_TEST(m->dedupe_key == "seq:e:3");
  }
  // No output at all is a result of JSON null (an activity returning nothing).
  auto empty_output = codec.DecodeIngress(
      JsonMsg(subject, R"({"run_id":"r","activity_id":"a","attempt":1,"request_id":"x-1"})"));
  BOOST_REQUIRE(empty_output.ok());
  BOOST_TEST(empty_output->input.data() == "null");
  BOOST_TEST(empty_output->dedupe_key == "activity_result:order-7:x-1");
}

BOOST_AUTO_TEST_CASE(a_failed_activity_result_carries_its_failure) {
  Codec codec;
  const std::string subject = In("order-7", "activity_result");
  auto failed = codec.DecodeIngress(JsonMsg(
      subject,
      R"({"run_id":"r1","activity_id":"#1","attempt":3,"failure":{"message":"card declined","type":"PaymentError","non_retryable":true}})"));
  BOOST_REQUIRE_MESSAGE(failed.ok(), failed.status().ToString());
  BOOST_TEST(failed->activity_failed);
  BOOST_TEST(failed->failure.message() == "card declined");
  BOOST_TEST(failed->failure.error_type() == "PaymentError");
  BOOST_TEST(failed->failure.non_retryable());
  BOOST_TEST(failed->attempt == 3u);
  // An empty failure object still means "failed".
  auto bare = codec.DecodeIngress(
      JsonMsg(subject, R"({"run_id":"r1","activity_id":"#1","attempt":1,"failure":{}})"));
  BOOST_REQUIRE(bare.ok());
  BOOST_TEST(bare->activity_failed);
  BOOST_TEST(!bare->failure.non_retryable());
  wire::ActivityResult binary = SampleResult();
  binary.clear_output();
  binary.mutable_failure()->set_message("timeout talking to bank");
  auto from_binary = codec.DecodeIngress(Binary(subject, binary.SerializeAsString()));
  BOOST_REQUIRE(from_binary.ok());
  BOOST_TEST(from_binary->activity_failed);
  BOOST_TEST(from_binary->failure.message() == "timeout talking to bank");
}

BOOST_AUTO_TEST_CASE(malformed_activity_results_are_invalid_argument) {
  Codec codec(Subjects(), CodecOptions{.max_payload_bytes = 4096, .partitions = kP});
  const std::string subject = In("w", "activity_result");
  auto json = [&](const std::string& body) { return codec.DecodeIngress(JsonMsg(subject, body)); };
  ExpectInvalid(json("{").status(), "not valid ActivityResult JSON");
  ExpectInvalid(json("").status(), "JSON");
  ExpectInvalid(json("[1]").status(), "JSON");
  ExpectInvalid(codec.DecodeIngress(Binary(subject, "\xff\xff\xff\xff")).status(),
                "not a valid ActivityResult protobuf");
  ExpectInvalid(codec.DecodeIngress(Binary(subject, "")).status(), "run_id is empty");
  ExpectInvalid(json(R"({"activity_id":"a","attempt":1})").status(), "run_id is empty");
  ExpectInvalid(json(R"({"run_id":"r","attempt":1})").status(), "activity_id is empty");
  ExpectInvalid(json(R"({"run_id":"r","activity_id":"a"})").status(), "attempt must be at least 1");
  ExpectInvalid(json(R"({"run_id":"r","activity_id":"a","attempt":0})").status(),
                "attempt must be at least 1");
  ExpectInvalid(json(R"({"run_id":"r","activity_id":"a","attempt":-1})").status(), "JSON");
  ExpectInvalid(json(R"({"run_id":"r","activity_id":"a","attempt":"two"})").status(), "JSON");
  ExpectInvalid(json(R"({"run_id":5,"activity_id":"a","attempt":1})").status(), "JSON");
  ExpectInvalid(json(R"({"run_id":"r","activity_id":"a","attempt":1,"failure":"bad"})").status(),
                "JSON");
  ExpectInvalid(json(R"({"run_id":"r","activity_id":"a","attempt":1,"extra":1})").status(),
                "extra");
  ExpectInvalid(json(R"({"run_id":"has space","activity_id":"a","attempt":1})").status(),
                "run_id contains an invalid character");
  ExpectInvalid(json(R"({"run_id":"r","activity_id":"a\n","attempt":1})").status(),
                "activity_id contains an invalid character");
  ExpectInvalid(json(Json{{"run_id", "r"},
                          {"activity_id", std::string(kMaxActivityIdBytes + 1, 'a')},
                          {"attempt", 1}}
                         .dump())
                    .status(),
                "activity_id is 257 bytes");
  ExpectInvalid(
      json(R"({"run_id":"r","activity_id":"a","attempt":1,"request_id":"no/slash"})").status(),
      "request_id");
  ExpectInvalid(
      json(R"({"run_id":"r","activity_id":"a","attempt":1,"output":1,"failure":{"message":"x"}})")
          .status(),
      "either output or failure");
  // Oversized: the body, and an output that grows past the limit as JSON text.
  ExpectInvalid(json(Json{{"run_id", "r"},
                          {"activity_id", "a"},
                          {"attempt", 1},
                          {"output", std::string(5000, 'x')}}
                         .dump())
                    .status(),
                "exceeds the limit of 4096 bytes");
  wire::ActivityResult grows = SampleResult();
  auto* list = grows.mutable_output()->mutable_list_value();
  for (int i = 0; i < 300; ++i) list->add_values()->set_number_value(0.1234567891234);
  BOOST_REQUIRE(grows.ByteSizeLong() < 4096);
  ExpectInvalid(codec.DecodeIngress(Binary(subject, grows.SerializeAsString())).status(),
                "input of");
  Codec roomy;
  ExpectInvalid(
      roomy
          .DecodeIngress(JsonMsg(subject, Json{{"run_id", "r"},
                                               {"activity_id", "a"},
                                               {"attempt", 1},
                                               {"failure", {{"message", std::string(40000, 'm')}}}}
                                              .dump()))
          .status(),
      "failure.message is 40000 bytes");
  ExpectInvalid(
      roomy
          .DecodeIngress(JsonMsg(subject, Json{{"run_id", "r"},
                                               {"activity_id", "a"},
                                               {"attempt", 1},
                                               {"failure", {{"type", std::string(300, 't')}}}}
                                              .dump()))
          .status(),
      "failure.type is 300 bytes");
  // Deep nesting is refused before parsing.
  std::string deep = R"({"run_id":"r","activity_id":"a","attempt":1,"output":)" +
                     std::string(100, '[') + std::string(100, ']') + "}";
  ExpectInvalid(roomy.DecodeIngress(JsonMsg(subject, deep)).status(), "101 levels deep");
  // Invalid UTF-8 inside a JSON string.
  ExpectInvalid(json("{\"run_id\":\"r\",\"activity_id\":\"\xc3\",\"attempt\":1}").status(), "JSON");
}

// ---- heartbeats ----

BOOST_AUTO_TEST_CASE(heartbeats_decode_and_validate) {
  Codec codec(Subjects(), CodecOptions{.max_payload_bytes = 2048, .partitions = kP});
  wire::HeartbeatRequest req;
  req.set_run_id("r1");
  req.set_activity_id("#2");
  req.set_attempt(4);
  ValueFromJson(Json{{"done", 40}}, req.mutable_details());
  auto binary = codec.DecodeHeartbeat(Binary("s", req.SerializeAsString()), "w-1");
  BOOST_REQUIRE_MESSAGE(binary.ok(), binary.status().ToString());
  BOOST_TEST(binary->workflow_id == "w-1");
  BOOST_TEST(binary->run_id == "r1");
  BOOST_TEST(binary->activity_id == "#2");
  BOOST_TEST(binary->attempt == 4u);
  BOOST_TEST((*ParseJsonPayload(binary->details) == Json{{"done", 40}}));
  auto json = codec.DecodeHeartbeat(
      JsonMsg("s", R"({"run_id":"r1","activity_id":"#2","attempt":4})"), "w-1");
  BOOST_REQUIRE(json.ok());
  BOOST_TEST(json->details.data().empty());  // no details: nothing recorded

  ExpectInvalid(codec.DecodeHeartbeat(Binary("s", ""), "w-1").status(), "run_id is empty");
  ExpectInvalid(codec.DecodeHeartbeat(JsonMsg("s", "{"), "w-1").status(), "JSON");
  ExpectInvalid(codec.DecodeHeartbeat(Binary("s", "\xff\xff"), "w-1").status(), "not a valid");
  ExpectInvalid(
      codec.DecodeHeartbeat(JsonMsg("s", R"({"run_id":"r","activity_id":"a","attempt":0})"), "w-1")
          .status(),
      "attempt must be at least 1");
  ExpectInvalid(
      codec.DecodeHeartbeat(JsonMsg("s", R"({"run_id":"r","attempt":1})"), "w-1").status(),
      "activity_id is empty");
  ExpectInvalid(
      codec
          .DecodeHeartbeat(JsonMsg("s", R"({"run_id":"r","activity_id":"a","attempt":1,"x":1})"),
                           "w-1")
          .status(),
      "x");
  ExpectInvalid(codec
                    .DecodeHeartbeat(JsonMsg("s", Json{{"run_id", "r"},
                                                       {"activity_id", "a"},
                                                       {"attempt", 1},
                                                       {"details", std::string(3000, 'd')}}
                                                      .dump()),
                                     "w-1")
                    .status(),
                "exceeds the limit");
  ExpectInvalid(codec
                    .DecodeHeartbeat(
                        JsonMsg("s", R"({"run_id":"r","activity_id":"a","attempt":1})"), "bad id")
                    .status(),
                "invalid character");
}

BOOST_AUTO_TEST_CASE(heartbeat_replies_tell_the_worker_to_stop_or_go_on) {
  wire::HeartbeatReply ok = MakeHeartbeatReply(Status::Ok());
  BOOST_TEST(!ok.cancel_requested());
  BOOST_TEST(!ok.has_error());
  wire::HeartbeatReply gone = MakeHeartbeatReply(NotFound("attempt 2 of #1 is not running"));
  BOOST_TEST(gone.cancel_requested());
  BOOST_TEST(!gone.has_error());
  wire::HeartbeatReply bad = MakeHeartbeatReply(InvalidArgument("no"));
  BOOST_TEST(!bad.cancel_requested());
  BOOST_TEST(bad.error().code() == "invalid_argument");
  wire::HeartbeatReply busy = MakeHeartbeatReply(Unavailable("disk"));
  BOOST_TEST(busy.error().code() == "unavailable");
  BOOST_TEST(Json::parse(EncodeMessage(gone, true))["cancel_requested"] == true);
}

// ---- outbox rows for activity workers ----

OutboxRow TaskRow(OutboxRow::Kind kind = OutboxRow::KIND_ACTIVITY_TASK) {
  OutboxRow row;
  row.set_key("order-7/00000000000000000004");
  row.set_kind(kind);
  row.set_workflow_id("order-7");
  row.set_workflow_type("order");
  auto* t = row.mutable_task();
  t->set_run_id("run-1");
  t->set_activity_id("#1");
  t->set_attempt(2);
  t->set_activity_type("charge");
  t->set_task_queue("payments");
  *t->mutable_input() = JsonPayload(Json{{"amount", 12}, {"big", 9007199254740991}});
  t->set_start_to_close_us(10'000'000);
  t->set_heartbeat_timeout_us(1'500);  // rounds up to 2 ms, never down to "none"
  t->set_scheduled_at_us(1'700'000'000'000'000);
  t->set_started_at_us(1'700'000'000'100'000);
  t->set_reason("workflow cancelled");
  return row;
}

BOOST_AUTO_TEST_CASE(activity_tasks_come_from_outbox_rows_as_json_with_every_field) {
  Subjects subjects;
  auto m = ActivityTaskFromRow(TaskRow(), subjects);
  BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  BOOST_TEST(m->subject == "aion.task.payments");
  BOOST_TEST(m->msg_id == "order-7:run-1:#1:2");
  const Json j = Json::parse(EncodeMessage(m->task, /*json=*/true, /*all_fields=*/true));
  BOOST_TEST(j["workflow_id"] == "order-7");
  BOOST_TEST(j["run_id"] == "run-1");
  BOOST_TEST(j["activity_id"] == "#1");
  BOOST_TEST(j["attempt"] == 2);
  BOOST_TEST(j["activity_type"] == "charge");
  BOOST_TEST(j["task_queue"] == "payments");
  BOOST_TEST((j["input"] == Json{{"amount", 12}, {"big", 9007199254740991}}));
  BOOST_TEST(j["start_to_close_ms"] == "10000");  // int64: a string in the JSON mapping
  BOOST_TEST(j["heartbeat_timeout_ms"] == "2");
  BOOST_TEST(j["scheduled_at_us"] == "1700000000000000");
  BOOST_TEST(j["started_at_us"] == "1700000000100000");
  BOOST_TEST(j["result_subject"] == "aion.wf.order-7.activity_result");
  BOOST_TEST(j["heartbeat_subject"] == "aion.req.order-7.heartbeat");
  BOOST_TEST(j.size() == 13u);
  // Every field is there even at its default, so workers need no defaults table.
  OutboxRow no_timeouts = TaskRow();
  no_timeouts.mutable_task()->set_start_to_close_us(0);
  no_timeouts.mutable_task()->set_heartbeat_timeout_us(0);
  auto plain = ActivityTaskFromRow(no_timeouts, subjects);
  BOOST_REQUIRE(plain.ok());
  const Json p = Json::parse(EncodeMessage(plain->task, true, true));
  BOOST_TEST(p["start_to_close_ms"] == "0");
  BOOST_TEST(p["heartbeat_timeout_ms"] == "0");
  // The JSON parses back into the same message (what a worker in C++ would do).
  wire::ActivityTask back;
  BOOST_TEST(Codec().DecodeRequest(WireMessage{"s", kJson, j.dump()}, &back).ok());
  // Compared as messages: a Struct's map has no fixed serialized order.
  BOOST_TEST(pb::util::MessageDifferencer::Equals(back, m->task));
  // Another prefix changes every subject.
  auto acme = ActivityTaskFromRow(TaskRow(), Subjects("acme"));
  BOOST_REQUIRE(acme.ok());
  BOOST_TEST(acme->subject == "acme.task.payments");
  BOOST_TEST(acme->task.result_subject() == "acme.wf.order-7.activity_result");
  BOOST_TEST(acme->task.heartbeat_subject() == "acme.req.order-7.heartbeat");
}

BOOST_AUTO_TEST_CASE(activity_task_rows_that_cannot_be_sent_are_invalid_argument) {
  Subjects subjects;
  ExpectInvalid(ActivityTaskFromRow(TaskRow(OutboxRow::KIND_LIFECYCLE), subjects).status(),
                "is not an activity task row");
  ExpectInvalid(ActivityTaskFromRow(TaskRow(OutboxRow::KIND_ACTIVITY_CANCEL), subjects).status(),
                "is not an activity task row");
  for (const char* queue : {"", "a.b", "q*", ">", "has space"}) {
    OutboxRow row = TaskRow();
    row.mutable_task()->set_task_queue(queue);
    ExpectInvalid(ActivityTaskFromRow(row, subjects).status(), "task queue");
  }
  OutboxRow no_attempt = TaskRow();
  no_attempt.mutable_task()->set_attempt(0);
  ExpectInvalid(ActivityTaskFromRow(no_attempt, subjects).status(), "attempt");
  OutboxRow no_activity = TaskRow();
  no_activity.mutable_task()->clear_activity_id();
  ExpectInvalid(ActivityTaskFromRow(no_activity, subjects).status(), "activity_id is empty");
  OutboxRow bad_id = TaskRow();
  bad_id.set_workflow_id("a.b");
  ExpectInvalid(ActivityTaskFromRow(bad_id, subjects).status(), "invalid character");
}

BOOST_AUTO_TEST_CASE(activity_cancel_notes_come_from_outbox_rows) {
  Subjects subjects;
  auto m = ActivityCancelFromRow(TaskRow(OutboxRow::KIND_ACTIVITY_CANCEL), subjects);
  BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  BOOST_TEST(m->subject == "aion.task.payments.cancel");
  const Json j = Json::parse(EncodeMessage(m->cancel, true, true));
  BOOST_TEST((j == Json{{"workflow_id", "order-7"},
                        {"run_id", "run-1"},
                        {"activity_id", "#1"},
                        {"attempt", 2},
                        {"reason", "workflow cancelled"}}));
  ExpectInvalid(ActivityCancelFromRow(TaskRow(), subjects).status(), "not an activity cancel row");
  OutboxRow bad = TaskRow(OutboxRow::KIND_ACTIVITY_CANCEL);
  bad.mutable_task()->set_task_queue("x.y");
  ExpectInvalid(ActivityCancelFromRow(bad, subjects).status(), "task queue");
}

BOOST_AUTO_TEST_CASE(cancelled_terminated_and_timed_out_runs_have_lifecycle_events) {
  Subjects subjects;
  HistoryEvent cancelled;
  cancelled.set_seq(9);
  cancelled.set_run_id("run-1");
  cancelled.mutable_workflow_cancelled()->set_message("customer asked");
  auto m = LifecycleFromRow(Row(cancelled), subjects);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->subject == "aion.evt.noop.w-1.cancelled");
  BOOST_TEST(m->event.event() == "cancelled");
  BOOST_TEST(m->event.failure() == "customer asked");

  HistoryEvent terminated;
  terminated.mutable_workflow_terminated()->set_reason("stuck");
  m = LifecycleFromRow(Row(terminated), subjects);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->subject == "aion.evt.noop.w-1.terminated");
  BOOST_TEST(m->event.failure() == "stuck");

  HistoryEvent timed_out;
  timed_out.mutable_workflow_terminated()->set_timed_out(true);
  m = LifecycleFromRow(Row(timed_out), subjects);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->subject == "aion.evt.noop.w-1.timed_out");
  BOOST_TEST(m->event.event() == "timed_out");
  BOOST_TEST(m->event.failure() == "the run timeout passed");

  HistoryEvent requested;
  requested.mutable_workflow_cancel_requested()->set_reason("x");
  ExpectInvalid(LifecycleFromRow(Row(requested), subjects).status(), "not a lifecycle event");
}

BOOST_AUTO_TEST_CASE(describe_shows_pending_activities_and_cancel_requests) {
  Description d;
  WorkflowRecord& r = d.record;
  r.set_workflow_id("order-7");
  r.set_workflow_type("order");
  r.set_run_id("run-1");
  r.set_status(WorkflowStatus::WORKFLOW_STATUS_RUNNING);
  r.set_cancel_requested(true);
  r.set_cancel_reason("customer asked");
  r.set_run_deadline_us(5'000'000);
  auto* a = r.add_activities();
  a->set_activity_id("#1");
  a->set_activity_type("charge");
  a->mutable_options()->set_task_queue("payments");
  a->set_attempt(3);
  a->set_state(records::PendingActivity::STATE_BACKING_OFF);
  a->set_last_failure("card declined");
  a->set_scheduled_at_us(100);
  a->set_deadline_us(200);
  auto* b = r.add_activities();
  b->set_activity_id("#2");
  b->set_activity_type("echo");
  b->set_attempt(1);
  b->set_state(records::PendingActivity::STATE_STARTED);
  *b->mutable_heartbeat_details() = JsonPayload(Json{{"progress", 0.5}});
  b->set_last_heartbeat_us(150);
  wire::DescribeReply reply = MakeDescribeReply(d);
  BOOST_TEST(reply.status() == "running");
  BOOST_TEST(reply.cancel_requested());
  BOOST_TEST(reply.cancel_reason() == "customer asked");
  BOOST_TEST(reply.run_deadline_us() == 5'000'000);
  BOOST_REQUIRE(reply.pending_activities_size() == 2);
  const auto& pa = reply.pending_activities(0);
  BOOST_TEST(pa.activity_id() == "#1");
  BOOST_TEST(pa.activity_type() == "charge");
  BOOST_TEST(pa.task_queue() == "payments");
  BOOST_TEST(pa.attempt() == 3u);
  BOOST_TEST(pa.state() == "backing_off");
  BOOST_TEST(pa.last_failure() == "card declined");
  BOOST_TEST(pa.scheduled_at_us() == 100);
  BOOST_TEST(pa.deadline_us() == 200);
  BOOST_TEST(!pa.has_heartbeat_details());
  const auto& pb2 = reply.pending_activities(1);
  BOOST_TEST(pb2.state() == "started");
  BOOST_TEST(pb2.task_queue().empty());  // local
  BOOST_TEST((JsonFromValue(pb2.heartbeat_details()) == Json{{"progress", 0.5}}));
  BOOST_TEST(pb2.last_heartbeat_us() == 150);
  const Json j = Json::parse(EncodeMessage(reply, true));
  BOOST_TEST(j["pending_activities"][0]["state"] == "backing_off");
  BOOST_TEST(j["cancel_requested"] == true);

  for (auto [status, name] : {std::pair{WorkflowStatus::WORKFLOW_STATUS_CANCELLED, "cancelled"},
                              std::pair{WorkflowStatus::WORKFLOW_STATUS_TERMINATED, "terminated"},
                              std::pair{WorkflowStatus::WORKFLOW_STATUS_TIMED_OUT, "timed_out"}}) {
    r.set_status(status);
    BOOST_TEST(MakeDescribeReply(d).status() == name);
    Outcome o;
    o.status = status;
    o.run_id = "run-1";
    o.failure = "why";
    wire::ResultReply result = MakeResultReply(o);
    BOOST_TEST(result.status() == name);
    BOOST_TEST(result.failure() == "why");
    BOOST_TEST(!result.has_output());
  }
  BOOST_TEST(MakeResultReply(Result<Outcome>(NotFound("x"))).error().code() == "not_found");
}

BOOST_AUTO_TEST_CASE(ingress_replies_say_when_nothing_was_recorded) {
  IngressOutcome dropped;
  dropped.run_id = "r1";
  dropped.dropped = true;
  auto j = Json::parse(EncodeMessage(MakeIngressReply("w-1", dropped), true));
  BOOST_TEST(j["dropped"] == true);
  BOOST_TEST(!j.contains("error"));
}
}  // namespace
BOOST_AUTO_TEST_CASE(json_nested_too_deep_is_refused_before_parsing) {
  Codec codec;
  std::string deep(200, '[');
  deep += std::string(200, ']');
  const std::string body = R"({"workflow_type":"noop","input":)" + deep + "}";
  auto decoded = codec.DecodeIngress(JsonMsg(In("w", "start"), body));
  ExpectInvalid(decoded.status(), "201 levels deep");
  // Brackets inside strings do not count; 40 levels (body, input, 38 lists) are fine.
  std::string ok(38, '[');
  ok += std::string(38, ']');
  const std::string fine =
      R"({"workflow_type":"noop","input":{"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","l":)" +
      ok + "}}";
  auto decoded_fine = codec.DecodeIngress(JsonMsg(In("w", "start"), fine));
  BOOST_TEST(decoded_fine.ok(), decoded_fine.status().ToString());
}

// --- round 2: signal-with-start, id-reuse policies, queries, list, continue-as-new ---

wire::SignalWithStartWorkflow SampleSignalWithStart() {
  wire::SignalWithStartWorkflow m;
  m.set_workflow_type("order");
  ValueFromJson(Json{{"sku", "A1"}}, m.mutable_input());
  m.set_signal_name("approve");
  ValueFromJson(Json{{"by", "ana"}}, m.mutable_signal_input());
  m.set_request_id("r-9");
  m.set_run_timeout_ms(1500);
  m.set_id_reuse_policy(wire::ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY);
  return m;
}

BOOST_AUTO_TEST_CASE(signal_with_start_decodes_from_binary_and_json) {
  Codec codec;
  const std::string subject = In("o-1", "signal_with_start");
  auto from_binary =
      codec.DecodeIngress(Binary(subject, SampleSignalWithStart().SerializeAsString()));
  auto from_json = codec.DecodeIngress(
      JsonMsg(subject, R"({"workflow_type":"order","input":{"sku":"A1"},"signal_name":"approve",)"
                       R"("signal_input":{"by":"ana"},"request_id":"r-9","run_timeout_ms":"1500",)"
                       R"("id_reuse_policy":"ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY"})"));
  BOOST_REQUIRE_MESSAGE(from_binary.ok(), from_binary.status().ToString());
  BOOST_REQUIRE_MESSAGE(from_json.ok(), from_json.status().ToString());
  for (const auto* m : {&*from_binary, &*from_json}) {
    BOOST_TEST((m->kind == IngressMessage::Kind::kSignalWithStart));
    BOOST_TEST(m->workflow_id == "o-1");
    BOOST_TEST(m->workflow_type == "order");
    BOOST_TEST(m->signal_name == "approve");
    BOOST_TEST((*ParseJsonPayload(m->input) == Json{{"sku", "A1"}}));
    BOOST_TEST((*ParseJsonPayload(m->signal_input) == Json{{"by", "ana"}}));
    BOOST_TEST(m->run_timeout_us == 1'500'000);
    BOOST_TEST((m->id_reuse_policy == IngressMessage::IdReusePolicy::kAllowDuplicateFailedOnly));
    BOOST_TEST(m->dedupe_key == "signal_with_start:o-1:r-9");
  }
  // Without a request id: the usual fallbacks.
  auto no_id = codec.DecodeIngress(
      JsonMsg(subject, R"({"workflow_type":"order","signal_name":"approve"})"), 42, "e");
  BOOST_REQUIRE(no_id.ok());
  BOOST_TEST(no_id->dedupe_key == "seq:e:42");
  BOOST_TEST((*ParseJsonPayload(no_id->signal_input) == Json(nullptr)));
}

BOOST_AUTO_TEST_CASE(malformed_signal_with_start_is_invalid_argument) {
  Codec codec;
  const std::string subject = In("o-1", "signal_with_start");
  const std::string valid = SampleSignalWithStart().SerializeAsString();
  ExpectInvalid(codec.DecodeIngress(Binary(subject, "\xff\xff garbage")).status(), "not a valid");
  // Cut inside the last field (id_reuse_policy: tag, then the value).
  ExpectInvalid(codec.DecodeIngress(Binary(subject, valid.substr(0, valid.size() - 1))).status(),
                "not a valid");
  ExpectInvalid(codec.DecodeIngress(Binary(subject, "")).status(), "workflow_type is empty");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, "{oops")).status(), "JSON");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"workflow_type":"order"})")).status(),
                "signal_name is empty");
  ExpectInvalid(
      codec.DecodeIngress(JsonMsg(subject, R"({"workflow_type":"order","signal_name":"a b"})"))
          .status(),
      "invalid character");
  ExpectInvalid(
      codec.DecodeIngress(JsonMsg(subject, R"({"signal_name":"go","workflow_type":"x/y"})"))
          .status(),
      "invalid character");
  ExpectInvalid(
      codec
          .DecodeIngress(JsonMsg(
              subject, R"({"workflow_type":"order","signal_name":"go","run_timeout_ms":"-1"})"))
          .status(),
      "run_timeout_ms");
  ExpectInvalid(
      codec
          .DecodeIngress(JsonMsg(subject, R"({"workflow_type":"order","signal_name":"go",)"
                                          R"("id_reuse_policy":"ID_REUSE_POLICY_SOMETIMES"})"))
          .status(),
      "JSON");
  ExpectInvalid(
      codec
          .DecodeIngress(JsonMsg(subject, R"({"workflow_type":"order","signal_name":"go",)"
                                          R"("request_id":"a/b"})"))
          .status(),
      "request_id");
  // Binary keeps enum numbers it does not know: refused by the codec.
  auto unknown_policy = SampleSignalWithStart();
  unknown_policy.set_id_reuse_policy(static_cast<wire::IdReusePolicy>(7));
  ExpectInvalid(codec.DecodeIngress(Binary(subject, unknown_policy.SerializeAsString())).status(),
                "id_reuse_policy 7 is unknown");
  // Start input and signal input together stay within the payload limit:
  // control characters take 1 byte in protobuf, 6 in JSON ("\u0001").
  Codec small(Subjects(), CodecOptions{.max_payload_bytes = 100});
  auto big = SampleSignalWithStart();
  big.clear_request_id();
  ValueFromJson(Json(std::string(10, '\x01')), big.mutable_input());
  ValueFromJson(Json(std::string(10, '\x01')), big.mutable_signal_input());
  BOOST_TEST(big.ByteSizeLong() < 100u);
  ExpectInvalid(small.DecodeIngress(Binary(subject, big.SerializeAsString())).status(),
                "input and signal_input");
}

BOOST_AUTO_TEST_CASE(start_carries_its_id_reuse_policy) {
  Codec codec;
  const std::string subject = In("s-1", "start");
  using P = IngressMessage::IdReusePolicy;
  auto none = codec.DecodeIngress(JsonMsg(subject, R"({"workflow_type":"noop"})"));
  BOOST_REQUIRE(none.ok());
  BOOST_TEST((none->id_reuse_policy == P::kAllowDuplicate));
  auto reject = codec.DecodeIngress(JsonMsg(
      subject, R"({"workflow_type":"noop","id_reuse_policy":"ID_REUSE_POLICY_REJECT_DUPLICATE"})"));
  BOOST_REQUIRE_MESSAGE(reject.ok(), reject.status().ToString());
  BOOST_TEST((reject->id_reuse_policy == P::kRejectDuplicate));
  auto numeric =
      codec.DecodeIngress(JsonMsg(subject, R"({"workflow_type":"noop","id_reuse_policy":1})"));
  BOOST_REQUIRE(numeric.ok());
  BOOST_TEST((numeric->id_reuse_policy == P::kAllowDuplicateFailedOnly));
  wire::StartWorkflow start = SampleStart();
  start.set_id_reuse_policy(wire::ID_REUSE_POLICY_REJECT_DUPLICATE);
  auto binary = codec.DecodeIngress(Binary(subject, start.SerializeAsString()));
  BOOST_REQUIRE(binary.ok());
  BOOST_TEST((binary->id_reuse_policy == P::kRejectDuplicate));
  start.set_id_reuse_policy(static_cast<wire::IdReusePolicy>(-3));
  ExpectInvalid(codec.DecodeIngress(Binary(subject, start.SerializeAsString())).status(),
                "id_reuse_policy -3 is unknown");
  ExpectInvalid(
      codec.DecodeIngress(JsonMsg(subject, R"({"workflow_type":"noop","id_reuse_policy":"nah"})"))
          .status(),
      "JSON");
}

BOOST_AUTO_TEST_CASE(queries_decode_and_validate) {
  Codec codec;
  wire::QueryRequest q;
  q.set_name("count");
  ValueFromJson(Json{{"x", 1}}, q.mutable_args());
  q.set_timeout_ms(250);
  auto binary = codec.DecodeQuery(Binary("aion.api.3.w-1.query", q.SerializeAsString()), "w-1");
  BOOST_REQUIRE(binary.ok());
  BOOST_TEST(binary->workflow_id == "w-1");
  BOOST_TEST(binary->name == "count");
  BOOST_TEST(binary->timeout_ms == 250u);
  BOOST_TEST((*ParseJsonPayload(binary->args) == Json{{"x", 1}}));
  auto json = codec.DecodeQuery(JsonMsg("s", R"({"name":"count"})"), "w-1");
  BOOST_REQUIRE(json.ok());
  BOOST_TEST(json->timeout_ms == 0u);
  BOOST_TEST((*ParseJsonPayload(json->args) == Json(nullptr)));

  ExpectInvalid(codec.DecodeQuery(Binary("s", ""), "w-1").status(), "query name is empty");
  ExpectInvalid(codec.DecodeQuery(JsonMsg("s", "{}"), "w-1").status(), "query name is empty");
  ExpectInvalid(codec.DecodeQuery(JsonMsg("s", R"({"name":"a b"})"), "w-1").status(),
                "invalid character");
  ExpectInvalid(codec.DecodeQuery(JsonMsg("s", R"({"name":"x","timeout_ms":-1})"), "w-1").status(),
                "JSON");
  ExpectInvalid(codec.DecodeQuery(JsonMsg("s", R"({"name":"x","bogus":1})"), "w-1").status(),
                "bogus");
  ExpectInvalid(codec.DecodeQuery(JsonMsg("s", "[1]"), "w-1").status(), "JSON");
  ExpectInvalid(codec.DecodeQuery(Binary("s", "\xff\xff\xff"), "w-1").status(), "not a valid");
  ExpectInvalid(codec.DecodeQuery(JsonMsg("s", R"({"name":"x"})"), "bad id").status(),
                "invalid character");
  Codec small(Subjects(), CodecOptions{.max_payload_bytes = 32});
  ExpectInvalid(
      small
          .DecodeQuery(JsonMsg("s", R"({"name":"x","args":")" + std::string(40, 'a') + R"("})"),
                       "w-1")
          .status(),
      "exceeds the limit");
}

BOOST_AUTO_TEST_CASE(query_replies_carry_the_answer_or_the_error_code) {
  auto ok = MakeQueryReply(Result<Payload>(JsonPayload(Json{{"count", 2}})));
  BOOST_TEST(!ok.has_error());
  BOOST_TEST((JsonFromValue(ok.result()) == Json{{"count", 2}}));
  const std::pair<StatusCode, std::string> cases[] = {
      {StatusCode::kUnknownQuery, "unknown_query"},
      {StatusCode::kQueryTimeout, "query_timeout"},
      {StatusCode::kNotFound, "not_found"},
      {StatusCode::kNotRunning, "not_running"},
      {StatusCode::kUnavailable, "unavailable"},
      {StatusCode::kInvalidArgument, "invalid_argument"},
  };
  for (const auto& [code, name] : cases) {
    auto reply = MakeQueryReply(Result<Payload>(Status(code, "why")));
    BOOST_TEST(reply.error().code() == name);
    BOOST_TEST(reply.error().message() == "why");
    BOOST_TEST(!reply.has_result());
  }
}

BOOST_AUTO_TEST_CASE(list_requests_decode_and_validate) {
  Codec codec;
  wire::ListRequest req;
  req.add_statuses("running");
  req.add_statuses("TIMED_OUT");
  req.add_statuses("running");
  req.set_workflow_type("order");
  req.set_started_after_us(10);
  req.set_started_before_us(20);
  req.set_limit(5);
  req.set_page_token("tok");
  auto binary = codec.DecodeList(Binary("aion.api.list", req.SerializeAsString()));
  BOOST_REQUIRE_MESSAGE(binary.ok(), binary.status().ToString());
  BOOST_TEST(binary->statuses.size() == 2u);  // repeats dropped
  BOOST_TEST((binary->statuses[0] == records::WORKFLOW_STATUS_RUNNING));
  BOOST_TEST((binary->statuses[1] == records::WORKFLOW_STATUS_TIMED_OUT));
  BOOST_TEST(binary->workflow_type == "order");
  BOOST_TEST(binary->started_after_us == 10);
  BOOST_TEST(binary->started_before_us == 20);
  BOOST_TEST(binary->limit == 5u);
  BOOST_TEST(binary->page_token == "tok");
  BOOST_TEST(binary->partitions.empty());
  auto empty = codec.DecodeList(Binary("aion.api.list", ""));
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->limit == 100u);
  BOOST_TEST(empty->statuses.empty());
  auto json = codec.DecodeList(JsonMsg("aion.api.list", R"({"statuses":["completed"]})"));
  BOOST_REQUIRE(json.ok());
  BOOST_TEST((json->statuses.at(0) == records::WORKFLOW_STATUS_COMPLETED));

  ExpectInvalid(codec.DecodeList(JsonMsg("s", R"({"statuses":["runing"]})")).status(),
                "unknown workflow status 'runing' (expected one of running, completed");
  ExpectInvalid(codec.DecodeList(JsonMsg("s", R"({"statuses":["unspecified"]})")).status(),
                "unknown workflow status");
  ExpectInvalid(codec.DecodeList(JsonMsg("s", R"({"statuses":[""]})")).status(),
                "unknown workflow status");
  ExpectInvalid(codec.DecodeList(JsonMsg("s", R"({"statuses":[{"a":1}]})")).status(), "JSON");
  ExpectInvalid(codec.DecodeList(JsonMsg("s", R"({"limit":1001})")).status(), "limit 1001");
  ExpectInvalid(codec.DecodeList(JsonMsg("s", R"({"workflow_type":"a b"})")).status(),
                "invalid character");
  ExpectInvalid(codec.DecodeList(JsonMsg("s", R"({"started_after_us":"-5"})")).status(),
                "must not be negative");
  ExpectInvalid(
      codec.DecodeList(JsonMsg("s", R"({"started_after_us":"20","started_before_us":"20"})"))
          .status(),
      "is not after");
  ExpectInvalid(
      codec.DecodeList(JsonMsg("s", R"({"page_token":")" + std::string(2000, 't') + R"("})"))
          .status(),
      "page_token");
  ExpectInvalid(codec.DecodeList(Binary("s", "\xff\xff\xff")).status(), "not a valid");
  ExpectInvalid(codec.DecodeList(JsonMsg("s", "{")).status(), "JSON");
}

BOOST_AUTO_TEST_CASE(list_replies_summarise_records) {
  WorkflowRecord r;
  r.set_workflow_id("w-1");
  r.set_workflow_type("noop");
  r.set_run_id("run-1");
  r.set_status(records::WORKFLOW_STATUS_CONTINUED_AS_NEW);
  r.set_start_time_us(5);
  r.set_close_time_us(6);
  r.set_partition(3);
  r.set_head_seq(9);
  ListPage page;
  page.workflows.push_back(r);
  page.next_page_token = "next";
  auto reply = MakeListReply(page, {3, 4});
  BOOST_REQUIRE(reply.workflows_size() == 1);
  const auto& w = reply.workflows(0);
  BOOST_TEST(w.workflow_id() == "w-1");
  BOOST_TEST(w.workflow_type() == "noop");
  BOOST_TEST(w.run_id() == "run-1");
  BOOST_TEST(w.status() == "continued_as_new");
  BOOST_TEST(w.start_time_us() == 5);
  BOOST_TEST(w.close_time_us() == 6);
  BOOST_TEST(w.partition() == 3u);
  BOOST_TEST(w.history_length() == 9u);
  BOOST_TEST(reply.next_page_token() == "next");
  BOOST_TEST(reply.partitions_size() == 2);
  BOOST_TEST((ParseWorkflowStatus(" Continued_As_New ").ok()));
}

BOOST_AUTO_TEST_CASE(continued_as_new_has_a_lifecycle_event_naming_the_next_run) {
  Subjects subjects;
  HistoryEvent can;
  can.set_seq(4);
  can.set_run_id("run-1");
  *can.mutable_workflow_continued_as_new()->mutable_input() = JsonPayload(Json{{"n", 2}});
  can.mutable_workflow_continued_as_new()->set_new_run_id("run-2");
  auto m = LifecycleFromRow(Row(can), subjects);
  BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  BOOST_TEST(m->subject == "aion.evt.noop.w-1.continued_as_new");
  BOOST_TEST(m->event.event() == "continued_as_new");
  BOOST_TEST(m->event.run_id() == "run-1");
  BOOST_TEST(m->event.next_run_id() == "run-2");
  BOOST_TEST(m->event.seq() == 4u);
  BOOST_TEST(!m->event.has_output());
  BOOST_TEST(m->event.failure().empty());
  BOOST_TEST(WorkflowStatusName(records::WORKFLOW_STATUS_CONTINUED_AS_NEW) == "continued_as_new");
  BOOST_TEST(DescribeEvent(can) == "WorkflowContinuedAsNew");
}

// --- child workflows: parents on the wire, child results, workflow messages ---

namespace {

using testing::CheckSameIngress;
using testing::SampleParent;
using testing::WorkflowMessageRow;
using MsgRow = records::WorkflowMessageRow;

constexpr MsgRow::Kind kMessageKinds[] = {MsgRow::KIND_START, MsgRow::KIND_CANCEL,
                                          MsgRow::KIND_TERMINATE, MsgRow::KIND_CHILD_RESULT};

// What the addressee's ingress receives for `message`: its inbox subject
// and the row's key as Nats-Msg-Id.
WireMessage Delivered(const WorkflowMessage& message, bool json = false) {
  WireMessage wire{Subjects().InboxOf(message.workflow_id, message.kind, kP),
                   {{"Nats-Msg-Id", message.msg_id}},
                   message.data};
  if (json) {
    wire.headers.emplace("Content-Type", "application/json");
  }
  return wire;
}

wire::ChildWorkflowResult SampleChildResult() {
  wire::ChildWorkflowResult m;
  *m.mutable_parent() = SampleParent();
  auto* r = m.mutable_result();
  r->set_child_ref("c1");
  r->set_workflow_id("parent-1-1");
  r->set_run_id("run-c");
  r->set_status(history::CHILD_STATUS_FAILED);
  r->set_failure("boom");
  m.set_request_id("r-9");
  return m;
}

Status DecodeChildResult(const Codec& codec, const wire::ChildWorkflowResult& m) {
  return codec.DecodeIngress(Binary(In("parent-1", "child_result"), m.SerializeAsString()))
      .status();
}

BOOST_AUTO_TEST_CASE(workflow_message_rows_decode_at_the_addressee_as_the_engine_delivers_them) {
  Codec codec;
  for (MsgRow::Kind kind : kMessageKinds) {
    BOOST_TEST_CONTEXT("message kind " << MsgRow::Kind_Name(kind)) {
      const OutboxRow row = WorkflowMessageRow(kind);
      auto message = WorkflowMessageFromRow(row);
      BOOST_REQUIRE_MESSAGE(message.ok(), message.status().ToString());
      BOOST_TEST(message->workflow_id == row.message().workflow_id());
      BOOST_TEST(message->msg_id == row.msg_id());
      auto decoded = codec.DecodeIngress(Delivered(*message), 7, "99");
      BOOST_REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
      CheckSameIngress(*decoded, IngressOfWorkflowMessage(row.message()));
    }
  }
  auto result = WorkflowMessageFromRow(WorkflowMessageRow(MsgRow::KIND_CHILD_RESULT));
  BOOST_REQUIRE(result.ok());
  BOOST_TEST((result->kind == IngressKind::kChildResult));
  BOOST_TEST(codec.DecodeIngress(Delivered(*result))->dedupe_key ==
             "child_result:parent-1:parent-1:run-p:c1:4");
}

// The JSON mapping of the same messages decodes alike (a person may publish
// a start with a parent, or replay a dead-lettered child result, by hand).
BOOST_AUTO_TEST_CASE(json_workflow_messages_decode_like_binary_ones) {
  Codec codec;
  const wire::ChildWorkflowResult result = SampleChildResult();
  const WireMessage json{In("parent-1", "child_result"), kJson, EncodeMessage(result, true)};
  auto from_json = codec.DecodeIngress(json);
  auto from_binary =
      codec.DecodeIngress(Binary(In("parent-1", "child_result"), result.SerializeAsString()));
  BOOST_REQUIRE_MESSAGE(from_json.ok(), from_json.status().ToString());
  BOOST_REQUIRE(from_binary.ok());
  CheckSameIngress(*from_json, *from_binary);
  BOOST_TEST(from_json->dedupe_key == "child_result:parent-1:r-9");
  BOOST_TEST(from_json->child_result.status() == history::CHILD_STATUS_FAILED);
  BOOST_TEST(from_json->child_result.failure() == "boom");
  BOOST_TEST(from_json->parent.run_id() == "run-p");
  // By hand, with the status by name.
  auto typed = codec.DecodeIngress(
      JsonMsg(In("parent-1", "child_result"),
              R"({"parent":{"workflow_id":"parent-1","run_id":"run-p","child_ref":"c1"},
          "result":{"child_ref":"c1","workflow_id":"kid","status":"CHILD_STATUS_TERMINATED"}})"));
  BOOST_REQUIRE_MESSAGE(typed.ok(), typed.status().ToString());
  BOOST_TEST(typed->child_result.status() == history::CHILD_STATUS_TERMINATED);
  BOOST_TEST(typed->dedupe_key == "seq:0");  // no request id: as for every kind

  for (MsgRow::Kind kind : {MsgRow::KIND_START, MsgRow::KIND_CANCEL, MsgRow::KIND_TERMINATE}) {
    BOOST_TEST_CONTEXT("message kind " << MsgRow::Kind_Name(kind)) {
      auto message = WorkflowMessageFromRow(WorkflowMessageRow(kind));
      BOOST_REQUIRE(message.ok());
      auto binary = codec.DecodeIngress(Delivered(*message));
      BOOST_REQUIRE(binary.ok());
      const google::protobuf::Descriptor* type =
          kind == MsgRow::KIND_START    ? wire::StartWorkflow::descriptor()
          : kind == MsgRow::KIND_CANCEL ? wire::CancelWorkflow::descriptor()
                                        : wire::TerminateWorkflow::descriptor();
      std::unique_ptr<pb::Message> body(
          pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
      BOOST_REQUIRE(body->ParseFromString(message->data));
      WorkflowMessage as_json = *message;
      as_json.data = EncodeMessage(*body, true);
      BOOST_TEST(as_json.data.find(R"("parent":{"workflow_id":"parent-1")") != std::string::npos);
      auto json_decoded = codec.DecodeIngress(Delivered(as_json, /*json=*/true));
      BOOST_REQUIRE_MESSAGE(json_decoded.ok(), json_decoded.status().ToString());
      CheckSameIngress(*json_decoded, *binary);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_childs_run_timeout_goes_in_whole_milliseconds_rounded_up) {
  for (auto [us, ms] : {std::pair<std::int64_t, std::int64_t>{0, 0},
                        {1, 1},
                        {1'500, 2},
                        {2'000, 2},
                        {-5, 0},
                        {std::numeric_limits<std::int64_t>::max(), kMaxRunTimeoutMs}}) {
    OutboxRow row = WorkflowMessageRow(MsgRow::KIND_START);
    row.mutable_message()->set_run_timeout_us(us);
    auto message = WorkflowMessageFromRow(row);
    BOOST_REQUIRE(message.ok());
    wire::StartWorkflow start;
    BOOST_REQUIRE(start.ParseFromString(message->data));
    BOOST_TEST(start.run_timeout_ms() == ms, "run_timeout_us " << us);
    BOOST_TEST(Codec().DecodeIngress(Delivered(*message)).ok());  // the addressee accepts it
  }
}

BOOST_AUTO_TEST_CASE(long_reasons_and_failures_are_cut_at_a_character_to_the_decoders_limits) {
  // 3-byte characters: a byte cut would leave half a character, which
  // protobuf refuses and the addressee would dead-letter.
  std::string euros;
  for (int i = 0; i < 20000; ++i) euros += "\u20ac";
  OutboxRow cancel = WorkflowMessageRow(MsgRow::KIND_TERMINATE);
  cancel.mutable_message()->set_reason(euros);
  auto stop = WorkflowMessageFromRow(cancel);
  BOOST_REQUIRE(stop.ok());
  auto decoded = Codec().DecodeIngress(Delivered(*stop));
  BOOST_REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  BOOST_TEST(decoded->reason.size() == 4095u);  // 1365 whole characters
  BOOST_TEST(SanitizeUtf8(decoded->reason) == decoded->reason);

  OutboxRow failed = WorkflowMessageRow(MsgRow::KIND_CHILD_RESULT);
  failed.mutable_message()->mutable_result()->set_status(history::CHILD_STATUS_FAILED);
  failed.mutable_message()->mutable_result()->set_failure("bad \xff byte " + euros);
  auto result = WorkflowMessageFromRow(failed);
  BOOST_REQUIRE(result.ok());
  decoded = Codec().DecodeIngress(Delivered(*result));
  BOOST_REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  const std::string& failure = decoded->child_result.failure();
  BOOST_TEST(failure.size() <= kMaxFailureMessageBytes);
  BOOST_TEST(failure.size() > kMaxFailureMessageBytes - 3);
  BOOST_TEST(failure.rfind("bad \uFFFD byte \u20ac", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(malformed_child_results_are_invalid_argument) {
  Codec codec;
  const std::string subject = In("parent-1", "child_result");
  BOOST_TEST(DecodeChildResult(codec, SampleChildResult()).ok());
  auto with = [](auto change) {
    wire::ChildWorkflowResult m = SampleChildResult();
    change(m);
    return m;
  };
  using M = wire::ChildWorkflowResult;
  const std::string long_text(kMaxParentRefBytes + 1, 'x');
  struct Case {
    std::string name;
    M message;
    std::string fragment;
  };
  const Case cases[] = {
      {"no parent", with([](M& m) { m.clear_parent(); }), "child_result has no parent"},
      {"no result", with([](M& m) { m.clear_result(); }), "child_result has no result"},
      {"no run id", with([](M& m) { m.mutable_parent()->clear_run_id(); }),
       "parent.run_id is empty"},
      {"no child ref", with([](M& m) { m.mutable_parent()->clear_child_ref(); }),
       "parent.child_ref is empty"},
      {"no parent id", with([](M& m) { m.mutable_parent()->clear_workflow_id(); }),
       "parent.workflow_id is empty"},
      {"bad parent id", with([](M& m) { m.mutable_parent()->set_workflow_id("a b"); }),
       "parent.workflow_id 'a b' has invalid character"},
      {"another parent", with([](M& m) { m.mutable_parent()->set_workflow_id("parent-2"); }),
       "child_result for 'parent-1' names parent.workflow_id 'parent-2'"},
      {"child ref mismatch", with([](M& m) { m.mutable_result()->set_child_ref("c2"); }),
       "result.child_ref 'c2' differs from parent.child_ref 'c1'"},
      {"no child id", with([](M& m) { m.mutable_result()->clear_workflow_id(); }),
       "result.workflow_id is empty"},
      {"bad child id", with([](M& m) { m.mutable_result()->set_workflow_id("kid.1"); }),
       "result.workflow_id 'kid.1' has invalid character"},
      {"status unspecified",
       with([](M& m) { m.mutable_result()->set_status(history::CHILD_STATUS_UNSPECIFIED); }),
       "result.status 0 is unknown"},
      {"status unknown",
       with([](M& m) { m.mutable_result()->set_status(static_cast<history::ChildStatus>(99)); }),
       "result.status 99 is unknown"},
      {"long run id", with([&](M& m) { m.mutable_parent()->set_run_id(long_text); }),
       "parent.run_id is 257 bytes"},
      {"long child ref", with([&](M& m) {
         m.mutable_parent()->set_child_ref(long_text);
         m.mutable_result()->set_child_ref(long_text);
       }),
       "parent.child_ref is 257 bytes"},
      {"long child run id", with([&](M& m) { m.mutable_result()->set_run_id(long_text); }),
       "result.run_id is 257 bytes"},
      {"long failure", with([](M& m) { m.mutable_result()->set_failure(std::string(40000, 'f')); }),
       "result.failure is 40000 bytes"},
      {"bad request id", with([](M& m) { m.set_request_id("a/b"); }), "request_id"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) { ExpectInvalid(DecodeChildResult(codec, c.message), c.fragment); }
  }
  ExpectInvalid(codec.DecodeIngress(Binary(subject, "")).status(), "child_result has no parent");
  ExpectInvalid(codec.DecodeIngress(Binary(subject, "\xff\xff\xff\xff garbage")).status(),
                "not a valid ChildWorkflowResult protobuf");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, "{not json")).status(),
                "not valid ChildWorkflowResult JSON");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"parent":{},"bogus":1})")).status(),
                "bogus");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"parent":{}})")).status(),
                "parent.workflow_id is empty");
  ExpectInvalid(
      codec.DecodeIngress(JsonMsg(subject, R"({"result":{"status":"CHILD_STATUS_BOGUS"}})"))
          .status(),
      "not valid ChildWorkflowResult JSON");
  ExpectInvalid(codec.DecodeIngress(JsonMsg(subject, R"({"parent":"parent-1"})")).status(),
                "not valid ChildWorkflowResult JSON");
  // A parent reference that is not UTF-8 does not even parse (proto3 strings).
  ExpectInvalid(
      codec.DecodeIngress(JsonMsg(subject, "{\"parent\":{\"run_id\":\"\xc3\"}}")).status(), "JSON");
}

BOOST_AUTO_TEST_CASE(parents_of_starts_cancels_and_terminates_decode_and_validate) {
  Codec codec;
  const std::string parent =
      R"("parent":{"workflow_id":"parent-1","run_id":"run-p","child_ref":"c1"})";
  struct Kind {
    std::string name, body;  // a valid body without its closing brace
  };
  for (const Kind& k :
       {Kind{"start", R"({"workflow_type":"noop")"}, Kind{"cancel", R"({"reason":"r")"},
        Kind{"terminate", R"({"reason":"r")"}}) {
    BOOST_TEST_CONTEXT("kind " << k.name) {
      const std::string subject = In("kid", k.name);
      auto plain = codec.DecodeIngress(JsonMsg(subject, k.body + "}"));
      BOOST_REQUIRE(plain.ok());
      BOOST_TEST(plain->parent.ByteSizeLong() == 0u);  // no parent: a client's own request
      auto child = codec.DecodeIngress(JsonMsg(subject, k.body + "," + parent + "}"));
      BOOST_REQUIRE_MESSAGE(child.ok(), child.status().ToString());
      BOOST_TEST(testing::SameMessage(child->parent, SampleParent()));
      auto bad = [&](const std::string& ref) {
        return codec.DecodeIngress(JsonMsg(subject, k.body + R"(,"parent":)" + ref + "}")).status();
      };
      ExpectInvalid(bad("{}"), "parent.workflow_id is empty");
      ExpectInvalid(bad(R"({"workflow_id":"p","child_ref":"c1"})"), "parent.run_id is empty");
      ExpectInvalid(bad(R"({"workflow_id":"p","run_id":"r"})"), "parent.child_ref is empty");
      ExpectInvalid(bad(R"({"workflow_id":"p q","run_id":"r","child_ref":"c"})"),
                    "parent.workflow_id 'p q' has invalid character");
      ExpectInvalid(bad(Json{{"workflow_id", "p"},
                             {"run_id", "r"},
                             {"child_ref", std::string(kMaxParentRefBytes + 1, 'c')}}
                            .dump()),
                    "parent.child_ref is 257 bytes");
      ExpectInvalid(bad(R"({"workflow_id":"p","run_id":5,"child_ref":"c"})"), "JSON");
    }
  }
}

BOOST_AUTO_TEST_CASE(workflow_message_rows_that_cannot_be_sent_are_invalid_argument) {
  auto refused = [](OutboxRow row, const std::string& fragment) {
    auto message = WorkflowMessageFromRow(row);
    ExpectInvalid(message.status(), fragment);
    if (!row.msg_id().empty() && row.msg_id().size() < 100) {
      ExpectInvalid(message.status(), "outbox row '" + row.msg_id() + "'");
    }
  };
  OutboxRow lifecycle = WorkflowMessageRow(MsgRow::KIND_START);
  lifecycle.set_kind(OutboxRow::KIND_LIFECYCLE);
  refused(lifecycle, "is not a workflow message row");
  OutboxRow unknown = WorkflowMessageRow(MsgRow::KIND_START);
  unknown.mutable_message()->set_kind(MsgRow::KIND_UNSPECIFIED);
  refused(unknown, "message kind 0 is unknown");
  for (MsgRow::Kind kind : kMessageKinds) {
    BOOST_TEST_CONTEXT("message kind " << MsgRow::Kind_Name(kind)) {
      OutboxRow row = WorkflowMessageRow(kind);
      row.mutable_message()->set_workflow_id("bad id");
      refused(row, "addressee workflow_id 'bad id' has invalid character");
      row = WorkflowMessageRow(kind);
      row.mutable_message()->clear_request_id();
      refused(row, "request_id is empty");
      row = WorkflowMessageRow(kind);
      row.mutable_message()->set_request_id(std::string(200, 'r'));
      refused(row, "request_id is longer than 128");
      row = WorkflowMessageRow(kind);
      row.mutable_message()->clear_parent();
      refused(row, kind == MsgRow::KIND_CHILD_RESULT ? "child_result has no parent"
                                                     : "parent is missing");
      row = WorkflowMessageRow(kind);
      row.mutable_message()->mutable_parent()->clear_run_id();
      refused(row, "parent.run_id is empty");
      row = WorkflowMessageRow(kind);
      row.mutable_message()->mutable_parent()->set_child_ref("\xff");
      refused(row, "parent.child_ref is not valid UTF-8");
      row = WorkflowMessageRow(kind);
      row.clear_msg_id();
      row.clear_key();
      refused(row, "msg id is empty");
      row.set_msg_id(std::string(kMaxMsgIdBytes + 1, 'k'));
      refused(row, "msg id is 257 bytes");
      row.clear_msg_id();
      row.set_key("00000000000000000042");  // without a msg id, the key is the id
      auto keyed = WorkflowMessageFromRow(row);
      BOOST_REQUIRE(keyed.ok());
      BOOST_TEST(keyed->msg_id == row.key());
    }
  }
  OutboxRow untyped = WorkflowMessageRow(MsgRow::KIND_START);
  untyped.mutable_message()->clear_workflow_type();
  refused(untyped, "workflow_type is empty");
  OutboxRow mismatch = WorkflowMessageRow(MsgRow::KIND_CHILD_RESULT);
  mismatch.mutable_message()->mutable_result()->set_child_ref("c2");
  refused(mismatch, "differs from parent.child_ref");
  OutboxRow no_status = WorkflowMessageRow(MsgRow::KIND_CHILD_RESULT);
  no_status.mutable_message()->mutable_result()->clear_status();
  refused(no_status, "result.status 0 is unknown");
}

BOOST_AUTO_TEST_CASE(describe_shows_pending_children_and_the_parent) {
  Description d;
  WorkflowRecord& r = d.record;
  r.set_workflow_id("parent-1-1");
  r.set_status(WorkflowStatus::WORKFLOW_STATUS_RUNNING);
  const std::pair<const char*, history::ParentClosePolicy> children[] = {
      {"terminate", history::PARENT_CLOSE_POLICY_TERMINATE},
      {"request_cancel", history::PARENT_CLOSE_POLICY_REQUEST_CANCEL},
      {"abandon", history::PARENT_CLOSE_POLICY_ABANDON}};
  for (const auto& [name, policy] : children) {
    auto* c = r.add_children();
    c->set_child_ref(std::string("ref-") + name);
    c->set_workflow_id(std::string("kid-") + name);
    c->set_workflow_type("timer_signal");
    c->set_parent_close_policy(policy);
    c->set_scheduled_at_us(42);
  }
  wire::DescribeReply plain = MakeDescribeReply(d);
  BOOST_TEST(!plain.has_parent());  // not a child
  *r.mutable_parent() = SampleParent();
  wire::DescribeReply reply = MakeDescribeReply(d);
  BOOST_REQUIRE(reply.pending_children_size() == 3);
  for (int i = 0; i < 3; ++i) {
    const auto& pc = reply.pending_children(i);
    const std::string name = children[i].first;
    BOOST_TEST(pc.child_ref() == "ref-" + name);
    BOOST_TEST(pc.workflow_id() == "kid-" + name);
    BOOST_TEST(pc.workflow_type() == "timer_signal");
    BOOST_TEST(pc.parent_close_policy() == name);
    BOOST_TEST(pc.scheduled_at_us() == 42);
  }
  BOOST_TEST(testing::SameMessage(reply.parent(), SampleParent()));
  const Json j = Json::parse(EncodeMessage(reply, true));
  BOOST_TEST(j["pending_children"][1]["parent_close_policy"] == "request_cancel");
  BOOST_TEST(j["parent"]["child_ref"] == "c1");
}

}  // namespace

}  // namespace aion::bus
