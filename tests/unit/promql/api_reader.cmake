orr_unit_test(test_promql_api_reader SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_api_reader.c
  DEPS orr_promql orr_labels orr_base TIMEOUT 60)
