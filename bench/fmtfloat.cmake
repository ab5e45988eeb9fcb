# bench_fmtfloat: ns per value of the Ryu float formatter against the one it
# replaced (kept as the unit test's oracle in tests/unit/base/float_ref.c).
add_executable(bench_fmtfloat ${CMAKE_CURRENT_LIST_DIR}/bench_fmtfloat.c
  ${CMAKE_SOURCE_DIR}/tests/unit/base/float_ref.c)
target_include_directories(bench_fmtfloat PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit/base)
target_link_libraries(bench_fmtfloat PRIVATE orr_base m)
