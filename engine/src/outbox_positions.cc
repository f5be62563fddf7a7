#include "outbox_positions.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace aion {
namespace {

constexpr std::size_t kPage = 1024;

bool IsPositionKey(const std::string& key) {
  return key.size() == 20 &&
         std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string TwentyDigits(std::uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(n));
  return buf;
}

Result<std::uint64_t> OpenOutboxPositions(Store& store) {
  std::uint64_t next = 0;
  std::vector<OutboxRow> old_rows;  // in key order
  std::string after;
  while (true) {
    auto page = store.ReadOutbox(after, kPage);
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    after = page->back().key();
    for (OutboxRow& row : *page) {
      if (IsPositionKey(row.key())) {
        next = std::max<std::uint64_t>(next, std::stoull(row.key()) + 1);
      } else {
        old_rows.push_back(std::move(row));
      }
    }
    if (page->size() < kPage) break;
  }
  if (old_rows.empty()) return next;
  WriteBatch batch;
  for (OutboxRow& row : old_rows) {
    batch.outbox_deletes.push_back(row.key());
    if (row.msg_id().empty()) row.set_msg_id(row.key());
    row.set_key(OutboxPositionKey(next++));
    batch.outbox_puts.push_back(std::move(row));
  }
  AION_RETURN_IF_ERROR(store.Commit(batch));
  spdlog::info("outbox: {} rows of an earlier version re-keyed to commit positions",
               old_rows.size());
  return next;
}

}  // namespace aion
