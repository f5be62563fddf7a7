#include "render.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <ctime>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "aion/engine/payload.h"

namespace aion::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
// Keeps the .proto field order (seq first, then time...) instead of sorting keys.
using OJson = nlohmann::ordered_json;

bool IsPayload(const FieldDescriptor* f) {
  return f->message_type() == history::Payload::descriptor();
}

// Payloads are bytes on the wire; people and jq want the JSON value inside.
OJson PayloadJson(const history::Payload& p) { return OJson::parse(PayloadToDisplay(p)); }

void InlinePayloads(const Message& m, OJson& j) {
  const auto* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_map()) continue;
    // Well-known types (Value, Struct) already map to plain JSON.
    if (f->message_type()->file()->package() == "google.protobuf") continue;
    if (!j.is_object() || !j.contains(f->name())) continue;
    OJson& slot = j[f->name()];
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const Message& sub = f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f);
      OJson& target = f->is_repeated() ? slot[i] : slot;
      if (IsPayload(f)) {
        target = PayloadJson(static_cast<const history::Payload&>(sub));
      } else {
        InlinePayloads(sub, target);
      }
    }
  }
}

OJson ToJson(const Message& m, bool print_defaults = true) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;  // snake_case, as DESIGN §5 writes them
  opts.always_print_primitive_fields = print_defaults;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(m, &text, opts).ok()) {
    return OJson{{"unprintable", m.GetTypeName()}};
  }
  OJson j = OJson::parse(text, nullptr, /*allow_exceptions=*/false);
  InlinePayloads(m, j);
  return j;
}

// " key=value" for each set field of an event's attributes, in declaration order.
std::string AttributesText(const Message& attrs) {
  const OJson j = ToJson(attrs, /*print_defaults=*/false);
  std::string out;
  const auto* d = attrs.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (!j.contains(f->name())) continue;
    const OJson& v = j[f->name()];
    std::string name = f->name();
    std::string text = v.is_string() && !IsPayload(f) ? v.get<std::string>() : v.dump();
    if (name.ends_with("_us") && f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
      name.resize(name.size() - 3);
      text = FormatTimeUs(attrs.GetReflection()->GetInt64(attrs, f));
    }
    out.append(" ").append(name).append("=").append(text);
  }
  return out;
}

std::string PrintableOrSize(const std::string& data) {
  for (unsigned char c : data) {
    if (c < 0x20 && c != '\n' && c != '\t') return "<" + std::to_string(data.size()) + " bytes>";
  }
  return data;
}

}  // namespace

std::string PendingActivityText(const wire::PendingActivity& a) {
  std::string text = a.activity_id() + " " + a.activity_type() + " attempt " +
                     std::to_string(a.attempt()) + " " + a.state();
  text += a.task_queue().empty() ? " (local)" : " on " + a.task_queue();
  if (a.deadline_us() != 0) {
    text += (a.state() == "backing_off" ? " retry " : " deadline ") + FormatTimeUs(a.deadline_us());
  }
  if (a.last_heartbeat_us() != 0) {
    text += " heartbeat " + FormatTimeUs(a.last_heartbeat_us());
    if (a.has_heartbeat_details()) text += " " + ToJson(a.heartbeat_details()).dump();
  }
  if (!a.last_failure().empty()) text += " last_failure=" + a.last_failure();
  return text;
}

std::string FormatTimeUs(std::int64_t us) {
  if (us == 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::ostringstream s;
  s << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << '.' << std::setw(3) << std::setfill('0')
    << (us % 1'000'000) / 1000 << 'Z';
  return s.str();
}

std::string HistoryLine(const history::HistoryEvent& event, const std::string& previous_run) {
  const auto* r = event.GetReflection();
  const auto* oneof = event.GetDescriptor()->FindOneofByName("attributes");
  const FieldDescriptor* attr = r->GetOneofFieldDescriptor(event, oneof);
  std::ostringstream s;
  s << std::setw(4) << event.seq() << "  " << FormatTimeUs(event.recorded_at_us()) << "  "
    << std::left << std::setw(18) << (attr ? attr->message_type()->name() : "UnknownEvent");
  std::string fields;
  if (event.run_id() != previous_run) fields += " run=" + event.run_id();
  if (event.caused_by() != 0) fields += " caused_by=" + std::to_string(event.caused_by());
  if (attr) fields += AttributesText(r->GetMessage(event, attr));
  s << fields;
  return s.str();
}

// Flushed per line: `aion sub` is often piped or redirected and then killed.
void Renderer::Line(const std::string& text) { out_ << text << std::endl; }

void Renderer::Ingress(std::string_view verb, const wire::IngressReply& reply) {
  if (json_) return Line(ToJson(reply).dump());
  std::string text = std::string(verb) + " " + reply.workflow_id() + " run " + reply.run_id();
  if (reply.duplicate()) text += " (duplicate request: recorded earlier, nothing new happened)";
  if (reply.dropped()) text += " (already requested: nothing new happened)";
  Line(text);
}

void Renderer::Result(std::string_view workflow_id, const wire::ResultReply& reply) {
  if (json_) return Line(ToJson(reply).dump());
  Line(reply.status() + " " + std::string(workflow_id) + " run " + reply.run_id());
  if (reply.has_output()) Line("output " + ToJson(reply.output()).dump());
  if (!reply.failure().empty()) Line("failure " + reply.failure());
}

void Renderer::Describe(const wire::DescribeReply& d) {
  if (json_) return Line(ToJson(d).dump());
  auto row = [this](std::string_view key, const std::string& value) {
    std::ostringstream s;
    s << std::left << std::setw(16) << key << value;
    Line(s.str());
  };
  row("workflow_id", d.workflow_id());
  row("workflow_type", d.workflow_type());
  row("run_id", d.run_id());
  row("status", d.status());
  row("history_length", std::to_string(d.history_length()));
  if (!d.code_version().empty()) row("code_version", d.code_version());
  row("started", FormatTimeUs(d.start_time_us()));
  row("closed", FormatTimeUs(d.close_time_us()));
  row("partition", std::to_string(d.partition()));
  row("resident", d.resident() ? "yes" : "no");
  if (d.run_deadline_us() != 0) row("run_deadline", FormatTimeUs(d.run_deadline_us()));
  if (d.cancel_requested()) {
    row("cancel", "requested" + (d.cancel_reason().empty() ? "" : ": " + d.cancel_reason()));
  }
  for (const auto& t : d.pending_timers()) {
    row("pending_timer", t.timer_id() + " fires " + FormatTimeUs(t.fire_at_us()));
  }
  for (const auto& a : d.pending_activities()) {
    row("activity", PendingActivityText(a));
  }
  if (d.has_parent()) {
    const auto& p = d.parent();
    row("parent", p.workflow_id() + " run " + p.run_id() + " child_ref " + p.child_ref());
  }
  for (const auto& c : d.pending_children()) {
    row("child", c.child_ref() + " " + c.workflow_id() + " " + c.workflow_type() +
                     " parent_close=" + c.parent_close_policy());
  }
  if (!d.parked_error().empty()) row("parked_error", d.parked_error());
}

void Renderer::History(const std::vector<history::HistoryEvent>& events) {
  if (json_) {
    OJson all = OJson::array();
    for (const auto& e : events) all.push_back(ToJson(e));
    return Line(OJson{{"events", std::move(all)}}.dump());
  }
  std::string run;
  for (const auto& e : events) {
    Line(HistoryLine(e, run));
    run = e.run_id();
  }
}

void Renderer::Query(const wire::QueryReply& reply) {
  if (json_) return Line(ToJson(reply).dump());
  Line(ToJson(reply.result()).dump());
}

void Renderer::List(const wire::ListReply& merged, std::size_t workers, bool more) {
  if (json_) {
    OJson j = ToJson(merged);
    j.erase("next_page_token");  // one per worker; not meaningful merged
    j["workers"] = workers;
    j["more"] = more;
    return Line(j.dump());
  }
  std::size_t id_width = 11, type_width = 13;
  for (const auto& w : merged.workflows()) {
    id_width = std::max(id_width, w.workflow_id().size());
    type_width = std::max(type_width, w.workflow_type().size());
  }
  auto row = [&](const std::string& id, const std::string& type, const std::string& status,
                 const std::string& started, const std::string& closed, const std::string& run) {
    std::ostringstream s;
    s << std::left << std::setw(static_cast<int>(id_width)) << id << "  "
      << std::setw(static_cast<int>(type_width)) << type << "  " << std::setw(16) << status << "  "
      << std::setw(24) << started << "  " << std::setw(24) << closed << "  " << run;
    std::string line = s.str();
    while (!line.empty() && line.back() == ' ') line.pop_back();
    Line(line);
  };
  row("WORKFLOW_ID", "WORKFLOW_TYPE", "STATUS", "STARTED", "CLOSED", "RUN_ID");
  for (const auto& w : merged.workflows()) {
    row(w.workflow_id(), w.workflow_type(), w.status(), FormatTimeUs(w.start_time_us()),
        FormatTimeUs(w.close_time_us()), w.run_id());
  }
  std::string summary = std::to_string(merged.workflows_size()) + " workflow(s) from " +
                        std::to_string(workers) + " worker(s) (aion " + merged.aion_version() +
                        "), " + std::to_string(merged.partitions_size()) + " partition(s)";
  if (more) summary += "; more exist: narrow the filters or raise --limit (per worker)";
  err_ << summary << '\n';
}

void Renderer::Published(std::string_view subject, const std::string& stream, std::uint64_t seq,
                         bool duplicate) {
  if (json_) {
    return Line(
        OJson{{"subject", subject}, {"stream", stream}, {"seq", seq}, {"duplicate", duplicate}}
            .dump());
  }
  Line("published to " + std::string(subject) + " (stream " + stream + " seq " +
       std::to_string(seq) + (duplicate ? ", duplicate: JetStream already had it" : "") + ")");
}

void Renderer::Seen(std::string_view subject, const std::string& data, bool json,
                    std::string_view prefix) {
  const std::string evt = std::string(prefix) + ".evt.";
  const std::string dlq = std::string(prefix) + ".dlq.";
  wire::LifecycleEvent event;
  wire::DeadLetter letter;
  auto parse = [&](Message& m) {
    if (!json) return m.ParseFromString(data);
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;
    return google::protobuf::util::JsonStringToMessage(data, &m, opts).ok();
  };
  if (subject.starts_with(evt) && parse(event)) {
    if (json_) return Line(ToJson(event).dump());
    std::string text = FormatTimeUs(event.time_us()) + "  " + event.event() + " " +
                       event.workflow_type() + " " + event.workflow_id() + " run " +
                       event.run_id() + " seq " + std::to_string(event.seq());
    if (event.has_input()) text += " input=" + ToJson(event.input()).dump();
    if (event.has_output()) text += " output=" + ToJson(event.output()).dump();
    if (!event.failure().empty()) text += " failure=" + event.failure();
    if (!event.next_run_id().empty()) text += " next_run=" + event.next_run_id();
    return Line(text);
  }
  if (subject.starts_with(dlq) && parse(letter)) {
    if (json_) {
      OJson j = ToJson(letter);
      j["data"] = letter.data();  // the rejected bytes, readable when they are text
      return Line(j.dump(-1, ' ', false, OJson::error_handler_t::replace));
    }
    return Line(FormatTimeUs(letter.time_us()) + "  dead letter " + letter.kind() + " [" +
                letter.code() + "] " + letter.reason() + " (subject " + letter.subject() +
                ") data=" + PrintableOrSize(letter.data()));
  }
  if (json_) {
    OJson body = OJson::parse(data, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) body = PrintableOrSize(data);
    return Line(OJson{{"subject", subject}, {"data", body}}.dump(-1, ' ', false,
                                                                 OJson::error_handler_t::replace));
  }
  Line(std::string(subject) + "  " + PrintableOrSize(data));
}

void Renderer::ServerError(const wire::Error& error) {
  if (json_) {
    return Line(OJson{{"error", {{"code", error.code()}, {"message", error.message()}}}}.dump());
  }
  err_ << "aion: error " << error.code() << ": " << error.message() << '\n';
}

void Renderer::LocalError(const Status& status) {
  if (json_) {
    return Line(
        OJson{{"error", {{"code", StatusCodeName(status.code())}, {"message", status.message()}}}}
            .dump());
  }
  err_ << "aion: " << status.ToString() << '\n';
}

}  // namespace aion::cli
