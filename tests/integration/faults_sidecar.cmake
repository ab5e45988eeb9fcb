# Fault suite (issue 10): hostile clients and signals against the sidecar
# and the daemon scaffold. Each test asserts what a user sees.

# SIGHUP reloads the gateway and the sidecar instead of killing them.
orr_integration_test(faults_daemon_sighup LABELS sanitize TIMEOUT 120
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/faults/daemon_sighup.sh $<TARGET_FILE:orrery>)

# A client that opens 100 Series streams and reads nothing (raw HTTP/2 from
# 127.0.0.2) beside a real Prometheus: a healthy query through a gateway keeps
# its time, the stalled streams are reset after the write timeout.
orr_integration_test(faults_sidecar_stall REQUIRES NODE PROMETHEUS PROMTOOL LABELS sanitize
  TIMEOUT 300
  COMMAND ${NODE_BIN} ${CMAKE_SOURCE_DIR}/tests/integration/faults/sidecar_stall.js
    $<TARGET_FILE:orrery> ${PROMETHEUS_BIN} ${PROMTOOL_BIN})
