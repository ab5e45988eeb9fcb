# StoreAPI: the remote-read chunked frame reader (with ChunkedReadResponse
# decoding and conversion) over arbitrary bytes, and StoreAPI request
# decoding with matcher conversion.
orr_fuzz_target(fuzz_remote_read_frames
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_remote_read_frames.c DEPS orr_storeapi)
orr_fuzz_target(fuzz_storeapi_request
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_storeapi_request.c DEPS orr_storeapi)
# The sidecar's streaming reader of /api/v1/series answers (sidecar/prom.c).
orr_fuzz_target(fuzz_sidecar_series_json
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_sidecar_series_json.c DEPS orr_sidecar)
# The Query API's requests (as the gateway's thanos.Query server unpacks
# them) and responses (as a gateway in distributed mode reads them).
orr_fuzz_target(fuzz_query_api
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_query_api.c DEPS orr_storeapi)
# SeriesResponse messages unpacked into a client call's counted blocks
# (msgalloc.c), parts taken and freed as the gateway does.
orr_fuzz_target(fuzz_storeapi_series_response
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_storeapi_series_response.c DEPS orr_storeapi)
# The fast SeriesResponse decoder (fastdec.c) differentially against
# protobuf-c's unpack: it declines, or both give the same message.
orr_fuzz_target(fuzz_storeapi_fastdec
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_storeapi_fastdec.c DEPS orr_storeapi)
target_include_directories(fuzz_storeapi_fastdec PRIVATE ${CMAKE_SOURCE_DIR}/tests/common)
