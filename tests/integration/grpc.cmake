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

# 77: @grpc/grpc-js is not installed (scripts/bootstrap.sh installs it).
# ASan keeps freed memory in a quarantine (256 MB by default), which would
# show up in the server's peak RSS; a small one keeps the bound meaningful.
set(node_dir ${CMAKE_SOURCE_DIR}/tests/node)
set(proto ${CMAKE_SOURCE_DIR}/tests/proto/orrery_test.proto)
orr_integration_test(grpc_interop_node_client REQUIRES NODE
  COMMAND ${NODE_BIN} ${node_dir}/grpc_node_client.js $<TARGET_FILE:grpc_test_server> ${proto}
  ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")
orr_integration_test(grpc_interop_node_server REQUIRES NODE
  COMMAND ${NODE_BIN} ${node_dir}/grpc_node_server.js $<TARGET_FILE:grpc_test_client> ${proto}
  ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")

# StoreAPI over TLS and mTLS with @grpc/grpc-js both ways (certificates made
# by openssl in the test), refusals logged once with the peer, per-endpoint
# TLS in the gateway, a certificate swapped on disk, HTTPS via curl.
orr_integration_test(tls_grpc_js REQUIRES NODE OPENSSL CURL TIMEOUT 240
  COMMAND ${NODE_BIN} ${CMAKE_SOURCE_DIR}/tests/node/storeapi_tls.js
    $<TARGET_FILE:orrery> $<TARGET_FILE:store_fixture> $<TARGET_FILE:http_echo_server>
    ${CMAKE_SOURCE_DIR}/tests/integration/tls/mkcerts.sh ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
    ${CURL_BIN}
  LABELS sanitize
  ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")
