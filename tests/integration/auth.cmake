# HTTP authentication and secrets end to end (issue 14): curl against the
# gateway's API with --http.config (basic auth, headers, SIGHUP), sidecars
# reaching a Prometheus 2.42 protected by basic auth (password file) and by
# a bearer token (file), the bucket over HTTPS (s3rver, tls_config with CA
# and server_name, this run's keys), Prometheus scraping /federate with
# basic_auth, and a grep of every log and status endpoint for the secrets.
orr_integration_test(auth_e2e REQUIRES PROMETHEUS PYTHON3 NODE CURL OPENSSL TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/auth/auth_e2e.py
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --curl ${CURL_BIN}
    --openssl ${OPENSSL_BIN} --node ${NODE_BIN} --node-dir ${CMAKE_SOURCE_DIR}/tests/node
  LABELS sanitize)
