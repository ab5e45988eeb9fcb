# Gateway fault suite (issue 10): what a user sees when a peer misbehaves.
# gateway_ha_freeze: an HA pair of real Prometheus with sidecars, one frozen
# (SIGSTOP): queries answer within seconds with a warning naming it.
orr_integration_test(gateway_fault_ha_freeze REQUIRES PROMETHEUS PYTHON3 LABELS sanitize TIMEOUT 120
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/faults/gateway_ha_freeze.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN})
