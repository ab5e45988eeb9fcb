# Gateway end-to-end test: HA pairs of real Prometheus 2.42 with sidecars,
# gateways over them (one per region, all, stacked), checked against
# Prometheus itself: PromQL results with dedup, an outage of one replica,
# a black-holed endpoint, max-samples and peak RSS, Grafana's requests,
# gzip, and /federate scraped by a Prometheus (gateway/gateway_e2e.py).
orr_integration_test(gateway_e2e REQUIRES PROMETHEUS PROMTOOL PYTHON3
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/gateway/gateway_e2e.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
  LABELS sanitize)

# The gateway's in-process sources (issue 13): --endpoint.prometheus and
# --endpoint.federate beside a sidecar-backed HA pair, a PromQL
# differential subset through a plain Prometheus, federate staleness and
# max-series, and broken sources (gateway/sources_e2e.py).
orr_integration_test(gateway_sources REQUIRES PROMETHEUS PROMTOOL PYTHON3
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/gateway/sources_e2e.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
  LABELS sanitize TIMEOUT 240)
