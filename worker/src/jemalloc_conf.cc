// jemalloc's options for aion-worker, linked only when aion-worker links
// jemalloc. jemalloc reads this symbol at startup; MALLOC_CONF in the
// environment still overrides it.
//
// background_thread: jemalloc purges on its own threads, so an idle worker
// (runs parked for months) gives freed pages back; otherwise purging happens
// only as a side effect of later allocations. dirty_decay_ms: freed pages go
// back after about 1 s instead of 10 s. bench/README.md has the measurements
// (memory per parked run; no cost seen on start ingestion).
extern "C" {
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): jemalloc's name
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000";
}
