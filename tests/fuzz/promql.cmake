# PromQL: the query parser (lib/promql lexer, parser, checker, printer).
orr_fuzz_target(fuzz_promql_parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_promql_parse.c
  DEPS orr_promql orr_labels orr_base)
# The query API's matrix reader (--endpoint.promql sources' answers).
orr_fuzz_target(fuzz_promql_api_reader SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_promql_api_reader.c
  DEPS orr_promql orr_labels orr_base)
