# test_http_client: the HTTP client against http_client_server.py (python3),
# which the test starts on a free loopback port and kills by PID; its TLS
# case makes a certificate with the openssl command.
orr_unit_test(test_http_client SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_http_client.c
  DEPS orr_net REQUIRES PYTHON3 OPENSSL TIMEOUT 300)
target_compile_definitions(test_http_client PRIVATE
  HTTP_CLIENT_SERVER_PY="${CMAKE_CURRENT_LIST_DIR}/http_client_server.py")
