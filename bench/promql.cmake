# bench_promql: a 100k-series block and PromQL query classes timed through the engine
# (bench_promql.sh compares with Prometheus 2.42 on the same block).
add_executable(bench_promql ${CMAKE_CURRENT_LIST_DIR}/bench_promql.c)
target_link_libraries(bench_promql PRIVATE orr_promql orr_tsdb orr_labels orr_base m)
