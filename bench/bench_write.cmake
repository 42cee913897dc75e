# bench_write (build/bench_write): write mode of the VFS against plain SQLite on a local file in
# the same run: single-row INSERT transactions per second (local journal_mode=DELETE with
# synchronous OFF and FULL; write mode through fakes3 at 0 ms and with latency), litestream_sync()
# latency for 1, 100 and 10,000 dirty pages at 40 ms, and the insert rate the writer sustains with
# its buffer bounded. Run it by hand (docs/benchmarks.md); CTest runs --smoke (tiny counts, no
# latency) so the code keeps working; no test looks at timings.
add_executable(bench_write bench_write.c benchutil.c)
target_link_libraries(bench_write PRIVATE PkgConfig::SQLITE3 m)
add_dependencies(bench_write fakes3 litestream-vfs)
add_test(NAME bench_write_smoke COMMAND bench_write --smoke)
set_tests_properties(bench_write_smoke PROPERTIES LABELS bench TIMEOUT 300
  ENVIRONMENT "LTXVFS_BUILD_DIR=${CMAKE_BINARY_DIR}")
