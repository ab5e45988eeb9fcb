# Helpers shared by every CMakeLists.txt of the project.

# orr_library(NAME SOURCES ... DEPS ...): the static library orr_NAME for
# lib/NAME, with lib/NAME as its public include directory.
function(orr_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(orr_${name} STATIC ${A_SOURCES})
  target_include_directories(orr_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(orr_${name} PUBLIC ${A_DEPS})
endfunction()

# orr_component(NAME SOURCES ... DEPS ...): the static library orr_NAME for
# the component folder NAME (gateway/, sidecar/, ...), with that folder and
# the entry point's headers (cmd/: cli.h, daemon.h) as include directories.
# The command line's functions (cli_*) come from cmd/cli.c, linked into the
# orrery binary.
function(orr_component name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(orr_${name} STATIC ${A_SOURCES})
  target_include_directories(orr_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
    ${CMAKE_SOURCE_DIR}/cmd)
  target_link_libraries(orr_${name} PUBLIC ${A_DEPS})
endfunction()

# orr_unit_test(NAME SOURCES ... DEPS ... [TIMEOUT s]): a cmocka test program
# registered with CTest under the label "unit".
function(orr_unit_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;DEPS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 120)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/common)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS unit)
endfunction()

# orr_fuzz_target(NAME SOURCES ... DEPS ...): a libFuzzer target. With
# ORRERY_FUZZ it links libFuzzer and the test fuzzes for ORRERY_FUZZ_SECONDS
# from the seed corpus tests/fuzz/corpus/NAME; otherwise it links a small
# driver that replays the seed corpus, so every build checks the seeds.
function(orr_fuzz_target name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  set(corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  set_property(GLOBAL APPEND PROPERTY ORR_FUZZ_TARGETS ${name})
  if(ORRERY_FUZZ)
    add_executable(${name} ${A_SOURCES})
    target_link_libraries(${name} PRIVATE ${A_DEPS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set(work ${CMAKE_CURRENT_BINARY_DIR}/${name}.corpus)
    add_test(NAME ${name}
      COMMAND sh -c "rm -rf '${work}' && mkdir -p '${work}' && exec '$<TARGET_FILE:${name}>' -max_total_time=${ORRERY_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 '${work}' '${corpus}'")
    set_tests_properties(${name} PROPERTIES TIMEOUT 300 LABELS fuzz)
  else()
    add_executable(${name} ${A_SOURCES} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
    target_link_libraries(${name} PRIVATE ${A_DEPS})
    add_test(NAME ${name} COMMAND ${name} ${corpus})
    set_tests_properties(${name} PROPERTIES TIMEOUT 120 LABELS "unit;fuzz-replay")
  endif()
endfunction()

# orr_protoc_c(OUT_VAR PROTO...): generates .pb-c.c/.pb-c.h with protoc-c
# into the current binary dir at build time; OUT_VAR receives the sources.
# Include directory: ${CMAKE_CURRENT_BINARY_DIR}.
find_program(PROTOC_C protoc-c REQUIRED)
function(orr_protoc_c out_var)
  set(srcs)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    get_filename_component(dir ${abs} DIRECTORY)
    get_filename_component(base ${abs} NAME_WE)
    set(c ${CMAKE_CURRENT_BINARY_DIR}/${base}.pb-c.c)
    set(h ${CMAKE_CURRENT_BINARY_DIR}/${base}.pb-c.h)
    add_custom_command(OUTPUT ${c} ${h}
      COMMAND ${PROTOC_C} --proto_path=${dir} --c_out=${CMAKE_CURRENT_BINARY_DIR} ${abs}
      DEPENDS ${abs} VERBATIM)
    list(APPEND srcs ${c})
  endforeach()
  set(${out_var} ${srcs} PARENT_SCOPE)
endfunction()

# The external tools integration tests drive, looked up once.
find_program(PROMETHEUS_BIN prometheus)
find_program(PROMTOOL_BIN promtool)
find_program(PYTHON3_BIN python3)
find_program(NODE_BIN node)
find_program(WRK_BIN wrk)

# orr_integration_test(NAME REQUIRES TOOL... COMMAND ... [LABELS ...]
#   [TIMEOUT s] [ENVIRONMENT_MODIFICATION ...]): an integration test (label
# "integration" plus LABELS). REQUIRES names tools by their *_BIN variable
# above without the suffix (PROMETHEUS PROMTOOL PYTHON3 NODE WRK). When one
# is missing the test is still registered, as a test that fails and says
# which tool it needed: a missing tool fails the suite, it never shrinks it.
function(orr_integration_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "REQUIRES;COMMAND;LABELS;ENVIRONMENT_MODIFICATION" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  set(missing)
  foreach(tool ${A_REQUIRES})
    if(NOT ${tool}_BIN)
      string(TOLOWER ${tool} t)
      list(APPEND missing ${t})
    endif()
  endforeach()
  if(missing)
    string(REPLACE ";" ", " m "${missing}")
    add_test(NAME ${name} COMMAND sh -c "echo '${name}: cannot run: ${m} not found (scripts/bootstrap.sh installs it)' >&2; exit 1")
  else()
    add_test(NAME ${name} COMMAND ${A_COMMAND})
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "integration;${A_LABELS}" TIMEOUT ${A_TIMEOUT}
    SKIP_RETURN_CODE 77)
  if(A_ENVIRONMENT_MODIFICATION)
    set_tests_properties(${name} PROPERTIES
      ENVIRONMENT_MODIFICATION "${A_ENVIRONMENT_MODIFICATION}")
  endif()
endfunction()
