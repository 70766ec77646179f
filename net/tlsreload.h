/*
 * tlsreload.h - swap the server's TLS certificate on SIGHUP without a
 * restart (certbot renews every 60-90 days).
 *
 * lws loads --cert/--key into the vhost's SSL_CTX at start. We keep our own
 * copy of the certificate, its chain and the key, and hang a certificate
 * callback (SSL_CTX_set_cert_cb) on that SSL_CTX, which hands every new
 * handshake the copy we hold. SIGHUP only sets a flag; tlsr_poll, called
 * from the service loop, re-reads both files, checks that the key matches
 * the certificate, and only then swaps the copy: handshakes after that get
 * the new certificate, open sessions keep theirs (their SSL already has
 * it), and a bad file is logged and leaves the old certificate in use.
 * docs/operations.md, "Certificate reload".
 */
#ifndef CL_NET_TLSRELOAD_H
#define CL_NET_TLSRELOAD_H

#include <stddef.h>

/* The certificate state; the server owns one (server.c). */
struct tlsr;

/* Load cert (PEM chain) and key (PEM); install the SIGHUP handler. With
 * cert == NULL (--plain) SIGHUP is still caught and logged. NULL on failure
 * (logged). */
struct tlsr *tlsr_new(const char *cert, const char *key);

/* From LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS: ssl_ctx is the
 * callback's user, the vhost's SSL_CTX *. t must outlive the vhost. */
void tlsr_attach(struct tlsr *t, void *ssl_ctx);

/* 1 once tlsr_attach has hooked the vhost (checked after context creation). */
int tlsr_attached(const struct tlsr *t);

/* On the service thread: reload if SIGHUP came since the last call. */
void tlsr_poll(struct tlsr *t);

/* After the lws context is destroyed. NULL is a no-op. */
void tlsr_free(struct tlsr *t);

/* Load cert and key as a reload would and check they match, for
 * --check-config. 0, or -1 with the reason in err. */
int tlsr_check(const char *cert, const char *key, char *err, size_t errcap);

#endif
