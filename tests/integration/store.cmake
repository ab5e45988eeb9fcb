# `orrery store`: the PromQL differential suite answered through store +
# gateway over a FILESYSTEM bucket of promtool's blocks (same answers as
# Prometheus 2.42 over the same blocks).
orr_integration_test(store_promql_diff REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 600
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/promql/promql_diff.py --via-store
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
    --queries ${CMAKE_CURRENT_LIST_DIR}/promql/queries.txt
    --stale-fixture $<TARGET_FILE:promql_stale_fixture>)

# store_e2e.py: the whole timeline (gateway over a sidecar with the recent
# block plus a store with every block equals one Prometheus with all of
# them), serving (limits naming their flags, index cache hits per the
# metrics, corrupt index and chunk files), and S3 over s3rver (stopped
# mid-way: a warning naming the bucket; back: answers without a restart).
orr_integration_test(store_timeline REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_e2e.py timeline
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
orr_integration_test(store_serving REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 300 LABELS sanitize
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_e2e.py serving
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})
orr_integration_test(store_s3 REQUIRES NODE PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_e2e.py s3
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN}
    --node-dir ${CMAKE_SOURCE_DIR}/tests/node)

# @grpc/grpc-js reads the same series and chunks (byte for byte), label
# names and values from the store as from a sidecar over the same blocks;
# and the aggregate chunks of downsampled blocks by max_resolution_window.
orr_integration_test(store_grpc_js REQUIRES NODE PROMETHEUS PROMTOOL TIMEOUT 300
  COMMAND ${NODE_BIN} ${CMAKE_SOURCE_DIR}/tests/node/storeapi_store.js
    $<TARGET_FILE:orrery> ${PROMETHEUS_BIN} ${PROMTOOL_BIN} ${CMAKE_SOURCE_DIR}/lib/storeapi/proto
    $<TARGET_FILE:store_fixture>)

add_executable(store_fixture ${CMAKE_CURRENT_LIST_DIR}/store/store_fixture.c)
target_link_libraries(store_fixture PRIVATE orr_tsdb orr_labels orr_base)

# Memory: 100k series x 12 blocks from the tsdb writer (the 1M-series run is
# `store_memory.py ORRERY FIXTURE --series 1000000 --absolute --pool-mib 512`):
# RSS after sync under 3% of the index size (over an empty store's), a wide
# query refused by the series limit at once, 20 concurrent queries within
# --chunk-pool-size + 128 MiB.
orr_integration_test(store_memory REQUIRES PYTHON3 TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_memory.py
    $<TARGET_FILE:orrery> $<TARGET_FILE:store_fixture> --series 100000 --blocks 12)

# The index cache in a real memcached: a repeated query reads no postings or
# series from the bucket; memcached stopped: the same answer from the bucket.
orr_integration_test(store_memcached REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_e2e.py memcached
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})

# Label sharding: two stores with hashmod relabel configs serve disjoint
# block sets whose union is every block and answer (through a gateway) as one
# store; a keep on an external label serves only those blocks.
orr_integration_test(store_sharding REQUIRES PROMTOOL PYTHON3 TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_e2e.py sharding
    --orrery $<TARGET_FILE:orrery> --promtool ${PROMTOOL_BIN})

# Issue 11's first "Done when": blocks a live Prometheus 2.42 holds (the
# differential dataset, promtool-written into its data dir, and a 2h block
# Prometheus cuts from its head after a remote write) shipped by `orrery
# sidecar` to a FILESYSTEM bucket (byte-identical), then `orrery store` alone
# behind `orrery gateway` answers queries.txt and queries over the cut block
# as that Prometheus does (about 15 s).
orr_integration_test(store_live_prometheus REQUIRES PROMETHEUS PROMTOOL PYTHON3 TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_live_prometheus.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --promtool ${PROMTOOL_BIN})

# Series order with external labels (store/query.c note 2): prefix series
# flipped by an external label, a run of them across read batches, and a
# block whose series carry its external label's name (read whole, sorted).
orr_integration_test(store_ordering REQUIRES PROMTOOL PYTHON3 TIMEOUT 300 LABELS sanitize
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/store/store_e2e.py ordering
    --orrery $<TARGET_FILE:orrery> --promtool ${PROMTOOL_BIN})
