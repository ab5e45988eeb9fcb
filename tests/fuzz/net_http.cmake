# The HTTP/1.1 request parser and router (lib/net/http_parse.c, http_router.c).
orr_fuzz_target(fuzz_http_request SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_http_request.c
  DEPS orr_net)
# multipart/form-data request bodies (lib/net/http_multipart.c).
orr_fuzz_target(fuzz_http_multipart SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_http_multipart.c
  DEPS orr_net)
