// One line per history event (DescribeEvent), for engine tests that assert
// on the shape of a history. Header-only; Boost.Test must be included.
#pragma once

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"

namespace aion::testing {

inline std::vector<std::string> EventNames(Engine& engine, const std::string& workflow_id) {
  auto history = engine.History(workflow_id);
  BOOST_REQUIRE(history.ok());
  std::vector<std::string> out;
  for (const auto& e : *history) out.push_back(DescribeEvent(e));
  return out;
}

inline bool HasEvent(Engine& engine, const std::string& workflow_id, const std::string& event) {
  for (const auto& e : EventNames(engine, workflow_id)) {
    if (e == event) return true;
  }
  return false;
}

}  // namespace aion::testing
