# bench_index: writes a 1M-series index and times matcher selections.
add_executable(bench_index ${CMAKE_CURRENT_LIST_DIR}/bench_index.c)
target_link_libraries(bench_index PRIVATE orr_tsdb orr_labels orr_base)
