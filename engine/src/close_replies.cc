#include "close_replies.h"

namespace aion {

bool AddCloseReply(WorkflowRecord& rec, const std::string& subject, bool json) {
  if (subject.empty()) return false;
  for (const records::CloseReply& r : rec.close_replies()) {
    if (r.subject() == subject) return true;  // that sender hears of it already
  }
  if (static_cast<std::size_t>(rec.close_replies_size()) >= kMaxCloseReplies) return false;
  records::CloseReply* added = rec.add_close_replies();
  added->set_subject(subject);
  added->set_json(json);
  return true;
}

OutboxRow CloseReplyRow(const WorkflowRecord& rec, const records::CloseReply& reply,
                        const HistoryEvent& terminal, std::size_t n) {
  OutboxRow row;
  row.set_msg_id(rec.workflow_id() + "/" + std::to_string(terminal.seq()) + "/reply/" +
                 std::to_string(n));
  row.set_kind(OutboxRow::KIND_CLOSE_REPLY);
  row.set_workflow_id(rec.workflow_id());
  row.set_workflow_type(rec.workflow_type());
  *row.mutable_event() = terminal;
  *row.mutable_reply() = reply;
  return row;
}

std::vector<OutboxRow> TakeCloseReplies(WorkflowRecord& rec, const HistoryEvent& terminal) {
  std::vector<OutboxRow> rows;
  for (int i = 0; i < rec.close_replies_size(); ++i) {
    rows.push_back(CloseReplyRow(rec, rec.close_replies(i), terminal, static_cast<std::size_t>(i)));
  }
  rec.clear_close_replies();
  return rows;
}

}  // namespace aion
