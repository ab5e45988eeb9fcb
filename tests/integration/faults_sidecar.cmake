# Fault suite (issue 10): hostile clients and signals against the sidecar
# and the daemon scaffold. Each test asserts what a user sees.

# SIGHUP reloads the gateway and the sidecar instead of killing them.
orr_integration_test(faults_daemon_sighup LABELS sanitize TIMEOUT 120
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/faults/daemon_sighup.sh $<TARGET_FILE:orrery>)
