# --endpoint.promql (gateway/src_promql.c): a source reached only through the
# Prometheus HTTP query API, run in the gateway.
# The PromQL differential suite through a gateway whose only endpoint is the
# very Prometheus 2.42 that is the oracle, read through its query API (same
# answers; stale-marker queries left out: the API does not show them).
orr_integration_test(promql_src_diff REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 600
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/promql/promql_diff.py --via-promql
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
    --queries ${CMAKE_CURRENT_LIST_DIR}/promql/queries.txt
    --stale-fixture $<TARGET_FILE:promql_stale_fixture>)
# Sources answering a JSON error, HTML, garbage, a cut body, or nothing: a
# warning naming each, the good source's answer all the same (about 10 s).
orr_integration_test(promql_src_bad_sources REQUIRES PYTHON3 TIMEOUT 120 LABELS sanitize
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/promql_src/bad_sources.py
    --orrery $<TARGET_FILE:orrery>)
# Aggregations pushed down to query-API sources: the same answers as
# Prometheus and the raw plan, and the bytes each moves (about 15 s).
orr_integration_test(promql_src_pushdown REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 180
  LABELS sanitize
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/promql_src/pushdown.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
