# Blocks against the real Prometheus 2.42 and promtool: promtool-made blocks
# dumped and verified by orrery, blocks cut by a live Prometheus compared with
# its API, and orrery-written blocks read by promtool and Prometheus.
add_executable(block_write_fixture ${CMAKE_CURRENT_LIST_DIR}/tsdb/block_write_fixture.c)
target_link_libraries(block_write_fixture PRIVATE orr_tsdb orr_labels orr_base m)
find_program(PROMETHEUS_BIN prometheus)
find_program(PROMTOOL_BIN promtool)
find_program(PYTHON3_BIN python3)
if(PROMETHEUS_BIN AND PROMTOOL_BIN AND PYTHON3_BIN)
  foreach(part promtool_blocks live_prometheus orrery_blocks)
    add_test(NAME tsdb_block_${part}
      COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/tsdb/block_compat.py ${part}
        --orrery $<TARGET_FILE:orrery> --fixture $<TARGET_FILE:block_write_fixture>
        --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
    set_tests_properties(tsdb_block_${part} PROPERTIES LABELS integration TIMEOUT 400)
  endforeach()
endif()
