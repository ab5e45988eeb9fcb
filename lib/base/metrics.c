/* metrics.c: see base.h */
#include "base.h"
