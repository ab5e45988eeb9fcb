# bench_xor: XOR chunk encode/decode speed and size on realistic series.
add_executable(bench_xor ${CMAKE_CURRENT_LIST_DIR}/bench_xor.c)
target_link_libraries(bench_xor PRIVATE orr_tsdb orr_labels orr_base m)
