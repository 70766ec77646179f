/*
 * tlsgen.h - the self-signed certificate made on first start, so that
 * `changelogd --data DIR` serves wss:// with no setup. An EC P-256 key and an
 * X.509 v3 certificate for localhost (SAN DNS:localhost, IP:127.0.0.1,
 * IP:::1), signed with SHA-256. The key file is created 0600; both are
 * reused on later starts. Production sites pass --cert/--key instead.
 */
#ifndef CL_NET_TLSGEN_H
#define CL_NET_TLSGEN_H

/*
 * Make sure cert_path and key_path exist: if both do, nothing happens
 * (*created = 0); if neither does, a new pair is written (*created = 1).
 * One without the other is refused (CL_EEXIST) rather than overwritten.
 * Errors: CL_EIO (with errno), CL_ENOMEM, CL_EEXIST.
 */
int tlsgen_ensure(const char *cert_path, const char *key_path, int *created);

#endif
