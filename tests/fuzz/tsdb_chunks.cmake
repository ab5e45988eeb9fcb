# tsdb chunks work: XOR chunk bytes, aggregate chunks, chunk segment files.
orr_fuzz_target(fuzz_xor SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_xor.c
  DEPS orr_tsdb orr_labels orr_base)
orr_fuzz_target(fuzz_aggr_chunk SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_aggr_chunk.c
  DEPS orr_tsdb orr_labels orr_base)
orr_fuzz_target(fuzz_chunk_segment SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_chunk_segment.c
  DEPS orr_tsdb orr_labels orr_base)
