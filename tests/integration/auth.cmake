# HTTP authentication and secrets end to end (issue 14), two parts:
#  auth_secrets  curl against the gateway's API with --http.config (basic
#    auth, headers, SIGHUP), sidecars reaching a Prometheus 2.42 protected by
#    basic auth (password file) and by a bearer token (file), the bucket over
#    HTTPS (s3rver with CA, server_name and this run's keys), Prometheus
#    scraping /federate with basic_auth, and a grep of every log and status
#    endpoint for the secrets.
#  auth_tls  the gateway's API over HTTPS with RequireAndVerifyClientCert and
#    basic auth (certificates made by openssl): curl refused without a
#    client certificate or with one from another CA; a Prometheus 2.42
#    scrapes /federate over TLS with tls_config and basic_auth.
orr_integration_test(auth_secrets REQUIRES PROMETHEUS PYTHON3 NODE CURL OPENSSL TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/auth/auth_e2e.py secrets
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --curl ${CURL_BIN}
    --openssl ${OPENSSL_BIN} --node ${NODE_BIN} --node-dir ${CMAKE_SOURCE_DIR}/tests/node
  LABELS sanitize)
orr_integration_test(auth_tls REQUIRES PROMETHEUS PYTHON3 CURL OPENSSL TIMEOUT 300
  COMMAND ${PYTHON3_BIN} ${CMAKE_CURRENT_LIST_DIR}/auth/auth_e2e.py tls
    --orrery $<TARGET_FILE:orrery> --prometheus ${PROMETHEUS_BIN} --curl ${CURL_BIN}
    --openssl ${OPENSSL_BIN}
  LABELS sanitize)
