/* error.c: the one table of orrery error codes and their descriptions. */
#include <string.h>

#include "base.h"

const char *orr_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define ORR__ERRNO_STR(name, s) \
  case ORR_E##name:             \
    return s;
    ORR_ERRNO_MAP(ORR__ERRNO_STR)
#undef ORR__ERRNO_STR
  default:
    break;
  }
  if (err < 0 && err > ORR__EBASE) return strerror(-err);
  return "unknown error";
}

const char *orr_err_name(int err) {
  switch (err) {
  case 0:
    return "ORR_OK";
#define ORR__ERRNO_NAME(name, s) \
  case ORR_E##name:              \
    return "ORR_E" #name;
    ORR_ERRNO_MAP(ORR__ERRNO_NAME)
#undef ORR__ERRNO_NAME
  default:
    return "ORR_E?";
  }
}
