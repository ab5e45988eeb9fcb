# Gateway end-to-end test: HA pairs of real Prometheus 2.42 with sidecars,
# gateways over them (one per region, all, stacked), checked against
# Prometheus itself: PromQL results with dedup, an outage of one replica,
# a black-holed endpoint, max-samples and peak RSS, Grafana's requests,
# gzip, and /federate scraped by a Prometheus (gateway/gateway_e2e.py).
find_program(PROMETHEUS_BIN prometheus)
find_program(PROMTOOL_BIN promtool)
find_program(PYTHON3_BIN python3)
if(PROMETHEUS_BIN AND PROMTOOL_BIN AND PYTHON3_BIN)
  add_test(NAME gateway_e2e
    COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/gateway/gateway_e2e.py
      --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
  set_tests_properties(gateway_e2e PROPERTIES LABELS integration TIMEOUT 300)
endif()
