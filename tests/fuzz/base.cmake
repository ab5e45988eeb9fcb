# Fuzz targets of lib/base: durations/timestamps/byte sizes, float formatting
# with CRC32C path agreement, and the flags parser.
orr_fuzz_target(fuzz_base_duration SOURCES fuzz_base_duration.c DEPS orr_base)
orr_fuzz_target(fuzz_base_float SOURCES fuzz_base_float.c DEPS orr_base)
orr_fuzz_target(fuzz_base_flags SOURCES fuzz_base_flags.c DEPS orr_base)
