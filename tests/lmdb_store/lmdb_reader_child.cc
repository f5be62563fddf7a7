// lmdb_reader_child <dir>
//
// Opens the LMDB environment at <dir> with the raw API, begins a read
// transaction, writes "1" and a newline to stdout, and waits to be killed, so
// the environment keeps a reader slot of a dead process. Exits 2 on errors.
#include <lmdb.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: lmdb_reader_child <dir>\n");
    return 2;
  }
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  int rc = mdb_env_create(&env);
  if (rc == 0) rc = mdb_env_set_maxdbs(env, 16);
  if (rc == 0) rc = mdb_env_open(env, argv[1], MDB_NOTLS | MDB_RDONLY, 0644);
  if (rc == 0) rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) {
    std::fprintf(stderr, "lmdb_reader_child: %s\n", mdb_strerror(rc));
    return 2;
  }
  std::printf("1\n");
  std::fflush(stdout);
  while (true) pause();
}
