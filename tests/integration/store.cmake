# `orrery store`: the PromQL differential suite answered through store +
# gateway over a FILESYSTEM bucket of promtool's blocks (same answers as
# Prometheus 2.42 over the same blocks).
orr_integration_test(store_promql_diff REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 600
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/promql/promql_diff.py --via-store
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
    --queries ${CMAKE_CURRENT_LIST_DIR}/promql/queries.txt
    --stale-fixture $<TARGET_FILE:promql_stale_fixture>)
