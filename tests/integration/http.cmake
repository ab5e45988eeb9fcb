# HTTP/1.1 server under load (wrk -c1000), slowloris, big streams and the
# daemon scaffold (/metrics, /-/healthy, /-/ready, SIGTERM), against
# tests/integration/http/http_echo_server.
add_executable(http_echo_server ${CMAKE_CURRENT_LIST_DIR}/http/http_echo_server.c)
target_link_libraries(http_echo_server PRIVATE orr_daemon)
add_test(NAME http_load
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/http/http_load.sh $<TARGET_FILE:http_echo_server>)
# 77: wrk or python3 missing.
set_tests_properties(http_load PROPERTIES LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77)
