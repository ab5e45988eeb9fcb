/* pbc_same.h: whether two protobuf-c messages are the same in memory as
 * far as a reader or free_unpacked can tell — descriptors, oneof cases,
 * repeated counts and arrays, strings (and whether each is the field's
 * default pointer), bytes (and whether data is NULL), submessages (and
 * whether NULL), scalars, unknown fields. Walks the descriptors, so it
 * holds for any message type; for tests that compare two decoders. */
#ifndef ORR_TESTS_PBC_SAME_H
#define ORR_TESTS_PBC_SAME_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <string.h>

static bool pbc_same(const ProtobufCMessage *a, const ProtobufCMessage *b);

static size_t pbc_same__scalar_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return 8;
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  default: return 4;
  }
}

/* One value of field |f| at |pa| and |pb| (a member, or an array element). */
static bool pbc_same__value(const ProtobufCFieldDescriptor *f, const void *pa, const void *pb,
                            bool repeated) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *x = *(char *const *)pa, *y = *(char *const *)pb;
    if (!x || !y) return x == y;
    if (!repeated && (x == f->default_value) != (y == f->default_value)) return false;
    return strcmp(x, y) == 0;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *x = pa, *y = pb;
    if (x->len != y->len || !x->data != !y->data) return false;
    return !x->len || memcmp(x->data, y->data, x->len) == 0;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *x = *(ProtobufCMessage *const *)pa;
    const ProtobufCMessage *y = *(ProtobufCMessage *const *)pb;
    if (!x || !y) return x == y;
    return pbc_same(x, y);
  }
  default: return memcmp(pa, pb, pbc_same__scalar_size(f->type)) == 0;
  }
}

static size_t pbc_same__elt_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  default: return pbc_same__scalar_size(t);
  }
}

static bool pbc_same__field(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *a,
                            const ProtobufCMessage *b) {
  const char *ca = (const char *)a, *cb = (const char *)b;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t qa, qb;
    memcpy(&qa, ca + f->quantifier_offset, sizeof(qa));
    memcpy(&qb, cb + f->quantifier_offset, sizeof(qb));
    if (qa != qb) return false;
    if (qa != f->id) return true;
  }
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t na, nb;
    memcpy(&na, ca + f->quantifier_offset, sizeof(na));
    memcpy(&nb, cb + f->quantifier_offset, sizeof(nb));
    const char *va = *(char *const *)(ca + f->offset), *vb = *(char *const *)(cb + f->offset);
    if (na != nb || !va != !vb) return false;
    size_t es = pbc_same__elt_size(f->type);
    for (size_t i = 0; i < na; i++)
      if (!pbc_same__value(f, va + i * es, vb + i * es, true)) return false;
    return true;
  }
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
      !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type != PROTOBUF_C_TYPE_STRING &&
      f->type != PROTOBUF_C_TYPE_MESSAGE &&
      memcmp(ca + f->quantifier_offset, cb + f->quantifier_offset, sizeof(protobuf_c_boolean)))
    return false;
  return pbc_same__value(f, ca + f->offset, cb + f->offset, false);
}

static bool pbc_same(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  if (a->descriptor != b->descriptor || a->n_unknown_fields != b->n_unknown_fields ||
      !a->unknown_fields != !b->unknown_fields)
    return false;
  for (unsigned i = 0; i < a->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *x = &a->unknown_fields[i], *y = &b->unknown_fields[i];
    if (x->tag != y->tag || x->wire_type != y->wire_type || x->len != y->len ||
        (x->len && memcmp(x->data, y->data, x->len)))
      return false;
  }
  const ProtobufCMessageDescriptor *d = a->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (!pbc_same__field(&d->fields[i], a, b)) return false;
  return true;
}

#endif
