# Store gateway work: index-headers, and what the store reads from the
# bucket by ranged reads (postings lists, series entries) and block markers.
orr_fuzz_target(fuzz_index_header SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_index_header.c
  DEPS orr_tsdb orr_labels orr_base)
target_include_directories(fuzz_index_header PRIVATE ${CMAKE_SOURCE_DIR}/lib/tsdb)
orr_fuzz_target(fuzz_bucket_marks SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_bucket_marks.c
  DEPS orr_bucket orr_tsdb orr_base)
