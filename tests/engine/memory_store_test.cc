// MemoryStore against the Store conformance suite.
#define BOOST_TEST_MODULE memory_store_test
#include "aion/engine/memory_store.h"

#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include "engine/store_conformance.h"

namespace {

// Owns one fresh MemoryStore per test case.
struct MemoryStoreFixture {
  aion::MemoryStore memory_store;
  aion::Store& store() { return memory_store; }
};

using MemoryStoreFixtures = boost::mpl::list<MemoryStoreFixture>;

}  // namespace

BOOST_AUTO_TEST_SUITE(memory_store_conformance)
AION_STORE_CONFORMANCE_TESTS(MemoryStoreFixtures)
BOOST_AUTO_TEST_SUITE_END()
