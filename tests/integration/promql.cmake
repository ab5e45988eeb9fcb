# PromQL differential test: every query of promql/queries.txt answered by
# `orrery tools query` and by a real Prometheus 2.42 over the same blocks (made by
# promtool, plus stale_fixture's block of stale-marked series) must agree
# (status, error, result type, series, timestamps, values).
add_executable(promql_stale_fixture ${CMAKE_CURRENT_LIST_DIR}/promql/stale_fixture.c)
target_link_libraries(promql_stale_fixture PRIVATE orr_tsdb orr_labels orr_base m)
orr_integration_test(promql_diff REQUIRES PROMETHEUS PROMTOOL PYTHON3
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/promql/promql_diff.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
    --queries ${CMAKE_CURRENT_LIST_DIR}/promql/queries.txt
    --stale-fixture $<TARGET_FILE:promql_stale_fixture>
    --functions ${PROJECT_SOURCE_DIR}/lib/promql/functions.c)
