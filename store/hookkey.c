/*
 * hookkey.c - the webhook key file, secrets and signatures (hookkey.h).
 */
#include "hookkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token.h"

static void hookkey_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void hookkey_hmac(const void *key, size_t key_len, const void *data, size_t len,
			 char out[HOOKKEY_SIG_LEN + 1])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, mac, &mac_len) || mac_len != 32)
		memset(mac, 0, sizeof mac);   /* never: OpenSSL's SHA-256 */
	hookkey_hex(mac, 32, out);
	OPENSSL_cleanse(mac, sizeof mac);
}

void hookkey_secret(const uint8_t key[HOOKKEY_LEN], const uint8_t nonce[EV_HASH_LEN],
		    char out[HOOKKEY_SECRET_LEN + 1])
{
	memcpy(out, HOOKKEY_SECRET_PREFIX, 6);
	hookkey_hmac(key, HOOKKEY_LEN, nonce, EV_HASH_LEN, out + 6);
}

void hookkey_sign(const char *secret, size_t secret_len, const void *body, size_t len,
		  char out[HOOKKEY_SIG_LEN + 1])
{
	hookkey_hmac(secret, secret_len, body, len, out);
}

/* Read the key at path: 0, CL_ENOTFOUND, CL_ECORRUPT or CL_EIO. */
static int hookkey_read(const char *path, uint8_t key[HOOKKEY_LEN])
{
	uint8_t buf[HOOKKEY_LEN + 1];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOENT ? CL_ENOTFOUND : CL_EIO;
	if (fstat(fd, &st) != 0 || (n = read(fd, buf, sizeof buf)) < 0) {
		close(fd);
		return CL_EIO;
	}
	close(fd);
	if (n != HOOKKEY_LEN || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		OPENSSL_cleanse(buf, sizeof buf);
		return CL_ECORRUPT;
	}
	memcpy(key, buf, HOOKKEY_LEN);
	OPENSSL_cleanse(buf, sizeof buf);
	return 0;
}

int hookkey_load(const char *dir, int create, uint8_t key[HOOKKEY_LEN])
{
	char path[4096], tmp[4200];
	uint8_t fresh[HOOKKEY_LEN];
	int rc, fd, e;

	if ((size_t)snprintf(path, sizeof path, "%s/webhook.key", dir) >= sizeof path)
		return CL_EIO;
	rc = hookkey_read(path, key);
	if (rc != CL_ENOTFOUND || !create)
		return rc;
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	if (token_random(fresh, sizeof fresh))
		return CL_EIO;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return CL_EIO;
	if (write(fd, fresh, sizeof fresh) != (ssize_t)sizeof fresh || fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		OPENSSL_cleanse(fresh, sizeof fresh);
		return CL_EIO;
	}
	close(fd);
	/* link fails if another process made it first: then its key is the key */
	e = link(tmp, path) == 0 ? 0 : errno;
	unlink(tmp);
	OPENSSL_cleanse(fresh, sizeof fresh);
	if (e && e != EEXIST)
		return CL_EIO;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return hookkey_read(path, key);
}
