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

# Stacked gateways (issue 16): a global gateway over two regional ones, each
# over a sidecar and Prometheus, in --query.mode=local and distributed:
# aggregations pushed down through gRPC thanos.Query answer as local mode and
# as a Prometheus over all data, with far fewer bytes from the regions
# (gateway/stacked_pushdown.py; about 20 s).
orr_integration_test(gateway_stacked_pushdown REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 180
  LABELS sanitize
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/gateway/stacked_pushdown.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})

# The gateway's Query API (gRPC thanos.Query, gateway/queryapi.c) called by
# @grpc/grpc-js: Info advertises it, Query and QueryRange answer what the
# HTTP API answers, refusals (tests/node/query_api.js; about 10 s).
orr_integration_test(gateway_query_api REQUIRES NODE PROMETHEUS PROMTOOL TIMEOUT 120
  LABELS sanitize
  COMMAND ${NODE_BIN} ${CMAKE_SOURCE_DIR}/tests/node/query_api.js
    $<TARGET_FILE:orrery> ${PROMETHEUS_BIN} ${PROMTOOL_BIN} ${CMAKE_SOURCE_DIR}/lib/storeapi/proto)
