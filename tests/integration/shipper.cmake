# The sidecar's shipper against real processes: Prometheus 2.42, orrery
# sidecar, a FILESYSTEM bucket and s3rver (npm); kill -9 in mid-upload, an
# S3 outage of a minute, and the peak RSS while uploading a ~1 GB block.
# All but rss also run sanitized (label sanitize): a peak-RSS bound means
# nothing under ASan's shadow memory and quarantine.
add_executable(shipper_gen_block ${CMAKE_CURRENT_LIST_DIR}/shipper/gen_block.c)
target_link_libraries(shipper_gen_block PRIVATE orr_tsdb orr_labels orr_base)
foreach(part live_fs s3_outage crash rss)
  set(labels sanitize)
  if(part STREQUAL rss)
    set(labels)
  endif()
  orr_integration_test(shipper_${part} REQUIRES PROMETHEUS PROMTOOL PYTHON3 NODE TIMEOUT 400
    LABELS ${labels}
    COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/shipper/shipper_test.py ${part}
      --orrery $<TARGET_FILE:orrery> --gen $<TARGET_FILE:shipper_gen_block>
      --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN} --node ${NODE_BIN}
      --node-dir ${CMAKE_SOURCE_DIR}/tests/node)
endforeach()
