# bench_select: block writer, selection with sample decoding, verification.
add_executable(bench_select ${CMAKE_CURRENT_LIST_DIR}/bench_select.c)
target_link_libraries(bench_select PRIVATE orr_tsdb orr_labels orr_base m)
