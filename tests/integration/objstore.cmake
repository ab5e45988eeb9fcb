# lib/objstore against s3rver (npm, tests/node): objects small and large,
# multipart with a peak-RSS bound, a restart mid-upload, start-up check lines.
add_executable(objstore_put_rss ${CMAKE_CURRENT_LIST_DIR}/objstore/put_rss.c)
target_link_libraries(objstore_put_rss PRIVATE orr_objstore)
add_test(NAME objstore_s3rver
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/objstore/s3rver_test.sh $<TARGET_FILE:orrery>
    $<TARGET_FILE:objstore_put_rss> ${CMAKE_SOURCE_DIR}/tests/node)
# 77: node, s3rver or python3 missing.
set_tests_properties(objstore_s3rver PROPERTIES LABELS integration TIMEOUT 600 SKIP_RETURN_CODE 77)
