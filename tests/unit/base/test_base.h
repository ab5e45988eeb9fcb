/* test_base.h: the groups of the lib/base test program, one per concern;
 * each returns the number of failed tests. */
#ifndef TEST_BASE_H
#define TEST_BASE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base.h"

int test_mem_group(void);     /* errors, arena, buffers, decoder */
int test_log_group(void);     /* logfmt and JSON lines */
int test_time_group(void);    /* durations and timestamps */
int test_float_group(void);   /* Go float formatting */
int test_crc32c_group(void);  /* CRC32C */
int test_flags_group(void);   /* flags, help, byte sizes */
int test_metrics_group(void); /* registry and text exposition */
int test_dl_group(void);      /* libraries opened on first use */
int test_files_group(void);   /* removing a tree */

#endif
