#include "outbox_relay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

namespace aion {
namespace {
constexpr std::size_t kRelayBatch = 256;
}  // namespace

OutboxRelay::OutboxRelay(const EngineOptions& options, Writer* writer)
    : options_(options), writer_(writer), thread_([this] { Loop(); }) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Nudge() {
  std::lock_guard<std::mutex> g(mu_);
  nudged_ = true;
  cv_.notify_all();
}

void OutboxRelay::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool OutboxRelay::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return stopping_ || nudged_; });
  nudged_ = false;
  return !stopping_;
}

void OutboxRelay::Loop() {
  // Real time on purpose: this paces retries of a broker, not workflow time.
  while (Wait(std::chrono::seconds(5))) {
    while (RelayOnce()) {
      std::lock_guard<std::mutex> g(mu_);
      if (stopping_) return;
    }
  }
}

std::vector<std::string> OutboxRelay::Publish(const std::vector<OutboxRow>& rows) {
  Status error;
  const std::size_t accepted = std::min(options_.outbox->PublishBatch(rows, &error), rows.size());
  if (accepted < rows.size()) {
    // Keep order: rows[accepted] and the ones after it wait for the next round.
    spdlog::warn("outbox: publish of {} failed, will retry: {}", rows[accepted].key(),
                 error.ToString());
  }
  std::vector<std::string> published;
  published.reserve(accepted);
  for (std::size_t i = 0; i < accepted; ++i) published.push_back(rows[i].key());
  return published;
}

std::vector<std::string> OutboxRelay::DeliverLocally(const std::vector<OutboxRow>& rows) {
  std::vector<IngressMessage> messages;
  for (const OutboxRow& row : rows) {
    if (row.kind() == OutboxRow::KIND_WORKFLOW_MESSAGE) {
      messages.push_back(IngressOfWorkflowMessage(row.message()));
    }
  }
  std::vector<IngressOutcome> outcomes;
  if (!messages.empty()) {
    std::promise<std::vector<IngressOutcome>> done;
    auto result = done.get_future();
    writer_->SubmitIngress(std::move(messages), [&done](std::vector<IngressOutcome> o) {
      done.set_value(std::move(o));
    });
    outcomes = result.get();
  }
  std::vector<std::string> delivered;
  std::size_t next = 0;
  for (const OutboxRow& row : rows) {
    if (row.kind() == OutboxRow::KIND_WORKFLOW_MESSAGE) {
      const Status& s = outcomes[next++].status;
      if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted) {
        break;  // not recorded: keep this row and the ones after it
      }
      if (!s.ok()) spdlog::warn("outbox: {} was refused: {}", row.key(), s.ToString());
    }
    delivered.push_back(row.key());
  }
  return delivered;
}

bool OutboxRelay::RelayOnce() {
  auto rows = options_.store->ReadOutbox("", kRelayBatch);
  if (!rows.ok()) {
    spdlog::warn("outbox: cannot read: {}", rows.status().ToString());
    return false;
  }
  if (rows->empty()) return false;
  std::vector<std::string> published =
      options_.outbox != nullptr ? Publish(*rows) : DeliverLocally(*rows);
  if (published.empty()) {
    Wait(std::chrono::milliseconds(200));  // back off before retrying the broker
    return false;
  }
  std::promise<Status> deleted;
  auto result = deleted.get_future();
  writer_->SubmitOutboxPublished(std::move(published),
                                 [&deleted](Status s) { deleted.set_value(s); });
  return result.get().ok();
}

}  // namespace aion
