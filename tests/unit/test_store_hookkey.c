/*
 * test_store_hookkey.c - store/hookkey.c: the HMAC-SHA256 signature against
 * RFC 4231's vectors, the secret's shape and derivation, and the key file
 * (made once, 0600, the same key for every later load, refused when it is
 * readable by others or the wrong size).
 */
#include "harness.h"
#include "../../store/hookkey.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void t_sign_vectors(void)
{
	char sig[HOOKKEY_SIG_LEN + 1];
	char key20[20];

	/* RFC 4231, test case 2 */
	hookkey_sign("Jefe", 4, "what do ya want for nothing?", 28, sig);
	CHECK(strcmp(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0);
	/* RFC 4231, test case 1: key 20 x 0x0b, "Hi There" */
	memset(key20, 0x0b, sizeof key20);
	hookkey_sign(key20, sizeof key20, "Hi There", 8, sig);
	CHECK(strcmp(sig, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7") == 0);
	/* one byte of body more is another signature */
	hookkey_sign("Jefe", 4, "what do ya want for nothing?!", 29, sig);
	CHECK(strcmp(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") != 0);
}

static void t_secret(void)
{
	uint8_t key[HOOKKEY_LEN], nonce[EV_HASH_LEN];
	char a[HOOKKEY_SECRET_LEN + 1], b[HOOKKEY_SECRET_LEN + 1];

	memset(key, 1, sizeof key);
	memset(nonce, 2, sizeof nonce);
	hookkey_secret(key, nonce, a);
	CHECK_EQ_INT(strlen(a), HOOKKEY_SECRET_LEN);
	CHECK(strncmp(a, "whsec_", 6) == 0);
	hookkey_secret(key, nonce, b);
	CHECK(strcmp(a, b) == 0);                 /* derived: the same every time */
	nonce[31] ^= 1;
	hookkey_secret(key, nonce, b);
	CHECK(strcmp(a, b) != 0);                 /* another webhook, another secret */
	nonce[31] ^= 1;
	key[0] ^= 1;
	hookkey_secret(key, nonce, b);
	CHECK(strcmp(a, b) != 0);                 /* another data directory, another secret */
}

static void t_key_file(void)
{
	const char *dir = harness_tmpdir();
	uint8_t k1[HOOKKEY_LEN], k2[HOOKKEY_LEN];
	char path[4096];
	struct stat st;
	int fd;

	snprintf(path, sizeof path, "%s/webhook.key", dir);
	CHECK_EQ_INT(hookkey_load(dir, 0, k1), CL_ENOTFOUND);
	REQUIRE(hookkey_load(dir, 1, k1) == 0);
	REQUIRE(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(st.st_size, HOOKKEY_LEN);
	REQUIRE(hookkey_load(dir, 1, k2) == 0);
	CHECK(memcmp(k1, k2, sizeof k1) == 0);   /* made once */
	REQUIRE(hookkey_load(dir, 0, k2) == 0);
	CHECK(memcmp(k1, k2, sizeof k1) == 0);
	chmod(path, 0644);
	CHECK_EQ_INT(hookkey_load(dir, 0, k2), CL_ECORRUPT);
	chmod(path, 0600);
	REQUIRE((fd = open(path, O_WRONLY | O_APPEND)) >= 0);
	CHECK_EQ_INT(write(fd, "x", 1), 1);
	close(fd);
	CHECK_EQ_INT(hookkey_load(dir, 1, k2), CL_ECORRUPT);   /* never replaced */
}

int main(void)
{
	RUN(t_sign_vectors);
	RUN(t_secret);
	RUN(t_key_file);
	return harness_done();
}
