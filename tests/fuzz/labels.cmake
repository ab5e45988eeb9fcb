# lib/labels: the relabel_configs YAML parser and its evaluator.
if(TARGET orr_labels)
  orr_fuzz_target(fuzz_relabel SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_relabel.c DEPS orr_labels orr_base)
endif()
