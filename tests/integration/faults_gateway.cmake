# Gateway fault suite (issue 10): what a user sees when a peer misbehaves.
#  gateway_fault_ha_freeze: an HA pair of real Prometheus with sidecars, one
#    frozen (SIGSTOP): queries answer within seconds, a warning (or, without
#    partial response, an error) naming the frozen endpoint.
#  gateway_fault_bad_peers: hostile grpc-js StoreAPI peers (faults/gateway_peer.js):
#    endless series, endless chunks, corrupt chunks, invalid labels, NUL
#    bytes, non-matching series, timestamps going backwards, an HTTP 500
#    server, a gateway among its own endpoints — a warning naming the peer,
#    RSS flat.
#  gateway_fault_many_match: 50,000 match[] selectors to /api/v1/series and
#    /federate — one fan-out, peak RSS bounded, memory given back.
# Under sanitizers RSS carries shadow memory and the sanitizer's allocator
# keeps freed memory (malloc_trim does not reach it): RSS is only logged
# there, and the stage checks errors and leaks (a daemon exiting non-zero).
if(ORRERY_SANITIZE)
  set(gw_fault_rss_mb 0)
else()
  set(gw_fault_rss_mb 100)
endif()
orr_integration_test(gateway_fault_ha_freeze REQUIRES PROMETHEUS PYTHON3 LABELS sanitize TIMEOUT 180
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/faults/gateway_ha_freeze.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN})
orr_integration_test(gateway_fault_bad_peers REQUIRES NODE PYTHON3 LABELS sanitize TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/faults/gateway_bad_peers.py
    --orrery $<TARGET_FILE:orrery> --node ${NODE_BIN} --proto ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
    --node-dir ${CMAKE_SOURCE_DIR}/tests/node --rss-mb ${gw_fault_rss_mb}
  ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")
orr_integration_test(gateway_fault_many_match REQUIRES NODE PYTHON3 LABELS sanitize TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/faults/gateway_many_match.py
    --orrery $<TARGET_FILE:orrery> --node ${NODE_BIN} --proto ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
    --node-dir ${CMAKE_SOURCE_DIR}/tests/node --rss-mb ${gw_fault_rss_mb}
  ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::quarantine_size_mb=8")
