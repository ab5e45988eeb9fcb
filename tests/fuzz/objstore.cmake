# lib/objstore: the YAML config parser and the S3 XML scanner.
if(TARGET orr_objstore)
  orr_fuzz_target(fuzz_objstore_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_objstore_config.c
    DEPS orr_objstore)
  orr_fuzz_target(fuzz_s3_xml SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_s3_xml.c DEPS orr_objstore)
endif()
