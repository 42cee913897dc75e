# bench_vfs (build/bench_vfs): the read-mode VFS against plain SQLite on the same database: cold
# open + first query through a fakes3 with latency (round trips, requests), warm point queries and
# full scans, peak memory against the cache size. Run it by hand (docs/benchmarks.md); CTest runs
# --smoke (a 2 MiB database, no latency) so the code keeps working.
add_executable(bench_vfs bench_vfs.c benchutil.c)
target_link_libraries(bench_vfs PRIVATE lvcore PkgConfig::SQLITE3)
add_dependencies(bench_vfs fakes3 litestream-vfs)
add_test(NAME bench_vfs_smoke COMMAND bench_vfs --smoke)
set_tests_properties(bench_vfs_smoke PROPERTIES LABELS bench TIMEOUT 300
  ENVIRONMENT "LTXVFS_BUILD_DIR=${CMAKE_BINARY_DIR}")
