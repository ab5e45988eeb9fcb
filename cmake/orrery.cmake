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

# orr_unit_test(NAME SOURCES ... DEPS ... [REQUIRES TOOL...] [TIMEOUT s]):
# a cmocka test program registered with CTest under the label "unit".
# REQUIRES names outside tools as orr_integration_test does (PROMTOOL,
# OPENSSL, ...; their paths are in ${TOOL_BIN}); when one is missing the test
# is registered as a failing placeholder that names it. The program runs under
# tests/unit/run_cmocka.sh, which turns a cmocka skip() (a pass to CTest)
# into CTest's skip code 77, or a failure when CI=true.
function(orr_unit_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;DEPS;REQUIRES" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 120)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/common)
  orr__tool_test(${name} "${A_REQUIRES}"
    bash ${CMAKE_SOURCE_DIR}/tests/unit/run_cmocka.sh $<TARGET_FILE:${name}>)
  set_tests_properties(${name} PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS unit SKIP_RETURN_CODE 77)
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

# The external tools the tests drive, looked up once, in PATH only (not in
# CMake's system directories): the tests run what the user's PATH gives, and
# a tool taken out of PATH shows up as missing.
foreach(tool PROMETHEUS:prometheus PROMTOOL:promtool PYTHON3:python3 NODE:node WRK:wrk
    OPENSSL:openssl CURL:curl DPKG_DEB:dpkg-deb DPKG_BUILDPACKAGE:dpkg-buildpackage
    LINTIAN:lintian KUBECTL:kubectl SYSTEMD_ANALYZE:systemd-analyze CHROMIUM:chromium
    VICTORIA_METRICS:victoria-metrics VALGRIND:valgrind CALLGRIND_CONTROL:callgrind_control)
  string(REPLACE ":" ";" tv ${tool})
  list(GET tv 0 var)
  list(GET tv 1 cmd)
  find_program(${var}_BIN ${cmd} NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH NO_CMAKE_SYSTEM_PATH
    NO_CMAKE_INSTALL_PREFIX)
endforeach()

# orr__missing_tools(OUT TOOL...): the lower-case names of the tools (by
# their *_BIN variable above without the suffix) that were not found.
function(orr__missing_tools out)
  set(missing)
  foreach(tool ${ARGN})
    if(NOT ${tool}_BIN)
      string(TOLOWER ${tool} t)
      list(APPEND missing ${t})
    endif()
  endforeach()
  set(${out} "${missing}" PARENT_SCOPE)
endfunction()

# orr__placeholder_test(NAME MISSING): registers NAME as a test that fails
# and says which tools it needed: a missing tool fails the suite, it never
# shrinks it.
function(orr__placeholder_test name missing)
  string(REPLACE ";" ", " m "${missing}")
  add_test(NAME ${name} COMMAND sh -c "echo '${name}: cannot run: ${m} not found (scripts/bootstrap.sh installs it)' >&2; exit 1")
endfunction()

# orr__tool_test(NAME "TOOL;..." COMMAND...): the test NAME running COMMAND,
# or, when one of the tools is missing, a placeholder that fails naming it.
function(orr__tool_test name requires)
  orr__missing_tools(missing ${requires})
  if(missing)
    orr__placeholder_test(${name} "${missing}")
  else()
    add_test(NAME ${name} COMMAND ${ARGN})
  endif()
endfunction()

# orr_integration_test(NAME REQUIRES TOOL... COMMAND ... [LABELS ...]
#   [TIMEOUT s] [ENVIRONMENT_MODIFICATION ...]): an integration test (label
# "integration" plus LABELS). REQUIRES names tools by their *_BIN variable
# above without the suffix (PROMETHEUS PROMTOOL PYTHON3 NODE WRK). When one
# is missing the test is still registered, as a test that fails and says
# which tool it needed. Exit code 77 (a test's own skip, e.g. an npm peer
# missing) shows as skipped; scripts/test.sh fails a CI run on any skip.
# LABELS sanitize: the asan stage of scripts/test.sh runs it too.
function(orr_integration_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "REQUIRES;COMMAND;LABELS;ENVIRONMENT_MODIFICATION" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  orr__tool_test(${name} "${A_REQUIRES}" ${A_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "integration;${A_LABELS}" TIMEOUT ${A_TIMEOUT}
    SKIP_RETURN_CODE 77)
  if(A_ENVIRONMENT_MODIFICATION)
    set_tests_properties(${name} PROPERTIES
      ENVIRONMENT_MODIFICATION "${A_ENVIRONMENT_MODIFICATION}")
  endif()
endfunction()

# orr_bench_smoke(NAME REQUIRES TOOL... COMMAND ... [TIMEOUT s]): a benchmark
# run on a tiny data set (label "bench", the bench stage of scripts/test.sh;
# not "integration", so the gcc and asan stages leave it out). It fails when
# the benchmark crashes or its answers differ; no timing is asserted.
function(orr_bench_smoke name)
  cmake_parse_arguments(A "" "TIMEOUT" "REQUIRES;COMMAND" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  orr__tool_test(${name} "${A_REQUIRES}" ${A_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS bench TIMEOUT ${A_TIMEOUT})
endfunction()
