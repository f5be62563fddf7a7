// Codec: every malformed ingress message is a kInvalidArgument, never a crash;
// binary and JSON encodings of the same message decode alike.
#define BOOST_TEST_MODULE codec
#include "aion/bus/codec.h"

#include <boost/test/unit_test.hpp>

#include "aion/engine/history.h"
#include "aion/engine/ids.h"

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
  BOOST_TEST_CONTEXT("status: " << status.ToString()) {
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
  for (const char* later : {"signal_with_start", "cancel", "terminate", "activity_result"}) {
    ExpectInvalid(codec.DecodeIngress(JsonMsg(In("w", later), body)).status(), "not supported yet");
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

}  // namespace aion::bus
