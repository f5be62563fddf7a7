// Bad input is contained (DESIGN §4.9), against a real aion-worker process:
// for every ingress kind, undecodable or invalid messages land in stream
// AION_DLQ on aion.dlq.<kind> with their reason, the sender gets an error
// reply where it asked for one, the worker stays up and serving, and valid
// workflows of the SAME partition, started before and after the bad
// messages, still complete.
#define BOOST_TEST_MODULE malformed_input
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;

// One message to publish and what must become of it.
struct Case {
  std::string name;
  std::string subject;         // published to (aion.wf.<id>.<kind> or aion.in.<p>.<id>.<kind>)
  std::string stored_subject;  // the subject it has in AION_IN (after the server's mapping)
  bus::Headers headers;
  std::string data;
  std::string dlq_kind;    // expected <kind> of aion.dlq.<kind>; "" = must not be dead-lettered
  std::string code;        // expected error code (DeadLetter.code and the reply)
  std::string reason_has;  // the reason must contain this
  std::string reply_to;    // "" = no Aion-Reply-To
  bool json() const { return bus::IsJson(headers); }
};

// 11 bytes of 0xff: a varint longer than protobuf allows, so never a valid message.
const std::string kGarbage = std::string(11, '\xff') + std::string("\x01garbage\0\x7f\x80", 11);

// A JSON array nested `depth` deep: [[[...]]].
std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string StartBody(const std::string& type, const std::string& request_id) {
  return json{{"workflow_type", type},
              {"input", {{"sleep_ms", 20}, {"signal", "go"}}},
              {"request_id", request_id}}
      .dump();
}

std::string TruncatedStart() {
  wire::StartWorkflow start;
  start.set_workflow_type("timer_signal");
  bus::ValueFromJson(json{{"sleep_ms", 20}}, start.mutable_input());
  start.set_request_id("request-0123456789");  // the last field: the cut lands inside it
  std::string bytes = start.SerializeAsString();
  return bytes.substr(0, bytes.size() - 5);
}

std::string TruncatedSignal() {
  wire::SignalWorkflow signal;
  signal.set_name("go");
  bus::ValueFromJson(json{{"by", "ana"}}, signal.mutable_input());
  signal.set_request_id("request-0123456789");
  std::string bytes = signal.SerializeAsString();
  return bytes.substr(0, bytes.size() - 5);
}

class CaseBuilder {
 public:
  CaseBuilder(std::uint32_t partition, const bus::Subjects& subjects)
      : p_(partition), subjects_(subjects) {}

  // Through aion.wf.<id>.<kind>, id in the test's partition.
  void Wf(const std::string& name, const std::string& kind, bool json, std::string data,
          std::string dlq_kind, std::string code, std::string reason_has = "",
          bool with_reply = true) {
    const std::string id = IdInPartition(p_, "bad" + std::to_string(cases_.size()));
    Add(name, "aion.wf." + id + "." + kind, "aion.in." + std::to_string(p_) + "." + id + "." + kind,
        json, std::move(data), std::move(dlq_kind), std::move(code), std::move(reason_has),
        with_reply);
  }

  // Straight to a partition-aware subject.
  void In(const std::string& name, const std::string& subject, bool json, std::string data,
          std::string dlq_kind, std::string code, std::string reason_has = "") {
    Add(name, subject, subject, json, std::move(data), std::move(dlq_kind), std::move(code),
        std::move(reason_has), true);
  }

  std::vector<Case>& cases() { return cases_; }

 private:
  void Add(const std::string& name, std::string subject, std::string stored, bool json,
           std::string data, std::string dlq_kind, std::string code, std::string reason_has,
           bool with_reply) {
    Case c;
    c.name = name;
    c.subject = std::move(subject);
    c.stored_subject = std::move(stored);
    if (json) c.headers = kJsonHeaders;
    if (with_reply) {
      c.reply_to = "_INBOX.malformed." + std::to_string(cases_.size());
      c.headers["Aion-Reply-To"] = c.reply_to;
    }
    c.data = std::move(data);
    c.dlq_kind = std::move(dlq_kind);
    c.code = std::move(code);
    c.reason_has = std::move(reason_has);
    cases_.push_back(std::move(c));
  }

  std::uint32_t p_;
  const bus::Subjects& subjects_;
  std::vector<Case> cases_;
};

std::vector<Case> MakeCases(std::uint32_t p, const bus::Subjects& subjects) {
  CaseBuilder b(p, subjects);
  const std::string ia = "invalid_argument";
  const std::string big(1536 * 1024, 'x');  // over the worker's 1 MiB payload limit

  // start
  b.Wf("start: garbage bytes", "start", false, kGarbage, "start", ia, "protobuf");
  b.Wf("start: garbage bytes as JSON", "start", true, kGarbage, "start", ia, "JSON");
  b.Wf("start: truncated protobuf", "start", false, TruncatedStart(), "start", ia, "protobuf");
  b.Wf("start: invalid JSON", "start", true, R"({"workflow_type":"timer_signal",)", "start", ia);
  b.Wf("start: wrong type of workflow_type", "start", true, R"({"workflow_type":42,"input":{}})",
       "start", ia);
  b.Wf("start: wrong type of request_id", "start", true,
       R"({"workflow_type":"noop","input":{},"request_id":7})", "start", ia);
  b.Wf("start: body is a JSON array", "start", true, R"(["timer_signal"])", "start", ia);
  b.Wf("start: missing workflow_type (JSON)", "start", true, R"({"input":{"sleep_ms":1}})", "start",
       ia, "workflow_type");
  {
    wire::StartWorkflow no_type;
    bus::ValueFromJson(json{{"sleep_ms", 1}}, no_type.mutable_input());
    b.Wf("start: missing workflow_type (protobuf)", "start", false, no_type.SerializeAsString(),
         "start", ia, "workflow_type");
  }
  b.Wf("start: empty body", "start", false, "", "start", ia);
  b.Wf("start: unknown JSON field", "start", true, R"({"workflow_type":"noop","bogus_field":1})",
       "start", ia);
  b.Wf("start: invalid workflow_type", "start", true, R"({"workflow_type":"no spaces!"})", "start",
       ia);
  b.Wf("start: invalid request_id", "start", true,
       R"({"workflow_type":"noop","request_id":"has space"})", "start", ia, "request_id");
  b.Wf("start: unknown workflow type", "start", true, StartBody("no_such_type", "u-1"), "start",
       "unknown_workflow_type", "no_such_type");
  b.Wf("start: oversized payload", "start", true,
       json{{"workflow_type", "noop"}, {"input", big}}.dump(), "start", ia, "exceeds");
  b.Wf("start: garbage without Aion-Reply-To", "start", false, kGarbage, "start", ia, "", false);
  b.Wf("start: invalid UTF-8 in JSON", "start", true,
       "{\"workflow_type\":\"noop\",\"input\":\"\xff\xfe\"}", "start", ia);
  {
    wire::StartWorkflow bad_utf8;
    bad_utf8.set_workflow_type("noop");
    bad_utf8.mutable_input()->set_string_value("\xff\xfe");
    b.Wf("start: invalid UTF-8 in protobuf", "start", false, bad_utf8.SerializeAsString(), "start",
         ia, "protobuf");
  }
  b.Wf("start: JSON input nested 200 deep", "start", true,
       R"({"workflow_type":"noop","input":)" + Nested(200) + "}", "start", ia);
  {
    wire::StartWorkflow deep;
    deep.set_workflow_type("noop");
    google::protobuf::Value* v = deep.mutable_input();
    for (int i = 0; i < 200; ++i) v = v->mutable_list_value()->add_values();
    v->set_number_value(1);
    b.Wf("start: protobuf input nested 200 deep", "start", false, deep.SerializeAsString(), "start",
         ia, "protobuf");
  }
  b.Wf("start: number out of range", "start", true, R"({"workflow_type":"noop","input":1e999})",
       "start", ia);

  // signal
  b.Wf("signal: garbage bytes", "signal", false, kGarbage, "signal", ia, "protobuf");
  b.Wf("signal: truncated protobuf", "signal", false, TruncatedSignal(), "signal", ia, "protobuf");
  b.Wf("signal: invalid JSON", "signal", true, R"({"name":)", "signal", ia);
  b.Wf("signal: wrong type of name", "signal", true, R"({"name":{"a":1},"input":1})", "signal", ia);
  b.Wf("signal: missing name (JSON)", "signal", true, R"({"input":{"by":"ana"}})", "signal", ia,
       "signal name");
  {
    wire::SignalWorkflow no_name;
    bus::ValueFromJson(json{{"by", "ana"}}, no_name.mutable_input());
    b.Wf("signal: missing name (protobuf)", "signal", false, no_name.SerializeAsString(), "signal",
         ia, "signal name");
  }
  b.Wf("signal: oversized payload", "signal", true, json{{"name", "go"}, {"input", big}}.dump(),
       "signal", ia, "exceeds");
  b.Wf("signal: garbage without Aion-Reply-To", "signal", false, kGarbage, "signal", ia, "", false);
  b.Wf("signal: JSON input nested 200 deep", "signal", true,
       R"({"name":"go","input":)" + Nested(200) + "}", "signal", ia);
  b.Wf("signal: invalid UTF-8 in JSON", "signal", true, "{\"name\":\"go\",\"input\":\"\xc3\"}",
       "signal", ia);

  // cancel and terminate: every field is optional, but what is there must be right.
  for (const std::string kind : {"cancel", "terminate"}) {
    b.Wf(kind + ": garbage bytes", kind, false, kGarbage, kind, ia, "protobuf");
    b.Wf(kind + ": invalid JSON", kind, true, "{", kind, ia, "JSON");
    b.Wf(kind + ": a start body", kind, true, StartBody("timer_signal", "k-1"), kind, ia,
         "workflow_type");
    b.Wf(kind + ": wrong type of reason", kind, true, R"({"reason":["no"]})", kind, ia, "JSON");
    b.Wf(kind + ": reason too long", kind, true, json{{"reason", std::string(5000, 'r')}}.dump(),
         kind, ia, "reason is 5000 bytes");
    b.Wf(kind + ": invalid request_id", kind, true, R"({"request_id":"a b"})", kind, ia,
         "request_id");
    b.Wf(kind + ": nested 200 deep", kind, true, R"({"reason":)" + Nested(200) + "}", kind, ia,
         "levels deep");
  }

  // activity_result
  const std::string ar = "activity_result";
  b.Wf("activity_result: garbage bytes", ar, false, kGarbage, ar, ia, "protobuf");
  b.Wf("activity_result: invalid JSON", ar, true, R"({"run_id":)", ar, ia, "JSON");
  b.Wf("activity_result: empty body", ar, false, "", ar, ia, "run_id is empty");
  b.Wf("activity_result: missing run_id", ar, true, R"({"activity_id":"#1","attempt":1})", ar, ia,
       "run_id is empty");
  b.Wf("activity_result: missing activity_id", ar, true, R"({"run_id":"r1","attempt":1})", ar, ia,
       "activity_id is empty");
  b.Wf("activity_result: attempt 0", ar, true, R"({"run_id":"r1","activity_id":"#1","attempt":0})",
       ar, ia, "attempt must be at least 1");
  b.Wf("activity_result: wrong type of attempt", ar, true,
       R"({"run_id":"r1","activity_id":"#1","attempt":"one"})", ar, ia, "JSON");
  b.Wf("activity_result: output and failure", ar, true,
       R"({"run_id":"r1","activity_id":"#1","attempt":1,"output":1,"failure":{"message":"x"}})", ar,
       ia, "either output or failure");
  b.Wf("activity_result: oversized output", ar, true,
       json{{"run_id", "r1"}, {"activity_id", "#1"}, {"attempt", 1}, {"output", big}}.dump(), ar,
       ia, "exceeds");
  b.Wf("activity_result: output nested 200 deep", ar, true,
       R"({"run_id":"r1","activity_id":"#1","attempt":1,"output":)" + Nested(200) + "}", ar, ia,
       "levels deep");

  // signal_with_start
  const std::string sws = "signal_with_start";
  b.Wf("signal_with_start: garbage bytes", sws, false, kGarbage, sws, ia, "protobuf");
  {
    wire::SignalWithStartWorkflow m;
    m.set_workflow_type("timer_signal");
    m.set_signal_name("go");
    m.set_request_id("request-0123456789");
    std::string bytes = m.SerializeAsString();
    b.Wf("signal_with_start: truncated protobuf", sws, false, bytes.substr(0, bytes.size() - 5),
         sws, ia, "protobuf");
    m.set_id_reuse_policy(static_cast<wire::IdReusePolicy>(9));
    b.Wf("signal_with_start: unknown id_reuse_policy (protobuf)", sws, false, m.SerializeAsString(),
         sws, ia, "id_reuse_policy 9");
  }
  b.Wf("signal_with_start: a start body (no signal_name)", sws, true,
       StartBody("timer_signal", "k-1"), sws, ia, "signal_name");
  b.Wf("signal_with_start: invalid JSON", sws, true, "{", sws, ia);
  b.Wf("signal_with_start: missing workflow_type", sws, true, R"({"signal_name":"go"})", sws, ia,
       "workflow_type");
  b.Wf("signal_with_start: unknown id_reuse_policy name", sws, true,
       R"({"workflow_type":"noop","signal_name":"go","id_reuse_policy":"ID_REUSE_POLICY_MAYBE"})",
       sws, ia);
  b.Wf("signal_with_start: negative run_timeout_ms", sws, true,
       R"({"workflow_type":"noop","signal_name":"go","run_timeout_ms":"-5"})", sws, ia,
       "run_timeout_ms");
  b.Wf("signal_with_start: unknown workflow type", sws, true,
       R"({"workflow_type":"no_such_type","signal_name":"go"})", sws, "unknown_workflow_type",
       "no_such_type");
  b.Wf("signal_with_start: oversized signal input", sws, true,
       json{{"workflow_type", "noop"}, {"signal_name", "go"}, {"signal_input", big}}.dump(), sws,
       ia, "exceeds");
  b.Wf("start: unknown id_reuse_policy name", "start", true,
       R"({"workflow_type":"noop","id_reuse_policy":"sometimes"})", "start", ia);

  // Kinds nobody knows.
  b.Wf("bogus: valid start body", "bogus", true, StartBody("timer_signal", "b-1"), "unknown", ia);
  b.Wf("bogus: garbage bytes", "bogus", false, kGarbage, "unknown", ia);
  b.Wf("START in capitals", "START", true, StartBody("timer_signal", "b-2"), "unknown", ia);

  // Subjects a partition-aware client got wrong, straight into this partition's inbox.
  const std::string in = "aion.in." + std::to_string(p) + ".";
  b.In("invalid id (character)", in + "bad!id.start", true, StartBody("noop", "i-1"), "start", ia,
       "workflow id");
  b.In("invalid id (too long)", in + std::string(129, 'a') + ".start", true,
       StartBody("noop", "i-2"), "start", ia, "workflow id");
  b.In("invalid id (character) on signal", in + "bad#id.signal", true, R"({"name":"go","input":1})",
       "signal", ia, "workflow id");
  std::string foreign = IdInPartition((p + 1) % kPartitions, "foreign");
  b.In("id of another partition", in + foreign + ".start", true, StartBody("noop", "i-3"), "start",
       ia, "partition");
  b.In("missing id token", in + "start", true, StartBody("noop", "i-4"), "start", ia);
  b.In("extra token", in + IdInPartition(p, "extra") + ".start.more", true,
       StartBody("noop", "i-5"), "unknown", ia);

  // A signal to an unknown id can never be delivered: dead-lettered with not_found.
  b.Wf("signal to an unknown id", "signal", true, R"({"name":"go","input":1,"request_id":"n-1"})",
       "signal", "not_found", "no workflow");
  b.Wf("signal to an unknown id without Aion-Reply-To", "signal", true, R"({"name":"go"})",
       "signal", "not_found", "no workflow", false);
  // Refusals that are not bad input: acked and answered, never dead-lettered.
  b.Wf("cancel of an unknown id", "cancel", true, R"({"reason":"x"})", "", "not_found");
  b.Wf("terminate of an unknown id", "terminate", false, "", "", "not_found");
  return std::move(b.cases());
}

json DecodeReply(natsMsg* msg, bool as_json, wire::IngressReply* reply) {
  const std::string body = Body(msg);
  if (as_json) {
    json j = json::parse(body, nullptr, false);
    BOOST_CHECK_MESSAGE(!j.is_discarded(), "reply is not JSON: " << body);
    return j;
  }
  BOOST_CHECK_MESSAGE(reply->ParseFromString(body), "reply is not an IngressReply");
  json j = json::object();
  if (reply->has_error())
    j["error"] = {{"code", reply->error().code()}, {"message", reply->error().message()}};
  return j;
}

BOOST_AUTO_TEST_CASE(bad_input_is_dead_lettered_and_the_partition_keeps_going) {
  WorkerHarness h;
  const std::uint32_t p = 5;
  const std::string good_before = IdInPartition(p, "good-before");
  const std::string good_after = IdInPartition(p, "good-after");
  std::vector<Case> cases = MakeCases(p, h.subjects());
  NatsCollector replies(h.client(), "_INBOX.malformed.>");
  NatsCollector good_replies(h.client(), "_INBOX.good.>");

  auto start_good = [&](const std::string& id) {
    bus::Headers headers = kJsonHeaders;
    headers["Aion-Reply-To"] = "_INBOX.good." + id;
    JsPublish(h.client(), "aion.wf." + id + ".start",
              json{{"workflow_type", "timer_signal"},
                   {"input", {{"sleep_ms", 50}, {"signal", "go"}}},
                   {"request_id", "start-" + id}}
                  .dump(),
              headers);
  };
  auto signal_good = [&](const std::string& id) {
    bus::Headers headers = kJsonHeaders;
    headers["Aion-Reply-To"] = "_INBOX.good." + id + "-signal";
    JsPublish(h.client(), "aion.wf." + id + ".signal",
              json{{"name", "go"}, {"input", {{"who", id}}}, {"request_id", "sig-" + id}}.dump(),
              headers);
  };

  // A valid workflow of partition p, started (and recorded) before the bad input.
  start_good(good_before);
  {
    auto msg = good_replies.Next(20s);
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "no reply to the first valid start");
    BOOST_REQUIRE_MESSAGE(!json::parse(Body(msg.get())).contains("error"), Body(msg.get()));
  }

  for (const Case& c : cases) JsPublish(h.client(), c.subject, c.data, c.headers);
  // ... and one started after it, in the same partition, plus both signals.
  start_good(good_after);
  signal_good(good_before);
  signal_good(good_after);

  // Every valid message is answered without error.
  std::set<std::string> good_seen;
  while (good_seen.size() < 3) {
    auto msg = good_replies.Next(30s);
    BOOST_REQUIRE_MESSAGE(msg != nullptr,
                          "only " << good_seen.size() << " of 3 valid messages answered");
    good_seen.insert(natsMsg_GetSubject(msg.get()));
    BOOST_CHECK_MESSAGE(!json::parse(Body(msg.get())).contains("error"),
                        natsMsg_GetSubject(msg.get()) << ": " << Body(msg.get()));
  }
  for (const std::string& id : {good_before, good_after}) {
    wire::ResultReply r = h.Result(id, 20s);
    BOOST_CHECK_MESSAGE(!r.has_error(),
                        id << ": " << r.error().code() << " " << r.error().message());
    BOOST_CHECK_EQUAL(r.status(), "completed");
    BOOST_CHECK_EQUAL(bus::JsonFromValue(r.output()),
                      json({{"slept_ms", 50}, {"signal", {{"who", id}}}}));
    BOOST_CHECK_EQUAL(h.History(id).events_size(), 5);
  }

  // Every sender that asked for a reply got the right error.
  std::map<std::string, const Case*> by_inbox;
  std::size_t dead = 0;
  for (const Case& c : cases) {
    if (!c.reply_to.empty()) by_inbox[c.reply_to] = &c;
    if (!c.dlq_kind.empty()) ++dead;
  }
  std::set<std::string> answered;
  while (answered.size() < by_inbox.size()) {
    auto msg = replies.Next(30s);
    if (msg == nullptr) break;
    const std::string subject = natsMsg_GetSubject(msg.get());
    auto it = by_inbox.find(subject);
    BOOST_REQUIRE_MESSAGE(it != by_inbox.end(), "reply on unexpected subject " << subject);
    const Case& c = *it->second;
    BOOST_CHECK_MESSAGE(answered.insert(subject).second, c.name << ": answered twice");
    wire::IngressReply reply;
    json j = DecodeReply(msg.get(), c.json(), &reply);
    BOOST_CHECK_MESSAGE(j.contains("error") && j["error"].value("code", "") == c.code,
                        c.name << ": expected error " << c.code << ", reply " << j.dump());
    BOOST_CHECK_MESSAGE(j.contains("error") && !j["error"].value("message", "").empty(),
                        c.name << ": error without a message");
  }
  for (const auto& [inbox, c] : by_inbox) {
    BOOST_CHECK_MESSAGE(answered.count(inbox) == 1, c->name << ": no reply on " << inbox);
  }

  // Every bad message is dead-lettered exactly once, with its reason; nothing else is.
  const std::string dlq(bus::kDlqStream);
  BOOST_CHECK_MESSAGE(WaitFor([&] { return StreamCount(h.client(), dlq) >= dead; }, 30s),
                      "AION_DLQ holds " << StreamCount(h.client(), dlq) << " of " << dead);
  // Everything of partition p is settled: nothing pending, nothing unacked.
  BOOST_CHECK(WaitFor(
      [&] {
        auto b = Backlog(h.client(), p);
        return b.pending == 0 && b.ack_pending == 0;
      },
      30s));
  const auto letters = ReadStream(h.client(), dlq);
  BOOST_CHECK_EQUAL(letters.size(), dead);
  BOOST_TEST_MESSAGE(cases.size() << " bad or refused messages: " << letters.size()
                                  << " dead letters, " << answered.size() << " error replies");
  std::map<std::string, std::vector<std::pair<std::string, wire::DeadLetter>>> by_subject;
  for (const auto& m : letters) {
    wire::DeadLetter letter;
    BOOST_REQUIRE_MESSAGE(letter.ParseFromString(m.data),
                          "DLQ seq " << m.seq << " is not a DeadLetter");
    by_subject[letter.subject()].emplace_back(m.subject, letter);
  }
  for (const Case& c : cases) {
    const auto& found = by_subject[c.stored_subject];
    if (c.dlq_kind.empty()) {
      BOOST_CHECK_MESSAGE(found.empty(), c.name << ": dead-lettered but should not be");
      continue;
    }
    BOOST_REQUIRE_MESSAGE(found.size() == 1, c.name << ": " << found.size() << " dead letters for "
                                                    << c.stored_subject);
    const auto& [dlq_subject, letter] = found.front();
    BOOST_CHECK_MESSAGE(dlq_subject == "aion.dlq." + c.dlq_kind,
                        c.name << ": on " << dlq_subject << ", expected aion.dlq." << c.dlq_kind);
    BOOST_CHECK_MESSAGE(letter.kind() == c.dlq_kind, c.name << ": kind " << letter.kind());
    BOOST_CHECK_MESSAGE(letter.code() == c.code, c.name << ": code " << letter.code());
    BOOST_CHECK_MESSAGE(!letter.reason().empty(), c.name << ": no reason");
    BOOST_CHECK_MESSAGE(
        letter.reason().find(c.reason_has) != std::string::npos,
        c.name << ": reason '" << letter.reason() << "' lacks '" << c.reason_has << "'");
    BOOST_CHECK_MESSAGE(letter.data() == c.data, c.name << ": data differs ("
                                                        << letter.data().size() << " of "
                                                        << c.data.size() << " bytes)");
    if (!c.reply_to.empty()) {
      auto it = letter.headers().find("Aion-Reply-To");
      BOOST_CHECK_MESSAGE(it != letter.headers().end() && it->second == c.reply_to,
                          c.name << ": headers not kept");
    }
    BOOST_CHECK(letter.time_us() > 0);
  }

  // The worker is the same process, alive and serving; it drains and exits 0.
  BOOST_CHECK(h.worker().Alive());
  BOOST_CHECK_EQUAL(h.worker().starts(), 1);
  BOOST_CHECK_EQUAL(h.Describe("never-started").error().code(), "not_found");
  BOOST_CHECK_EQUAL(h.Describe(good_after).status(), "completed");
  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());
}

}  // namespace
}  // namespace aion::testing

namespace aion::testing {
namespace {

// protobuf's JSON parser (libprotobuf 3.21) takes time quadratic in the
// nesting depth (60,000 levels, a 120 KB message: minutes) on the partition's
// fetch thread. The codec bounds the depth before parsing; this checks that
// such a message is refused at once and its partition keeps serving.
BOOST_AUTO_TEST_CASE(deeply_nested_json_does_not_stall_the_partition) {
  WorkerHarness h;
  const std::uint32_t p = 7;
  const std::string deep = IdInPartition(p, "deep");
  const std::string good = IdInPartition(p, "good");
  NatsCollector replies(h.client(), "_INBOX.deep.>");
  bus::Headers headers = kJsonHeaders;
  headers["Aion-Reply-To"] = "_INBOX.deep.bad";
  const std::string body = R"({"workflow_type":"noop","input":)" + Nested(60000) + "}";
  BOOST_TEST_MESSAGE("a start of " << body.size() << " bytes, input nested 60000 deep");
  JsPublish(h.client(), "aion.wf." + deep + ".start", body, headers);
  headers["Aion-Reply-To"] = "_INBOX.deep.good";
  JsPublish(h.client(), "aion.wf." + good + ".start",
            R"({"workflow_type":"timer_signal","input":{"sleep_ms":10,"signal":"go"}})", headers);
  JsPublish(h.client(), "aion.wf." + good + ".signal", R"({"name":"go","input":1})", kJsonHeaders);

  // Both starts are answered (after their commit or refusal) within 15 s...
  const auto t0 = SteadyClock::now();
  std::map<std::string, std::string> answered;
  while (answered.size() < 2) {
    auto msg = replies.Next(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max<SteadyClock::duration>(1ms, t0 + 15s - SteadyClock::now())));
    if (msg == nullptr) break;
    answered[natsMsg_GetSubject(msg.get())] = Body(msg.get());
  }
  BOOST_REQUIRE_MESSAGE(answered.count("_INBOX.deep.bad") == 1,
                        "the deep message was not answered within 15 s");
  BOOST_CHECK_EQUAL(json::parse(answered["_INBOX.deep.bad"])["error"]["code"], "invalid_argument");
  BOOST_REQUIRE_MESSAGE(answered.count("_INBOX.deep.good") == 1,
                        "the valid start of the same partition was not answered within 15 s");
  // ...and the valid workflow of the same partition runs to completion.
  wire::ResultReply r = h.Result(good, 15s);
  BOOST_CHECK_MESSAGE(!r.has_error() && r.status() == "completed",
                      "a valid workflow of the same partition did not complete: "
                          << r.error().code() << " " << r.error().message());
  BOOST_CHECK(h.worker().Alive());
}

}  // namespace
}  // namespace aion::testing
