/*
 * tlsreload.c - the certificate the next handshake gets, reloaded on
 * SIGHUP (see tlsreload.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "slog.h"
#include "tlsreload.h"

struct tls_pair {
	X509 *cert;
	STACK_OF(X509) *chain;     /* the intermediates after the leaf */
	EVP_PKEY *key;
};

struct tlsr {
	struct tls_pair cur;       /* what new handshakes get */
	char cert_path[4096], key_path[4096];
	int enabled, attached;
};

static volatile sig_atomic_t tlsr_hup;

static void pair_free(struct tls_pair *p)
{
	X509_free(p->cert);
	if (p->chain)
		sk_X509_pop_free(p->chain, X509_free);
	EVP_PKEY_free(p->key);
	memset(p, 0, sizeof *p);
}

/* The first queued OpenSSL error as text ("no start line", ...). */
static void ossl_reason(char *buf, size_t cap, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "%s", fallback);
	ERR_clear_error();
}

static int pair_load(struct tls_pair *p, const char *cert, const char *key,
		     char *err, size_t errcap)
{
	char why[256];
	BIO *b;
	X509 *x;

	memset(p, 0, sizeof *p);
	ERR_clear_error();
	b = BIO_new_file(cert, "r");
	if (!b) {
		ossl_reason(why, sizeof why, "cannot open");
		snprintf(err, errcap, "certificate %s: %s", cert, why);
		return -1;
	}
	p->cert = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
	if (!p->cert) {
		ossl_reason(why, sizeof why, "no certificate");
		snprintf(err, errcap, "certificate %s: %s", cert, why);
		BIO_free(b);
		return -1;
	}
	p->chain = sk_X509_new_null();
	while (p->chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(p->chain, x)) {
			X509_free(x);
			break;
		}
	}
	BIO_free(b);
	/* the chain ends at the end of the file; anything else is an error */
	if (!p->chain || ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		ossl_reason(why, sizeof why, "bad chain");
		snprintf(err, errcap, "certificate %s: %s", cert, why);
		pair_free(p);
		return -1;
	}
	ERR_clear_error();
	b = BIO_new_file(key, "r");
	if (!b) {
		ossl_reason(why, sizeof why, "cannot open");
		snprintf(err, errcap, "key %s: %s", key, why);
		pair_free(p);
		return -1;
	}
	p->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!p->key) {
		ossl_reason(why, sizeof why, "no private key");
		snprintf(err, errcap, "key %s: %s", key, why);
		pair_free(p);
		return -1;
	}
	if (X509_check_private_key(p->cert, p->key) != 1) {
		ERR_clear_error();
		snprintf(err, errcap, "key %s does not match certificate %s", key, cert);
		pair_free(p);
		return -1;
	}
	return 0;
}

/* Every new server handshake: use the pair we hold now. */
static int tlsr_cert_cb(SSL *ssl, void *arg)
{
	struct tlsr *t = arg;

	if (!t->cur.cert)
		return 1;              /* keep what lws loaded */
	return SSL_use_cert_and_key(ssl, t->cur.cert, t->cur.key, t->cur.chain, 1) == 1;
}

static void tlsr_on_hup(int sig)
{
	(void)sig;
	tlsr_hup = 1;
}

struct tlsr *tlsr_new(const char *cert, const char *key)
{
	struct sigaction sa;
	struct tlsr *t;
	char err[8400];

	if (!(t = calloc(1, sizeof *t))) {
		slog(SLOG_ERR, "TLS: out of memory");
		return NULL;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tlsr_on_hup;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	if (!cert)
		return t;
	if (snprintf(t->cert_path, sizeof t->cert_path, "%s", cert) >= (int)sizeof t->cert_path ||
	    snprintf(t->key_path, sizeof t->key_path, "%s", key) >= (int)sizeof t->key_path) {
		slog(SLOG_ERR, "TLS: certificate or key path too long");
		free(t);
		return NULL;
	}
	if (pair_load(&t->cur, cert, key, err, sizeof err)) {
		slog(SLOG_ERR, "TLS: %s", err);
		free(t);
		return NULL;
	}
	t->enabled = 1;
	return t;
}

void tlsr_attach(struct tlsr *t, void *ssl_ctx)
{
	if (!t || !t->enabled || !ssl_ctx)
		return;
	SSL_CTX_set_cert_cb(ssl_ctx, tlsr_cert_cb, t);
	t->attached = 1;
}

int tlsr_attached(const struct tlsr *t)
{
	return t && t->attached;
}

void tlsr_poll(struct tlsr *t)
{
	struct tls_pair next;
	char err[8400];

	if (!tlsr_hup)
		return;
	tlsr_hup = 0;
	if (!t->enabled) {
		slog(SLOG_INFO, "SIGHUP: no certificate to reload (--plain)");
		return;
	}
	if (pair_load(&next, t->cert_path, t->key_path, err, sizeof err)) {
		slog(SLOG_ERR, "SIGHUP: certificate not reloaded, still serving the previous one: %s",
		     err);
		return;
	}
	/* open sessions hold their own references; only new handshakes change */
	pair_free(&t->cur);
	t->cur = next;
	{
		char subject[256] = "", notafter[64] = "";
		BIO *b = BIO_new(BIO_s_mem());

		X509_NAME_oneline(X509_get_subject_name(t->cur.cert), subject, sizeof subject);
		if (b && ASN1_TIME_print(b, X509_get0_notAfter(t->cur.cert)) > 0) {
			int n = BIO_read(b, notafter, sizeof notafter - 1);

			notafter[n > 0 ? n : 0] = '\0';
		}
		BIO_free(b);
		slog(SLOG_INFO, "SIGHUP: reloaded the TLS certificate %s (%s, valid until %s); "
		     "new handshakes use it", t->cert_path, subject, notafter);
	}
}

void tlsr_free(struct tlsr *t)
{
	if (!t)
		return;
	pair_free(&t->cur);
	free(t);
}

int tlsr_check(const char *cert, const char *key, char *err, size_t errcap)
{
	struct tls_pair p;

	if (pair_load(&p, cert, key, err, errcap))
		return -1;
	pair_free(&p);
	return 0;
}
