# bench_restore (build/bench_restore): restore of a database from fakes3 (0 ms and --latency
# 40ms), restore_run in-process and `ltxctl restore`, beside `aws s3 cp --recursive` of the same
# objects in the same run. Run it by hand (see docs/benchmarks.md and docs/ltxctl.md); CTest
# runs only --smoke (a 2 MiB database, one run, no awscli), so the code keeps working.
add_executable(bench_restore ${CMAKE_CURRENT_LIST_DIR}/bench_restore.c)
target_link_libraries(bench_restore PRIVATE lvcore PkgConfig::SQLITE3)
target_compile_definitions(bench_restore PRIVATE BENCH_BUILD_DIR="${CMAKE_BINARY_DIR}")
add_dependencies(bench_restore fakes3 ltxctl)

add_test(NAME bench_restore_smoke COMMAND bench_restore --smoke)
set_tests_properties(bench_restore_smoke PROPERTIES LABELS bench TIMEOUT 300)
