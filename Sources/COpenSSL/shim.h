#ifndef DERIBIT_GATEWAY_COPENSSL_SHIM_H
#define DERIBIT_GATEWAY_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509v3.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

// Macros are invisible to Swift; these wrappers expose the ones we use.
static inline long cossl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long cossl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int cossl_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline long cossl_ctx_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline long cossl_mode_auto_retry(void) { return SSL_MODE_AUTO_RETRY; }
static inline long cossl_mode_accept_moving_write_buffer(void) { return SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
static inline long cossl_mode_enable_partial_write(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE; }
static inline int cossl_bio_pending(BIO *b) { return (int)BIO_ctrl_pending(b); }

// TLS module.
static inline uint64_t cossl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }

#endif
