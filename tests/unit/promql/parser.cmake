orr_unit_test(test_promql_parser SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_parser.c
  DEPS orr_promql orr_labels orr_base TIMEOUT 120)
