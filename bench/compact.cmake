# bench_compact_gen: blocks for bench/compact_vs_prometheus.sh.
add_executable(bench_compact_gen ${CMAKE_CURRENT_LIST_DIR}/compact_gen.c)
target_link_libraries(bench_compact_gen PRIVATE orr_tsdb orr_labels orr_base)
