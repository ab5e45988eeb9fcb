# gRPC interop with @grpc/grpc-js (tests/node): grpc-js client against our
# server, our client against a grpc-js server, over tests/proto/orrery_test.proto.
orr_protoc_c(grpc_test_pb ${CMAKE_SOURCE_DIR}/tests/proto/orrery_test.proto)
add_library(orr_grpc_test_pb STATIC ${grpc_test_pb})
target_include_directories(orr_grpc_test_pb PUBLIC ${CMAKE_CURRENT_BINARY_DIR})
target_link_libraries(orr_grpc_test_pb PUBLIC PkgConfig::PROTOBUFC)

add_executable(grpc_test_server ${CMAKE_CURRENT_LIST_DIR}/grpc/grpc_test_server.c)
target_link_libraries(grpc_test_server PRIVATE orr_net orr_grpc_test_pb)
add_executable(grpc_test_client ${CMAKE_CURRENT_LIST_DIR}/grpc/grpc_test_client.c)
target_link_libraries(grpc_test_client PRIVATE orr_net orr_grpc_test_pb)

find_program(NODE_EXECUTABLE node)
if(NODE_EXECUTABLE)
  set(node_dir ${CMAKE_SOURCE_DIR}/tests/node)
  set(proto ${CMAKE_SOURCE_DIR}/tests/proto/orrery_test.proto)
  add_test(NAME grpc_interop_node_client
    COMMAND ${NODE_EXECUTABLE} ${node_dir}/grpc_node_client.js $<TARGET_FILE:grpc_test_server> ${proto})
  add_test(NAME grpc_interop_node_server
    COMMAND ${NODE_EXECUTABLE} ${node_dir}/grpc_node_server.js $<TARGET_FILE:grpc_test_client> ${proto})
  # 77: @grpc/grpc-js is not installed (scripts/bootstrap.sh installs it).
  # ASan keeps freed memory in a quarantine (256 MB by default), which would
  # show up in the server's peak RSS; a small one keeps the bound meaningful.
  set_tests_properties(grpc_interop_node_client grpc_interop_node_server PROPERTIES
    LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77
    ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")
endif()
