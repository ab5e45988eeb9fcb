# Index-header (Thanos binary format v1): built with ranged reads, read back.
orr_unit_test(test_index_header SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_index_header.c
  DEPS orr_tsdb orr_labels orr_base TIMEOUT 120)
