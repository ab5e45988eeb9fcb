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

# RSS per open gRPC connection and after 2,000 close (a gateway's gRPC server,
# the one every daemon uses). Not under sanitizers: ASan's redzones and
# quarantine make RSS a measure of ASan.
orr_integration_test(faults_daemon_conn_memory REQUIRES NODE TIMEOUT 180
  COMMAND ${NODE_BIN} ${CMAKE_SOURCE_DIR}/tests/integration/faults/daemon_conn_memory.js
    $<TARGET_FILE:orrery> 2000)
