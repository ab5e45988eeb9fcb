# Index v2 reader/writer, postings, selection, meta.json, tombstones.
orr_unit_test(test_index SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_index.c
  DEPS orr_tsdb orr_labels orr_base REQUIRES PROMTOOL TIMEOUT 300)
target_compile_definitions(test_index PRIVATE PROMTOOL="${PROMTOOL_BIN}")
