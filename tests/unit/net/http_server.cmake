# The HTTP/1.1 server, its parser and the router, against raw client sockets.
orr_unit_test(test_http_server SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_http_server.c
  DEPS orr_net TIMEOUT 120)
