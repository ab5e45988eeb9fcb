# lib/objstore against s3rver (npm, tests/node): objects small and large,
# multipart with a peak-RSS bound, a restart mid-upload, start-up check lines.
# And the S3 client's signatures as S3 verifies them (fake_s3.py, Python
# only, so it runs wherever python3 does).
add_executable(objstore_put_rss ${CMAKE_CURRENT_LIST_DIR}/objstore/put_rss.c)
target_link_libraries(objstore_put_rss PRIVATE orr_objstore)
# 77: s3rver is not installed.
orr_integration_test(objstore_s3rver REQUIRES NODE PYTHON3 TIMEOUT 600
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/objstore/s3rver_test.sh $<TARGET_FILE:orrery>
    $<TARGET_FILE:objstore_put_rss> ${CMAKE_SOURCE_DIR}/tests/node)
orr_integration_test(objstore_sigv4 REQUIRES PYTHON3 TIMEOUT 120
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/objstore/sigv4_test.sh $<TARGET_FILE:orrery> ${PYTHON3_BIN})
