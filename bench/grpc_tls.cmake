# bench_grpc_series: Series streams with our gRPC client, plaintext or TLS
# (bench/tls_vs_plaintext.sh drives it).
add_executable(bench_grpc_series ${CMAKE_CURRENT_LIST_DIR}/bench_grpc_series.c)
target_link_libraries(bench_grpc_series PRIVATE orr_storeapi orr_net orr_base)
