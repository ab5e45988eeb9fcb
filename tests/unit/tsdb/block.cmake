# Block reader, writer and verification.
orr_unit_test(test_block SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_block.c
  DEPS orr_tsdb orr_labels orr_base m TIMEOUT 300)
