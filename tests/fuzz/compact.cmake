# The compactor's blocks page: what it reads of each block from the bucket.
orr_fuzz_target(fuzz_compact_web_entry SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_compact_web_entry.c
  DEPS orr_compact PkgConfig::JANSSON)
target_include_directories(fuzz_compact_web_entry PRIVATE ${CMAKE_SOURCE_DIR}/compact)
