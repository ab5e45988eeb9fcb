# gRPC: the message deframer and header values; an HTTP/2 server session fed
# arbitrary client bytes in memory (no sockets), and our client fed arbitrary
# server bytes.
orr_fuzz_target(fuzz_grpc_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc_frame.c DEPS orr_net)
orr_fuzz_target(fuzz_h2_server SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc_h2_server.c DEPS orr_net)
orr_fuzz_target(fuzz_h2_client SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc_h2_client.c DEPS orr_net)
