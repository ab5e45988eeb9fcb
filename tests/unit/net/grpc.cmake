# gRPC: framing without I/O, and our client against our server in one process.
orr_unit_test(test_grpc_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_grpc_frame.c
  DEPS orr_net TIMEOUT 60)
orr_unit_test(test_grpc_loop SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_grpc_loop.c
  DEPS orr_net TIMEOUT 120)
orr_unit_test(test_grpc_h2 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_grpc_h2.c
  DEPS orr_net TIMEOUT 60)
