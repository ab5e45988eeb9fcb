# The web config (--http.config), the HTTP client config YAML and Basic
# Authorization headers (lib/net/webconfig.c, http_client_config.c).
orr_fuzz_target(fuzz_net_webconfig SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_net_webconfig.c
  DEPS orr_net)
