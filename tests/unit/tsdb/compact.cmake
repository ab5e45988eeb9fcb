# Streaming compaction of N blocks (lib/tsdb/compact.c).
orr_unit_test(test_tsdb_compact SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_compact.c
  DEPS orr_tsdb orr_labels orr_base TIMEOUT 120)
