# tsdb block work: a whole block (index + chunk segment) through verify and select.
orr_fuzz_target(fuzz_block_verify SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_block_verify.c
  DEPS orr_tsdb orr_labels orr_base)
