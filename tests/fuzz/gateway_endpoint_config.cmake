# gateway: the endpoint config file (--endpoint.sd-config).
if(TARGET orr_gateway)
  orr_fuzz_target(fuzz_endpoint_config
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_endpoint_config.c DEPS orr_gateway)
endif()
