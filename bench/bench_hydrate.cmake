# bench_hydrate (build/bench_hydrate): hydration (LITESTREAM_HYDRATION_PATH): time from open to
# cutover for 10 and 100 MiB at fakes3 latency 0 and 40 ms, beside `ltxctl restore` and `aws s3
# cp` of the same replica in the same run; then query latency after cutover against plain SQLite
# on a local copy. Run it by hand (docs/benchmarks.md); CTest runs --smoke (a 2 MiB database, no
# latency, one trial, no awscli) so the code keeps working.
add_executable(bench_hydrate ${CMAKE_CURRENT_LIST_DIR}/bench_hydrate.c
  ${CMAKE_CURRENT_LIST_DIR}/benchutil.c)
target_link_libraries(bench_hydrate PRIVATE PkgConfig::SQLITE3)
add_dependencies(bench_hydrate fakes3 ltxctl litestream-vfs)
add_test(NAME bench_hydrate_smoke COMMAND bench_hydrate --smoke)
set_tests_properties(bench_hydrate_smoke PROPERTIES LABELS bench TIMEOUT 300
  ENVIRONMENT "LTXVFS_BUILD_DIR=${CMAKE_BINARY_DIR}")
