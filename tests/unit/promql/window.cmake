# The engine's sliding windows and parallel range functions against naive
# evaluations (instant queries per step, one thread), bit for bit.
orr_unit_test(test_promql_window SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_window.c
  DEPS orr_promql orr_labels orr_base m TIMEOUT 300)
