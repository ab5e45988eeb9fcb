# Blocks against the real Prometheus 2.42 and promtool: promtool-made blocks
# dumped and verified by orrery, blocks cut by a live Prometheus compared with
# its API, and orrery-written blocks read by promtool and Prometheus.
add_executable(block_write_fixture ${CMAKE_CURRENT_LIST_DIR}/tsdb/block_write_fixture.c)
target_link_libraries(block_write_fixture PRIVATE orr_tsdb orr_labels orr_base m)
foreach(part promtool_blocks live_prometheus orrery_blocks)
  orr_integration_test(tsdb_block_${part} REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 400
    COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/tsdb/block_compat.py ${part}
      --orrery $<TARGET_FILE:orrery> --fixture $<TARGET_FILE:block_write_fixture>
      --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
endforeach()
# tools query opens a block when a query first needs its time range: a
# corrupt older block fails only the queries that read it.
orr_integration_test(tools_query_blocks REQUIRES PYTHON3 TIMEOUT 120
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/tsdb/tools_query_blocks.py
    --orrery $<TARGET_FILE:orrery> --fixture $<TARGET_FILE:block_write_fixture>)
