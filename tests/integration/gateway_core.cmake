# The gateway core against fake StoreAPI endpoints served by @grpc/grpc-js
# (an HA pair with a gap in one replica, and one that never answers Series):
# dedup through the gateway's own StoreAPI, partial response and its
# refusal, Info aggregation, labels, and a gateway stacked on a gateway.
add_executable(gw_xor_encode ${CMAKE_CURRENT_LIST_DIR}/gateway_core/xor_encode.c)
target_link_libraries(gw_xor_encode PRIVATE orr_tsdb)
find_program(NODE_EXECUTABLE node)
if(NODE_EXECUTABLE)
  add_test(NAME gateway_core
    COMMAND ${NODE_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/gateway_core/gateway_core_test.js
      $<TARGET_FILE:orrery> $<TARGET_FILE:gw_xor_encode> ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
      ${CMAKE_SOURCE_DIR}/tests/node)
  # 77: @grpc/grpc-js is not installed.
  set_tests_properties(gateway_core PROPERTIES LABELS integration TIMEOUT 180
    SKIP_RETURN_CODE 77)
endif()
