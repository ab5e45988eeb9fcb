# bench_fanout_fake_stores: N one-series StoreAPI endpoints in one process
# (bench/fanout_width.sh drives it against the gateway).
add_executable(bench_fanout_fake_stores ${CMAKE_CURRENT_LIST_DIR}/fanout_fake_stores.c)
target_link_libraries(bench_fanout_fake_stores PRIVATE orr_storeapi orr_tsdb orr_net orr_labels orr_base)
