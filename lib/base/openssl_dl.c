/* openssl_dl.c: libssl and libcrypto, loaded on first use.
 *
 * OpenSSL's two libraries are the largest the dynamic loader mapped and
 * relocated at every orrery exec (some 20k relocations, ~5 ms of a process
 * that never speaks TLS nor hashes: `orrery --version`, `tools query`). So
 * orrery does not link them: this file defines the OpenSSL functions the
 * project calls, and the first call opens libssl.so.3 (which brings
 * libcrypto.so.3) with dlopen (dl.c) and forwards to it. Callers include the
 * OpenSSL headers and call OpenSSL as usual; the headers' prototypes are in
 * scope here, so a definition below that does not match them is a compile
 * error.
 *
 * A missing libssl is a clear error where it is needed: the loader's reason
 * on stderr and exit status 1 (the Debian package names libssl3 in Depends
 * explicitly). */
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "base.h"

/* X(name, return type, parameters, arguments): every OpenSSL function the
 * project calls (`nm -D --undefined-only orrery | grep OPENSSL` before this
 * file was added), header macros resolved (SSL_CTX_set_mode is
 * SSL_CTX_ctrl, sk_X509_NAME_pop_free is OPENSSL_sk_pop_free, ...). */
#define ORR__SSL_FUNCS(X)                                                                          \
  X(BIO_ctrl, long, (BIO * b, int cmd, long larg, void *parg), (b, cmd, larg, parg))              \
  X(BIO_ctrl_pending, size_t, (BIO * b), (b))                                                     \
  X(BIO_free, int, (BIO * b), (b))                                                                \
  X(BIO_new, BIO *, (const BIO_METHOD *m), (m))                                                   \
  X(BIO_read, int, (BIO * b, void *data, int n), (b, data, n))                                    \
  X(BIO_s_mem, const BIO_METHOD *, (void), ())                                                    \
  X(BIO_write, int, (BIO * b, const void *data, int n), (b, data, n))                             \
  X(CRYPTO_memcmp, int, (const void *a, const void *b, size_t n), (a, b, n))                      \
  X(ERR_clear_error, void, (void), ())                                                            \
  X(ERR_error_string_n, void, (unsigned long e, char *buf, size_t n), (e, buf, n))                \
  X(ERR_peek_error, unsigned long, (void), ())                                                    \
  X(ERR_peek_last_error, unsigned long, (void), ())                                               \
  X(EVP_Digest, int,                                                                              \
    (const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type,   \
     ENGINE *impl),                                                                               \
    (data, count, md, size, type, impl))                                                          \
  X(EVP_DigestFinal_ex, int, (EVP_MD_CTX * c, unsigned char *md, unsigned int *s), (c, md, s))    \
  X(EVP_DigestInit_ex, int, (EVP_MD_CTX * c, const EVP_MD *type, ENGINE *impl), (c, type, impl)) \
  X(EVP_DigestUpdate, int, (EVP_MD_CTX * c, const void *d, size_t n), (c, d, n))                  \
  X(EVP_EncodeBlock, int, (unsigned char *t, const unsigned char *f, int n), (t, f, n))           \
  X(EVP_MD_CTX_free, void, (EVP_MD_CTX * c), (c))                                                 \
  X(EVP_MD_CTX_new, EVP_MD_CTX *, (void), ())                                                     \
  X(EVP_md5, const EVP_MD *, (void), ())                                                          \
  X(EVP_sha256, const EVP_MD *, (void), ())                                                       \
  X(OPENSSL_cleanse, void, (void *p, size_t n), (p, n))                                           \
  X(OPENSSL_sk_num, int, (const OPENSSL_STACK *st), (st))                                         \
  X(OPENSSL_sk_pop_free, void, (OPENSSL_STACK * st, void (*fn)(void *)), (st, fn))                \
  X(OPENSSL_sk_value, void *, (const OPENSSL_STACK *st, int i), (st, i))                          \
  X(RAND_bytes, int, (unsigned char *buf, int n), (buf, n))                                       \
  X(SSL_CIPHER_get_name, const char *, (const SSL_CIPHER *c), (c))                                \
  X(SSL_CIPHER_standard_name, const char *, (const SSL_CIPHER *c), (c))                           \
  X(SSL_CTX_check_private_key, int, (const SSL_CTX *ctx), (ctx))                                  \
  X(SSL_CTX_ctrl, long, (SSL_CTX * ctx, int cmd, long larg, void *parg), (ctx, cmd, larg, parg))  \
  X(SSL_CTX_free, void, (SSL_CTX * ctx), (ctx))                                                   \
  X(SSL_CTX_get0_param, X509_VERIFY_PARAM *, (SSL_CTX * ctx), (ctx))                              \
  X(SSL_CTX_get_ciphers, STACK_OF(SSL_CIPHER) *, (const SSL_CTX *ctx), (ctx))                     \
  X(SSL_CTX_load_verify_locations, int, (SSL_CTX * ctx, const char *file, const char *path),     \
    (ctx, file, path))                                                                            \
  X(SSL_CTX_new, SSL_CTX *, (const SSL_METHOD *m), (m))                                           \
  X(SSL_CTX_set_alpn_select_cb, void,                                                             \
    (SSL_CTX * ctx, SSL_CTX_alpn_select_cb_func cb, void *arg), (ctx, cb, arg))                   \
  X(SSL_CTX_set_cipher_list, int, (SSL_CTX * ctx, const char *s), (ctx, s))                       \
  X(SSL_CTX_set_client_CA_list, void, (SSL_CTX * ctx, STACK_OF(X509_NAME) * l), (ctx, l))         \
  X(SSL_CTX_set_default_verify_paths, int, (SSL_CTX * ctx), (ctx))                                \
  X(SSL_CTX_set_options, uint64_t, (SSL_CTX * ctx, uint64_t op), (ctx, op))                       \
  X(SSL_CTX_set_session_id_context, int,                                                          \
    (SSL_CTX * ctx, const unsigned char *sid, unsigned int n), (ctx, sid, n))                     \
  X(SSL_CTX_set_verify, void, (SSL_CTX * ctx, int mode, SSL_verify_cb cb), (ctx, mode, cb))       \
  X(SSL_CTX_use_PrivateKey_file, int, (SSL_CTX * ctx, const char *file, int type),               \
    (ctx, file, type))                                                                            \
  X(SSL_CTX_use_certificate_chain_file, int, (SSL_CTX * ctx, const char *file), (ctx, file))      \
  X(SSL_ctrl, long, (SSL * s, int cmd, long larg, void *parg), (s, cmd, larg, parg))              \
  X(SSL_do_handshake, int, (SSL * s), (s))                                                        \
  X(SSL_free, void, (SSL * s), (s))                                                               \
  X(SSL_get0_alpn_selected, void, (const SSL *s, const unsigned char **data, unsigned int *len), \
    (s, data, len))                                                                               \
  X(SSL_get0_param, X509_VERIFY_PARAM *, (SSL * s), (s))                                          \
  X(SSL_get_error, int, (const SSL *s, int ret), (s, ret))                                        \
  X(SSL_get_ex_data, void *, (const SSL *s, int idx), (s, idx))                                   \
  X(SSL_get_verify_result, long, (const SSL *s), (s))                                             \
  X(SSL_load_client_CA_file, STACK_OF(X509_NAME) *, (const char *file), (file))                   \
  X(SSL_new, SSL *, (SSL_CTX * ctx), (ctx))                                                       \
  X(SSL_read_ex, int, (SSL * s, void *buf, size_t n, size_t *got), (s, buf, n, got))              \
  X(SSL_set1_host, int, (SSL * s, const char *host), (s, host))                                   \
  X(SSL_set_accept_state, void, (SSL * s), (s))                                                   \
  X(SSL_set_alpn_protos, int, (SSL * s, const unsigned char *p, unsigned int n), (s, p, n))       \
  X(SSL_set_bio, void, (SSL * s, BIO * r, BIO * w), (s, r, w))                                    \
  X(SSL_set_connect_state, void, (SSL * s), (s))                                                  \
  X(SSL_set_ex_data, int, (SSL * s, int idx, void *data), (s, idx, data))                         \
  X(SSL_shutdown, int, (SSL * s), (s))                                                            \
  X(SSL_write_ex, int, (SSL * s, const void *buf, size_t n, size_t *put), (s, buf, n, put))       \
  X(TLS_client_method, const SSL_METHOD *, (void), ())                                            \
  X(TLS_method, const SSL_METHOD *, (void), ())                                                   \
  X(TLS_server_method, const SSL_METHOD *, (void), ())                                            \
  X(X509_NAME_free, void, (X509_NAME * n), (n))                                                   \
  X(X509_VERIFY_PARAM_set1_host, int, (X509_VERIFY_PARAM * p, const char *name, size_t n),       \
    (p, name, n))                                                                                 \
  X(X509_VERIFY_PARAM_set1_ip_asc, int, (X509_VERIFY_PARAM * p, const char *ip), (p, ip))         \
  X(X509_verify_cert_error_string, const char *, (long n), (n))

/* libssl's handle also finds libcrypto's functions (its dependency). */
ORR_DL_SHIM(ORR__SSL_FUNCS, "libssl.so.3", "OpenSSL", "TLS and hashing need it; install libssl3")
