# The compactor against real tools: equality with Prometheus 2.42's own
# compaction (promtool tsdb dump), a bucket of several groups (overlap halts
# only its group, HA replicas, marks, deletion, inspect), kill -9 safety.
orr_integration_test(compact_prometheus REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 400
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/compact/compact_test.py prometheus
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
orr_integration_test(compact_bucket REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 300
  LABELS sanitize
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/compact/compact_test.py bucket
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
orr_integration_test(compact_crash REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/compact/compact_test.py crash
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
# The same over S3: s3rver killed for 15 s in the middle of the compacted
# block's upload, the compactor (--wait) retrying until it returns.
orr_integration_test(compact_crash_s3 REQUIRES PROMETHEUS PROMTOOL PYTHON3 NODE TIMEOUT 200
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/compact/compact_test.py crash_s3
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
    --node ${NODE_BIN} --node-dir ${CMAKE_SOURCE_DIR}/tests/node)
# Issue 12 "HA pairs become one": two replicas (one with a 10-minute gap,
# counters included) compacted with --deduplication.func=penalty answer ~30
# PromQL queries through gateway -> store exactly as the gateway's
# deduplicated view of the two replica blocks; no false counter reset.
orr_integration_test(compact_ha_dedup REQUIRES PROMTOOL PYTHON3 TIMEOUT 120
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/compact/ha_dedup.py
    --orrery $<TARGET_FILE:orrery> --promtool ${PROMTOOL_BIN})
