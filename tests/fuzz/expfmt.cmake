# lib/expfmt: the text exposition format parser (what --endpoint.federate
# scrapes).
if(TARGET orr_expfmt)
  orr_fuzz_target(fuzz_expfmt_parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_expfmt_parse.c
    DEPS orr_expfmt orr_labels orr_base)
endif()
