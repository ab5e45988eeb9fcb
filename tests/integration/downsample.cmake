# Downsampled answers (issues 11, 12): a 48h raw block downsampled to 5m by
# `orrery compact`, a later raw block beside it; through store + gateway,
# max_source_resolution=5m agrees with raw within the aggregate's meaning
# (*_over_time equal, rate/increase within 1%, no false counter reset),
# the raw block fills the 5m data's gap, auto / --query.auto-downsampling
# are step / 5, bad values a 400.
orr_integration_test(downsample_query REQUIRES PROMTOOL PYTHON3 TIMEOUT 180
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/downsample/downsample_test.py
    --orrery $<TARGET_FILE:orrery> --promtool ${PROMTOOL_BIN})
