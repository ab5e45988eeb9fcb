# The PromQL engine: table-driven cases (Prometheus test-language style) and API checks.
orr_unit_test(test_promql_engine SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_engine.c
  ${CMAKE_CURRENT_LIST_DIR}/test_engine_cases.c DEPS orr_promql orr_labels orr_base m TIMEOUT 120)
