/* storeapi_int.h: helpers shared by the storeapi module's files
 * (storeapi__ prefix); not for other modules. */
#ifndef ORR_STOREAPI_INT_H
#define ORR_STOREAPI_INT_H

#include "storeapi.h"

/* Packs |m| into |out| (appended). Returns 0 or ORR_ENOMEM. */
int storeapi__pack(const ProtobufCMessage *m, orr_buf *out);

#endif
