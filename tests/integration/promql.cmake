# PromQL differential test: every query of promql/queries.txt answered by
# `orrery tools query` and by a real Prometheus 2.42 over the same blocks (made by
# promtool, plus stale_fixture's block of stale-marked series) must agree
# (status, error, result type, series, timestamps, values).
add_executable(promql_stale_fixture ${CMAKE_CURRENT_LIST_DIR}/promql/stale_fixture.c)
target_link_libraries(promql_stale_fixture PRIVATE orr_tsdb orr_labels orr_base m)
find_program(PROMETHEUS_BIN prometheus)
find_program(PROMTOOL_BIN promtool)
find_program(PYTHON3_BIN python3)
if(PROMETHEUS_BIN AND PROMTOOL_BIN AND PYTHON3_BIN)
  add_test(NAME promql_diff
    COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/promql/promql_diff.py
      --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
      --queries ${CMAKE_CURRENT_LIST_DIR}/promql/queries.txt
      --stale-fixture $<TARGET_FILE:promql_stale_fixture>
      --functions ${PROJECT_SOURCE_DIR}/lib/promql/functions.c)
  set_tests_properties(promql_diff PROPERTIES LABELS integration TIMEOUT 300)
endif()
