/* float_ref.h: the pre-Ryu float formatter (float_ref.c), same contract as
 * orr_format_float / orr_format_float_json in base.h. */
#ifndef ORR_FLOAT_REF_H
#define ORR_FLOAT_REF_H
#include <stddef.h>
#include <stdint.h>
int ref_format_float(double v, char *out, size_t outlen);
int ref_format_float_json(double v, char *out, size_t outlen);
#endif
