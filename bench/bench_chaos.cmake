# bench_chaos (build/bench_chaos): fakes3's fault injection, its latency accuracy (p50/p99 under
# --latency 40ms, the wall time of 16 concurrent delayed requests) and what 100 rules that never
# fire cost in throughput. Starts build/fakes3 itself; a libcurl multi client. Run it by hand (see
# docs/benchmarks.md and docs/fakes3.md, "Faults"). CTest runs only --smoke: a second or two, so
# that the code keeps working; no test looks at timings.
add_executable(bench_chaos ${CMAKE_CURRENT_LIST_DIR}/bench_chaos.c)
target_link_libraries(bench_chaos PRIVATE chaos lvcore PkgConfig::CURL)
add_dependencies(bench_chaos fakes3)

add_test(NAME bench_chaos_smoke COMMAND bench_chaos --smoke)
set_tests_properties(bench_chaos_smoke PROPERTIES LABELS bench TIMEOUT 120)
