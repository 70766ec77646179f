/*
 * tlsgen.c - self-signed localhost certificate with the OpenSSL 3 EVP and
 * X509 APIs (see tlsgen.h). The key never exists on disk with loose
 * permissions: its file is opened O_EXCL with mode 0600 before anything is
 * written, and the pair is written to temporary names and renamed, so a
 * crash leaves either no pair or a whole one.
 */
#include "tlsgen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../core/cl.h"

#define TLSGEN_DAYS 825

static int tlsgen_add_ext(X509 *crt, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, crt, crt, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return CL_ENOMEM;
	ok = X509_add_ext(crt, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : CL_ENOMEM;
}

static X509 *tlsgen_cert(EVP_PKEY *key)
{
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509 *crt = X509_new();
	X509_NAME *name;
	int ok = 0;

	if (!crt)
		return NULL;
	if (RAND_bytes(serial, sizeof serial) != 1)
		goto out;
	serial[0] &= 0x7f;  /* positive */
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)))
		goto out;
	if (!X509_set_version(crt, 2) ||   /* v3 */
	    !X509_gmtime_adj(X509_getm_notBefore(crt), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(crt), (long)TLSGEN_DAYS * 86400) ||
	    !X509_set_pubkey(crt, key))
		goto out;
	name = X509_get_subject_name(crt);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					(const unsigned char *)"changelogd", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_issuer_name(crt, name))
		goto out;
	if (tlsgen_add_ext(crt, NID_subject_alt_name,
			   "DNS:localhost,IP:127.0.0.1,IP:::1") ||
	    tlsgen_add_ext(crt, NID_basic_constraints, "critical,CA:FALSE") ||
	    tlsgen_add_ext(crt, NID_key_usage, "critical,digitalSignature") ||
	    tlsgen_add_ext(crt, NID_ext_key_usage, "serverAuth") ||
	    tlsgen_add_ext(crt, NID_subject_key_identifier, "hash"))
		goto out;
	if (!X509_sign(crt, key, EVP_sha256()))
		goto out;
	ok = 1;
out:
	BN_free(bn);
	if (!ok) {
		X509_free(crt);
		crt = NULL;
	}
	return crt;
}

/* Write with PEM_write_* into a new file of the given mode. */
static int tlsgen_write(const char *path, mode_t mode, EVP_PKEY *key, X509 *crt)
{
	int fd, ok;
	FILE *f;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return CL_EIO;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return CL_EIO;
	}
	if (key)
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_X509(f, crt);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		unlink(path);
		return CL_EIO;
	}
	return 0;
}

int tlsgen_ensure(const char *cert_path, const char *key_path, int *created)
{
	char tmp_cert[4096], tmp_key[4096];
	int have_cert = access(cert_path, F_OK) == 0;
	int have_key = access(key_path, F_OK) == 0;
	EVP_PKEY *key = NULL;
	X509 *crt = NULL;
	int rc;

	*created = 0;
	if (have_cert && have_key)
		return 0;
	if (have_cert || have_key)
		return CL_EEXIST;
	if ((size_t)snprintf(tmp_cert, sizeof tmp_cert, "%s.tmp", cert_path) >= sizeof tmp_cert ||
	    (size_t)snprintf(tmp_key, sizeof tmp_key, "%s.tmp", key_path) >= sizeof tmp_key)
		return CL_EINVAL;
	unlink(tmp_cert);
	unlink(tmp_key);

	rc = CL_ENOMEM;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!key)
		goto out;
	crt = tlsgen_cert(key);
	if (!crt)
		goto out;
	rc = tlsgen_write(tmp_key, 0600, key, NULL);
	if (rc)
		goto out;
	rc = tlsgen_write(tmp_cert, 0644, NULL, crt);
	if (rc)
		goto out_key;
	if (rename(tmp_key, key_path) != 0 || rename(tmp_cert, cert_path) != 0) {
		rc = CL_EIO;
		unlink(tmp_cert);
		unlink(key_path);
		goto out_key;
	}
	*created = 1;
	rc = 0;
	goto out;
out_key:
	unlink(tmp_key);
out:
	X509_free(crt);
	EVP_PKEY_free(key);
	return rc;
}
