# TLS (tls.c) without sockets: contexts, handshakes, client auth, reload.
orr_unit_test(test_tls SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tls.c
  DEPS orr_net PkgConfig::OPENSSL REQUIRES OPENSSL TIMEOUT 60)
target_include_directories(test_tls PRIVATE ${CMAKE_SOURCE_DIR}/lib/net)
target_compile_definitions(test_tls PRIVATE
  MKCERTS="${CMAKE_SOURCE_DIR}/tests/integration/tls/mkcerts.sh")
