/* test_web.c: one block's entry of the blocks page's /api/v1/blocks
 * (compact__web_entry): meta.json as it is, its marks, its size from
 * thanos.files or from the caller's listing; a block with an unreadable
 * meta.json is left out, an unreadable marker still marks it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "compact_int.h"

#define META "{\"ulid\":\"01M94BHVKT1Y6P7ER3GV5DZ3JD\",\"minTime\":1,\"maxTime\":2,\"version\":1"

static json_t *entry(const char *meta, const char *del, const char *nc, uint64_t listed,
                     bool *has_files) {
  compact_web_objects o = {meta, strlen(meta), del, del ? strlen(del) : 0,
                           nc, nc ? strlen(nc) : 0, listed};
  json_t *out = NULL;
  char err[256];
  assert_int_equal(compact__web_entry(&o, &out, has_files, err, sizeof(err)), 0);
  assert_non_null(out);
  return out;
}

static void test_files_size_and_meta_kept(void **state) {
  (void)state;
  bool files;
  json_t *e = entry(META ",\"thanos\":{\"files\":[{\"rel_path\":\"chunks/000001\",\"size_bytes\":100},"
                    "{\"rel_path\":\"index\",\"size_bytes\":50},{\"rel_path\":\"meta.json\"}]}}",
                    NULL, NULL, 999, &files);
  assert_true(files);
  assert_int_equal(json_integer_value(json_object_get(e, "sizeBytes")), 150);
  assert_int_equal(json_object_size(json_object_get(e, "marks")), 0);
  assert_string_equal(json_string_value(json_object_get(e, "ulid")), "01M94BHVKT1Y6P7ER3GV5DZ3JD");
  assert_int_equal(json_integer_value(json_object_get(e, "maxTime")), 2);
  json_decref(e);
}

static void test_listing_size_and_marks(void **state) {
  (void)state;
  bool files;
  json_t *e = entry(META "}", "{\"id\":\"x\",\"deletion_time\":1700000000,\"version\":1}", "not json",
                    1234, &files);
  assert_false(files);
  assert_int_equal(json_integer_value(json_object_get(e, "sizeBytes")), 1234);
  json_t *marks = json_object_get(e, "marks");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(marks, "deletion"),
                                                      "deletion_time")),
                   1700000000);
  /* An unreadable marker still marks the block. */
  assert_non_null(json_object_get(json_object_get(marks, "noCompact"), "error"));
  json_decref(e);
}

static void test_unreadable_meta_left_out(void **state) {
  (void)state;
  const char *bad[] = {"", "[1]", "{\"ulid\":", "null"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    compact_web_objects o = {bad[i], strlen(bad[i]), NULL, 0, NULL, 0, 0};
    json_t *out = NULL;
    bool files;
    char err[256] = "";
    assert_int_equal(compact__web_entry(&o, &out, &files, err, sizeof(err)), ORR_ECORRUPT);
    assert_null(out);
    assert_non_null(strstr(err, "meta.json"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_files_size_and_meta_kept),
      cmocka_unit_test(test_listing_size_and_marks),
      cmocka_unit_test(test_unreadable_meta_left_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
