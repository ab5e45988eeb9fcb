# The gateway core against fake StoreAPI endpoints served by @grpc/grpc-js
# (an HA pair with a gap in one replica, and one that never answers Series):
# dedup through the gateway's own StoreAPI, partial response and its
# refusal, Info aggregation, labels, and a gateway stacked on a gateway.
add_executable(gw_xor_encode ${CMAKE_CURRENT_LIST_DIR}/gateway_core/xor_encode.c)
target_link_libraries(gw_xor_encode PRIVATE orr_tsdb)
# 77: @grpc/grpc-js is not installed.
orr_integration_test(gateway_core REQUIRES NODE TIMEOUT 180
  COMMAND ${NODE_BIN} ${CMAKE_CURRENT_LIST_DIR}/gateway_core/gateway_core_test.js
    $<TARGET_FILE:orrery> $<TARGET_FILE:gw_xor_encode> ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
    ${CMAKE_SOURCE_DIR}/tests/node
  LABELS sanitize)
