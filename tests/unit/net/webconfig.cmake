# test_webconfig: the web config parser (--http.config), basic-auth checks
# (libcrypt's bcrypt, the success cache, the dummy hash for unknown users)
# and the HTTP client config parser; no socket.
orr_unit_test(test_webconfig SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_webconfig.c
  DEPS orr_net TIMEOUT 120)
