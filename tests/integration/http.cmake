# HTTP/1.1 server under load (wrk -c1000), slowloris, big streams and the
# daemon scaffold (/metrics, /-/healthy, /-/ready, SIGTERM), against
# tests/integration/http/http_echo_server.
add_executable(http_echo_server ${CMAKE_CURRENT_LIST_DIR}/http/http_echo_server.c)
target_link_libraries(http_echo_server PRIVATE orr_daemon)
orr_integration_test(http_load REQUIRES WRK PYTHON3
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/http/http_load.sh $<TARGET_FILE:http_echo_server>)
