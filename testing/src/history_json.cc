#include "aion/testing/history_json.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>

#include "aion/engine/ids.h"
#include "aion/engine/payload.h"

namespace aion::testing {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// The CLI prints a Payload as the JSON value it holds: turn it back into the
// mapping of a Payload message (bytes are base64 in that mapping).
Json PayloadMapping(const Json& value) {
  const Payload p = JsonPayload(value);
  return Json{{"data", Base64(p.data())}, {"encoding", p.encoding()}};
}

// Undoes the CLI's payload inlining in `j`, a mapping of a `d` message.
void RestorePayloads(const Descriptor* d, Json& j) {
  if (!j.is_object()) return;  // the protobuf parser reports the mismatch
  for (auto it = j.begin(); it != j.end(); ++it) {
    const FieldDescriptor* f = d->FindFieldByName(it.key());
    if (f == nullptr) f = d->FindFieldByCamelcaseName(it.key());
    Json& value = it.value();
    if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_map()) continue;
    const Descriptor* sub = f->message_type();
    if (sub->file()->package() == "google.protobuf") continue;
    const bool payload = sub == Payload::descriptor();
    auto restore = [&](Json& v) {
      if (payload) {
        v = PayloadMapping(v);
      } else {
        RestorePayloads(sub, v);
      }
    };
    if (f->is_repeated() && value.is_array()) {
      for (Json& v : value) restore(v);
    } else if (!f->is_repeated()) {
      restore(value);
    }
  }
}

Result<HistoryEvent> ParseEvent(Json j, std::size_t index) {
  const std::string where = "event " + std::to_string(index + 1) + ": ";
  if (!j.is_object()) return InvalidArgument(where + "not a JSON object");
  RestorePayloads(HistoryEvent::descriptor(), j);
  HistoryEvent e;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  const auto s = google::protobuf::util::JsonStringToMessage(j.dump(), &e, opts);
  if (!s.ok()) return InvalidArgument(where + std::string(s.message()));
  if (e.attributes_case() == HistoryEvent::ATTRIBUTES_NOT_SET) {
    return InvalidArgument(where + "has no event attributes (e.g. \"timer_fired\")");
  }
  if (e.seq() != index + 1) {
    return InvalidArgument(where + "has seq " + std::to_string(e.seq()) + ", expected " +
                           std::to_string(index + 1) + " (a history starts at seq 1, no gaps)");
  }
  return e;
}

Result<RecordedHistory> HistoryOf(const Json& doc, std::string source) {
  const std::string where = source.empty() ? "" : source + ": ";
  if (!doc.is_object()) return InvalidArgument(where + "a history is a JSON object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() != "events" && it.key() != "workflow_id") {
      return InvalidArgument(where + "unknown key '" + it.key() +
                             "' (expected events, workflow_id)");
    }
  }
  RecordedHistory h;
  h.source = std::move(source);
  if (doc.contains("workflow_id")) {
    if (!doc["workflow_id"].is_string()) return InvalidArgument(where + "workflow_id not a string");
    h.workflow_id = doc["workflow_id"].get<std::string>();
    if (Status s = ValidateWorkflowId(h.workflow_id); !s.ok()) {
      return InvalidArgument(where + s.message());
    }
  }
  if (!doc.contains("events") || !doc["events"].is_array()) {
    return InvalidArgument(where + "no \"events\" array");
  }
  if (doc["events"].empty()) return InvalidArgument(where + "\"events\" is empty");
  for (std::size_t i = 0; i < doc["events"].size(); ++i) {
    auto e = ParseEvent(doc["events"][i], i);
    if (!e.ok()) return InvalidArgument(where + e.status().message());
    h.events.push_back(std::move(*e));
  }
  if (!h.events.front().has_workflow_started()) {
    return InvalidArgument(where + "event 1 is not WorkflowStarted");
  }
  return h;
}

Result<std::vector<RecordedHistory>> ParseLines(std::string_view text) {
  std::vector<RecordedHistory> out;
  std::istringstream in{std::string(text)};
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string source = "line " + std::to_string(n);
    Json doc = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      return InvalidArgument(source +
                             ": not valid JSON (expected one history, an array of "
                             "them, or one history per line)");
    }
    auto h = HistoryOf(doc, source);
    if (!h.ok()) return h.status();
    out.push_back(std::move(*h));
  }
  if (out.empty()) return InvalidArgument("no history in the input");
  return out;
}

}  // namespace

Result<RecordedHistory> ParseHistoryJson(std::string_view text) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("history is not valid JSON");
  return HistoryOf(doc, "");
}

Result<std::vector<RecordedHistory>> ParseHistories(std::string_view text) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return ParseLines(text);
  std::vector<RecordedHistory> out;
  if (doc.is_array()) {
    if (doc.empty()) return InvalidArgument("no history in the input");
    for (std::size_t i = 0; i < doc.size(); ++i) {
      auto h = HistoryOf(doc[i], "entry " + std::to_string(i + 1));
      if (!h.ok()) return h.status();
      out.push_back(std::move(*h));
    }
    return out;
  }
  auto h = HistoryOf(doc, "document");
  if (!h.ok()) return h.status();
  out.push_back(std::move(*h));
  return out;
}

Result<std::vector<RecordedHistory>> ReadHistoryFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read history file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  auto histories = ParseHistories(text.str());
  if (!histories.ok()) return InvalidArgument(path + ": " + histories.status().message());
  for (auto& h : *histories) h.source = path + " " + h.source;
  return histories;
}

}  // namespace aion::testing
