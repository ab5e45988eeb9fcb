# `orrery sidecar` beside a real Prometheus 2.42 (promtool-made blocks plus
# live self-scrapes), called by @grpc/grpc-js through lib/storeapi/proto:
# Info, Series, LabelNames, LabelValues, refusals to start, and the
# sidecar's peak RSS while streaming 200k series.
find_program(NODE_EXECUTABLE node)
find_program(PROMETHEUS_BIN prometheus)
find_program(PROMTOOL_BIN promtool)
if(NODE_EXECUTABLE AND PROMETHEUS_BIN AND PROMTOOL_BIN)
  foreach(mode functional refusals memory)
    add_test(NAME sidecar_${mode}
      COMMAND ${NODE_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/node/storeapi_sidecar.js ${mode}
        $<TARGET_FILE:orrery> ${PROMETHEUS_BIN} ${PROMTOOL_BIN} ${CMAKE_SOURCE_DIR}/lib/storeapi/proto)
    # 77: @grpc/grpc-js is not installed. A small ASan quarantine keeps the
    # peak-RSS bound meaningful under sanitizers.
    set_tests_properties(sidecar_${mode} PROPERTIES LABELS integration TIMEOUT 600
      SKIP_RETURN_CODE 77
      ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")
  endforeach()
endif()

# A bucket the sidecar cannot use stops it at start with one error line.
if(NODE_EXECUTABLE)
  add_test(NAME sidecar_bucket_refusals
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/sidecar/bucket_refusals.sh
      $<TARGET_FILE:orrery> ${CMAKE_SOURCE_DIR}/tests/node)
  set_tests_properties(sidecar_bucket_refusals PROPERTIES LABELS integration TIMEOUT 300)
endif()
