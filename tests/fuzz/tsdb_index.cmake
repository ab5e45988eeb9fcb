# tsdb index work: index v2 files, meta.json, tombstones.
orr_fuzz_target(fuzz_index SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_index.c
  DEPS orr_tsdb orr_labels orr_base)
orr_fuzz_target(fuzz_meta SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_meta.c
  DEPS orr_tsdb orr_labels orr_base)
orr_fuzz_target(fuzz_tombstones SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_tombstones.c
  DEPS orr_tsdb orr_labels orr_base)
