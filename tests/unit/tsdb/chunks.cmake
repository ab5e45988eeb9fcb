# XOR and aggregate chunks, chunk cutting, chunk segment files; checked
# against blocks that Prometheus's promtool writes.
orr_unit_test(test_chunks SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_chunks.c
  DEPS orr_tsdb orr_labels orr_base m REQUIRES PROMTOOL TIMEOUT 120)
target_compile_definitions(test_chunks PRIVATE PROMTOOL="${PROMTOOL_BIN}")
