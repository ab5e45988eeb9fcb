# `orrery sidecar` beside a real Prometheus 2.42 (promtool-made blocks plus
# live self-scrapes), called by @grpc/grpc-js through lib/storeapi/proto:
# Info, Series, LabelNames, LabelValues, refusals to start, and the
# sidecar's peak RSS while streaming 200k series.
# 77: @grpc/grpc-js is not installed. A small ASan quarantine keeps the
# peak-RSS bound meaningful under sanitizers.
# functional and refusals also run sanitized (label sanitize); memory streams
# 200k series three times, which under ASan takes longer than its 600 s.
foreach(mode functional refusals memory)
  set(labels sanitize)
  if(mode STREQUAL memory)
    set(labels)
  endif()
  orr_integration_test(sidecar_${mode} REQUIRES NODE PROMETHEUS PROMTOOL TIMEOUT 600
    COMMAND ${NODE_BIN} ${CMAKE_SOURCE_DIR}/tests/node/storeapi_sidecar.js ${mode}
      $<TARGET_FILE:orrery> ${PROMETHEUS_BIN} ${PROMTOOL_BIN} ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
    ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8"
    LABELS ${labels})
endforeach()

# A bucket the sidecar cannot use stops it at start with one error line.
orr_integration_test(sidecar_bucket_refusals REQUIRES NODE
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/sidecar/bucket_refusals.sh
    $<TARGET_FILE:orrery> ${CMAKE_SOURCE_DIR}/tests/node
  LABELS sanitize)

# The sidecar reads Prometheus's persisted blocks itself (--tsdb.read-blocks):
# gateway answers equal Prometheus's inside the blocks, inside the head and
# across both; a compacted block beside its parent, then without it; the
# flag off; out-of-order ingestion falls back to remote read
# (sidecar/read_blocks.py; about 30 s).
orr_integration_test(sidecar_read_blocks REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 240
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/sidecar/read_blocks.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
  LABELS sanitize)
