# `orrery sidecar` beside a real Prometheus 2.42 (promtool-made blocks plus
# live self-scrapes), called by @grpc/grpc-js through lib/storeapi/proto:
# Info, Series, LabelNames, LabelValues, refusals to start, and the
# sidecar's peak RSS while streaming 200k series.
# 77: @grpc/grpc-js is not installed. A small ASan quarantine keeps the
# peak-RSS bound meaningful under sanitizers.
foreach(mode functional refusals memory)
  orr_integration_test(sidecar_${mode} REQUIRES NODE PROMETHEUS PROMTOOL TIMEOUT 600
    COMMAND ${NODE_BIN} ${CMAKE_SOURCE_DIR}/tests/node/storeapi_sidecar.js ${mode}
      $<TARGET_FILE:orrery> ${PROMETHEUS_BIN} ${PROMTOOL_BIN} ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
    ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")
endforeach()

# A bucket the sidecar cannot use stops it at start with one error line.
orr_integration_test(sidecar_bucket_refusals REQUIRES NODE
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/sidecar/bucket_refusals.sh
    $<TARGET_FILE:orrery> ${CMAKE_SOURCE_DIR}/tests/node)
