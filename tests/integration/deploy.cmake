# deploy/: the Debian package's units and files, the Kubernetes manifests and
# the operating mixin (tests/integration/deploy/deploy_test.py):
#   deploy_units       systemd-analyze verify of each unit in an installed root;
#                      every flag of the units and /etc/default files is accepted
#   deploy_kubernetes  kubectl kustomize renders; OpenAPI schemas; container flags
#   deploy_mixin       promtool check/test rules (each alert fires and stays
#                      silent); dashboards up to date
#   deploy_package     the package's files in a temporary root, each component
#                      started with its unit's command line until /-/ready over a
#                      seeded filesystem bucket; every metric of the rules and
#                      dashboards exported
# The .deb itself (dpkg-buildpackage + lintian, minutes of compiling) is built
# by deploy/build-deb.sh, not here; `deploy_test.py package ... --deb FILE`
# runs the last test on it.
set(deploy_py ${CMAKE_SOURCE_DIR}/tests/integration/deploy/deploy_test.py)
orr_integration_test(deploy_units REQUIRES PYTHON3 SYSTEMD_ANALYZE TIMEOUT 120
  COMMAND ${PYTHON3_BIN} ${deploy_py} units $<TARGET_FILE:orrery> ${CMAKE_SOURCE_DIR})
orr_integration_test(deploy_kubernetes REQUIRES PYTHON3 KUBECTL NODE TIMEOUT 120
  COMMAND ${PYTHON3_BIN} ${deploy_py} kubernetes $<TARGET_FILE:orrery> ${CMAKE_SOURCE_DIR})
orr_integration_test(deploy_mixin REQUIRES PYTHON3 PROMTOOL TIMEOUT 120
  COMMAND ${PYTHON3_BIN} ${deploy_py} mixin $<TARGET_FILE:orrery> ${CMAKE_SOURCE_DIR})
orr_integration_test(deploy_package REQUIRES PYTHON3 PROMETHEUS PROMTOOL TIMEOUT 180
  COMMAND ${PYTHON3_BIN} ${deploy_py} package $<TARGET_FILE:orrery> ${CMAKE_SOURCE_DIR}
  LABELS sanitize)
