/* crc32c.c: see base.h */
#include "base.h"
