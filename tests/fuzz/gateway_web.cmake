# web: the web UI's outside inputs (Accept-Encoding, --web.*-prefix).
if(TARGET orr_web)
  orr_fuzz_target(fuzz_web_headers
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_web_headers.c DEPS orr_web)
endif()
