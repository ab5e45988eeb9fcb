# The gateway's web UI in headless chromium (puppeteer-core from
# web/node_modules) over an HA pair of Prometheus 2.42 with sidecars and a
# gateway (web/web_ui.py, web/web_ui.js). Screenshots of each page go to
# <build>/tests/integration/web_ui_artifacts/.
orr_integration_test(web_ui REQUIRES PROMETHEUS PYTHON3 NODE CHROMIUM
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/web/web_ui.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --node ${NODE_BIN}
    --chromium ${CHROMIUM_BIN} --web-modules ${CMAKE_SOURCE_DIR}/web/node_modules
    --artifacts ${CMAKE_CURRENT_BINARY_DIR}/web_ui_artifacts
  TIMEOUT 240)
# The blocks page in headless chromium, served by `orrery tools bucket web`
# and, behind --web.route-prefix, by `orrery compact --wait`, over a
# FILESYSTEM bucket of promtool blocks in three label sets (overlaps, marks,
# a downsampled block; web/web_blocks.py, web/web_blocks.js). Screenshots go
# to <build>/tests/integration/web_blocks_artifacts/. In the asan stage too:
# the page's reader threads run in both daemons, stopped by SIGTERM.
orr_integration_test(web_blocks REQUIRES PROMTOOL PYTHON3 NODE CHROMIUM
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/web/web_blocks.py
    --orrery $<TARGET_FILE:orrery> --promtool ${PROMTOOL_BIN} --node ${NODE_BIN}
    --chromium ${CHROMIUM_BIN} --web-modules ${CMAKE_SOURCE_DIR}/web/node_modules
    --artifacts ${CMAKE_CURRENT_BINARY_DIR}/web_blocks_artifacts
  LABELS sanitize TIMEOUT 240)
