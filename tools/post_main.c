/*
 * post_main.c - bin/changelog-post: write to a changelog from a deploy
 * pipeline through the HTTP API (docs/http-api.md), with libcurl.
 *
 *   changelog-post --url https://host:8443 --kind change --title "Deployed 1.4"
 *   changelog-post comment --entry 12 --body-file - --url ...
 *   changelog-post status --entry 12 --status resolved --url ...
 *
 * The token comes from --token-file or $CHANGELOG_TOKEN, never from the
 * command line (it would show in ps). Every command carries an
 * Idempotency-Key (--cmd-id, or a random one made here), the same on every
 * retry: a retry after a timeout or a dropped connection is applied once
 * and answered with the first reply. Retried: no answer at all, 429 (after
 * its Retry-After, at most 60 s) and 503; anything else is the answer.
 *
 * Conventions of the other tools (tools/cli/err.h): stdout carries only the
 * result (the new id), messages go to stderr prefixed "changelog-post: ";
 * exit 0 on success, 1 when refused or the server cannot be reached, 2 on
 * bad usage.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "../store/libver.h"
#include "../store/token.h"
#include "cli/err.h"

#define PROG "changelog-post"
#define POST_MAX_REPLY (1u << 20)     /* a reply longer than this is not ours */
#define POST_MAX_BODY (64u * 1024)    /* the server's default --max-msg */
#define POST_MAX_TOKEN 256

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct post {
	const char *url, *token_file, *cacert, *cmd_id, *kind, *title, *body, *body_file;
	const char *status, *entry, *parent, *expected_version;
	int insecure, retries, timeout;
	char token[POST_MAX_TOKEN + 2];
	char key[64];                  /* the generated cmd id */
};

struct reply {
	char *p;
	size_t len;
	int too_big;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [entry] --kind fix|change|feature --title TITLE [--body TEXT | --body-file F]\n"
"       " PROG " comment --entry ID [--parent ID] (--body TEXT | --body-file F)\n"
"       " PROG " status --entry ID --status open|resolved|cancelled|reopened\n"
"                      [--expected-version V]\n"
"  with: --url https://HOST:PORT [--token-file F] [--cmd-id ID] [--cacert F | --insecure]\n"
"        [--retries N] [--timeout SECS]\n"
"\n"
"Adds an entry (the default), a comment or a status change to a changelogd\n"
"through its HTTP API and prints the new entry's (comment's) id on stdout.\n"
"\n"
"  --url BASE         the server, https://changelog.example.com:8443\n"
"  --token-file F     read the token from F (default: $CHANGELOG_TOKEN)\n"
"  --kind K           entry: fix, change or feature\n"
"  --title T          entry: its title\n"
"  --body TEXT        entry or comment text\n"
"  --body-file F      ... read from F (- is stdin)\n"
"  --entry ID         comment, status: the entry\n"
"  --parent ID        comment: reply to this comment\n"
"  --status S         status: the new status\n"
"  --expected-version V  status: refuse (conflict) if the entry changed since V\n"
"  --cmd-id ID        the command id (Idempotency-Key); default: a random one,\n"
"                     kept for every retry of this run\n"
"  --cacert F         trust the server certificate(s) in F (PEM)\n"
"  --insecure         do not check the server's certificate (tests only)\n"
"  --retries N        retries when there is no answer, 429 or 503 (default 5;\n"
"                     1 s, 2 s, 4 s, ... apart, at most 30 s)\n"
"  --timeout SECS     one attempt, connect to answer (default 30)\n"
"  -h, --help         this text\n"
"  --version          the release and the libraries it runs with\n"
"\n"
"Exit status: 0 done, 1 refused or unreachable (the reason on stderr), 2 bad usage.\n");
}

/* The first line of path (or stdin for "-") into a malloc'd string of at
 * most max bytes; NULL with a message. */
static char *read_text(const char *path, size_t max, const char *what)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		cli_msg(PROG, "cannot read the %s from %s (%s)", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(max + 2);
	n = buf ? fread(buf, 1, max + 1, f) : 0;
	if (f != stdin)
		fclose(f);
	if (!buf) {
		cli_msg(PROG, "out of memory");
		return NULL;
	}
	if (n > max) {
		cli_msg(PROG, "the %s in %s is longer than %zu bytes", what, path, max);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static int load_token(struct post *p)
{
	const char *env = getenv("CHANGELOG_TOKEN");
	char *t;
	size_t n;

	if (p->token_file) {
		if (!(t = read_text(p->token_file, POST_MAX_TOKEN, "token")))
			return EXIT_FAIL;
	} else if (env && *env) {
		if (strlen(env) > POST_MAX_TOKEN) {
			cli_msg(PROG, "$CHANGELOG_TOKEN is longer than %d bytes", POST_MAX_TOKEN);
			return EXIT_USAGE;
		}
		t = strdup(env);
	} else {
		cli_msg(PROG, "no token: give --token-file F or set CHANGELOG_TOKEN");
		return EXIT_USAGE;
	}
	if (!t)
		return EXIT_FAIL;
	n = strcspn(t, "\r\n");
	t[n] = '\0';
	memcpy(p->token, t, n + 1);
	OPENSSL_cleanse(t, strlen(t));
	free(t);
	if (!p->token[0]) {
		cli_msg(PROG, "the token is empty");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static size_t on_data(char *d, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t len = size * n;
	char *np;

	if (r->len + len > POST_MAX_REPLY) {
		r->too_big = 1;
		return 0;                  /* stops the transfer */
	}
	if (!(np = realloc(r->p, r->len + len + 1)))
		return 0;
	r->p = np;
	memcpy(r->p + r->len, d, len);
	r->len += len;
	r->p[r->len] = '\0';
	return len;
}

/* Retry-After in seconds from a header line, into *secs. */
static size_t on_header(char *d, size_t size, size_t n, void *arg)
{
	long *secs = arg;
	size_t len = size * n;

	if (len > 12 && strncasecmp(d, "Retry-After:", 12) == 0)
		*secs = strtol(d + 12, NULL, 10);
	return len;
}

/*
 * One POST of body to BASE/api/v1/commands/name. *status: the HTTP status
 * (0: no answer, then *why says what went wrong). *retry_after: seconds.
 */
static void post_once(const struct post *p, const char *name, const char *body,
		      struct reply *r, long *status, long *retry_after, char *why, size_t whylen,
		      int *permanent)
{
	char url[4200], auth[POST_MAX_TOKEN + 32], key[200];
	struct curl_slist *h = NULL;
	CURL *c = curl_easy_init();
	CURLcode rc;
	size_t n = strlen(p->url);

	*status = 0;
	*retry_after = 0;
	*permanent = 0;
	if (!c) {
		snprintf(why, whylen, "libcurl does not start");
		return;
	}
	while (n && p->url[n - 1] == '/')
		n--;
	snprintf(url, sizeof url, "%.*s/api/v1/commands/%s", (int)n, p->url, name);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->token);
	snprintf(key, sizeof key, "Idempotency-Key: %s", p->cmd_id);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, key);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, PROG "/" CL_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)p->timeout);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, retry_after);
	if (p->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, p->cacert);
	if (p->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	else if (r->too_big)
		snprintf(why, whylen, "the reply is longer than %u bytes", POST_MAX_REPLY);
	else
		snprintf(why, whylen, "%s%s", curl_easy_strerror(rc),
			 rc == CURLE_PEER_FAILED_VERIFICATION ? "; give the server's certificate "
			 "with --cacert" : "");
	/* what another attempt cannot change: not retried */
	*permanent = r->too_big || rc == CURLE_PEER_FAILED_VERIFICATION ||
		     rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
		     rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
		     rc == CURLE_COULDNT_RESOLVE_HOST;
	curl_slist_free_all(h);
	OPENSSL_cleanse(auth, sizeof auth);
	curl_easy_cleanup(c);
}

/* Run command name with params (stolen); print reply[field]. */
static int run(struct post *p, const char *name, json_t *params, const char *field)
{
	char *body = params ? json_dumps(params, JSON_COMPACT) : NULL;
	unsigned wait = 1;
	int attempt, rc = EXIT_FAIL;

	json_decref(params);
	if (!body) {
		cli_msg(PROG, "out of memory");
		return EXIT_FAIL;
	}
	for (attempt = 0; attempt <= p->retries; attempt++) {
		struct reply r = { NULL, 0, 0 };
		char why[CURL_ERROR_SIZE + 64] = "";
		long status, retry_after;
		json_t *j, *err;
		int permanent;

		post_once(p, name, body, &r, &status, &retry_after, why, sizeof why, &permanent);
		j = r.p ? json_loads(r.p, 0, NULL) : NULL;
		if (status == 200 && json_is_true(json_object_get(j, "ok"))) {
			json_t *v = json_object_get(j, field);

			if (json_is_integer(v)) {
				printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
				rc = EXIT_OK;
			} else {
				cli_msg(PROG, "the server's reply has no \"%s\"", field);
			}
			json_decref(j);
			free(r.p);
			break;
		}
		err = json_object_get(j, "error");
		if (status && status != 429 && status != 503) {
			if (json_is_object(err))
				cli_msg(PROG, "refused (%s, HTTP %ld): %s",
					json_string_value(json_object_get(err, "code")), status,
					json_string_value(json_object_get(err, "message")));
			else
				cli_msg(PROG, "refused (HTTP %ld)", status);
			json_decref(j);
			free(r.p);
			break;
		}
		if (!status)
			cli_msg(PROG, "no answer from %s (%s)", p->url, why);
		else
			cli_msg(PROG, "the server is busy (HTTP %ld%s%s)", status,
				json_is_object(err) ? ": " : "",
				json_is_object(err) ? json_string_value(json_object_get(err, "message"))
						    : "");
		json_decref(j);
		free(r.p);
		if (permanent)
			break;
		if (attempt == p->retries) {
			cli_msg(PROG, "giving up after %d attempts; the same --cmd-id %s applies it "
				"at most once if you run it again", attempt + 1, p->cmd_id);
			break;
		}
		{
			unsigned s = retry_after > 0 ? (unsigned)(retry_after < 60 ? retry_after : 60)
						     : wait;

			cli_msg(PROG, "retrying in %u s with the same Idempotency-Key %s (%d of %d)", s,
				p->cmd_id, attempt + 1, p->retries);
			sleep(s);
			wait = wait < 16 ? wait * 2 : 30;
		}
	}
	free(body);
	return rc;
}

static int parse_id(const char *s, const char *flag, json_int_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < 1) {
		cli_msg(PROG, "%s wants a positive integer (got \"%s\")", flag, s ? s : "");
		return EXIT_USAGE;
	}
	*out = (json_int_t)v;
	return EXIT_OK;
}

/* The text of --body or --body-file (malloc'd), or NULL with *rc set. */
static char *body_of(const struct post *p, int required, int *rc)
{
	*rc = EXIT_OK;
	if (p->body && p->body_file) {
		cli_msg(PROG, "give --body or --body-file, not both");
		*rc = EXIT_USAGE;
		return NULL;
	}
	if (p->body_file) {
		char *t = read_text(p->body_file, POST_MAX_BODY, "body");

		if (!t)
			*rc = EXIT_FAIL;
		return t;
	}
	if (p->body)
		return strdup(p->body);
	if (required) {
		cli_msg(PROG, "a comment needs --body TEXT or --body-file F");
		*rc = EXIT_USAGE;
	}
	return NULL;
}

static int cmd_entry(struct post *p)
{
	char *body;
	json_t *params;
	int rc;

	if (!p->kind || !p->title) {
		cli_msg(PROG, "an entry needs --kind fix|change|feature and --title TITLE");
		return EXIT_USAGE;
	}
	body = body_of(p, 0, &rc);
	if (rc)
		return rc;
	params = json_pack("{s:s,s:s}", "kind", p->kind, "title", p->title);
	if (params && body && json_object_set_new(params, "body", json_string(body))) {
		json_decref(params);
		params = NULL;
	}
	free(body);
	return run(p, "createEntry", params, "entry");
}

static int cmd_comment(struct post *p)
{
	json_int_t entry, parent = 0;
	json_t *params;
	char *body;
	int rc;

	if ((rc = parse_id(p->entry, "--entry", &entry)) ||
	    (p->parent && (rc = parse_id(p->parent, "--parent", &parent))))
		return rc;
	if (!(body = body_of(p, 1, &rc)))
		return rc ? rc : EXIT_FAIL;
	params = json_pack("{s:I,s:s}", "entry", entry, "body", body);
	free(body);
	if (params && parent && json_object_set_new(params, "parent", json_integer(parent))) {
		json_decref(params);
		params = NULL;
	}
	return run(p, "addComment", params, "comment");
}

static int cmd_status(struct post *p)
{
	json_int_t entry, version = 0;
	json_t *params;
	int rc;

	if ((rc = parse_id(p->entry, "--entry", &entry)) ||
	    (p->expected_version &&
	     (rc = parse_id(p->expected_version, "--expected-version", &version))))
		return rc;
	if (!p->status) {
		cli_msg(PROG, "status needs --status open|resolved|cancelled|reopened");
		return EXIT_USAGE;
	}
	params = json_pack("{s:I,s:s}", "entry", entry, "status", p->status);
	if (params && version &&
	    json_object_set_new(params, "expected_version", json_integer(version))) {
		json_decref(params);
		params = NULL;
	}
	return run(p, "setStatus", params, "entry");
}

/* --name VALUE options: name and where it goes. */
struct opt {
	const char *name;
	size_t off;
};
#define O(n, f) { n, offsetof(struct post, f) }

int main(int argc, char **argv)
{
	static const struct opt opts[] = {
		O("--url", url), O("--token-file", token_file), O("--cacert", cacert),
		O("--cmd-id", cmd_id), O("--kind", kind), O("--title", title), O("--body", body),
		O("--body-file", body_file), O("--status", status), O("--entry", entry),
		O("--parent", parent), O("--expected-version", expected_version),
	};
	struct post p;
	const char *sub = NULL, *retries = NULL, *timeout = NULL;
	uint8_t rnd[16];
	int i, rc;

	memset(&p, 0, sizeof p);
	p.retries = 5;
	p.timeout = 30;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		}
		if (strcmp(a, "--version") == 0) {
			struct cl_libver v[CL_LIBVER_MAX];
			size_t nv = store_libvers(v, 0);

			nv = cl_libver_add(v, nv, "libcurl", curl_version_info(CURLVERSION_NOW)->version);
			cl_version_print(stdout, PROG, v, nv);
			return EXIT_OK;
		}
		if (strcmp(a, "--insecure") == 0) {
			p.insecure = 1;
			continue;
		}
		if (strcmp(a, "--retries") == 0 || strcmp(a, "--timeout") == 0) {
			if (i + 1 == argc) {
				cli_msg(PROG, "%s wants a value (see --help)", a);
				return EXIT_USAGE;
			}
			*(a[2] == 'r' ? &retries : &timeout) = argv[++i];
			continue;
		}
		for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
			if (strcmp(a, opts[k].name) == 0)
				break;
		if (k < sizeof opts / sizeof opts[0]) {
			if (i + 1 == argc) {
				cli_msg(PROG, "%s wants a value (see --help)", a);
				return EXIT_USAGE;
			}
			*(const char **)((char *)&p + opts[k].off) = argv[++i];
			continue;
		}
		if (a[0] == '-' || sub) {
			cli_msg(PROG, "unknown argument \"%s\" (see --help)", a);
			return EXIT_USAGE;
		}
		sub = a;
	}
	if (retries) {
		char *end;
		long v = strtol(retries, &end, 10);

		if (!*retries || *end || v < 0 || v > 20) {
			cli_msg(PROG, "--retries wants 0..20 (got \"%s\")", retries);
			return EXIT_USAGE;
		}
		p.retries = (int)v;
	}
	if (timeout) {
		char *end;
		long v = strtol(timeout, &end, 10);

		if (!*timeout || *end || v < 1 || v > 3600) {
			cli_msg(PROG, "--timeout wants 1..3600 seconds (got \"%s\")", timeout);
			return EXIT_USAGE;
		}
		p.timeout = (int)v;
	}
	if (sub && strcmp(sub, "entry") != 0 && strcmp(sub, "comment") != 0 &&
	    strcmp(sub, "status") != 0) {
		cli_msg(PROG, "unknown command \"%s\": entry (the default), comment or status", sub);
		return EXIT_USAGE;
	}
	if (!p.url || (strncmp(p.url, "https://", 8) != 0 && strncmp(p.url, "http://", 7) != 0)) {
		cli_msg(PROG, "--url wants the server's address, https://HOST:PORT");
		return EXIT_USAGE;
	}
	if (p.cmd_id && (!*p.cmd_id || strlen(p.cmd_id) > 128 || strpbrk(p.cmd_id, "\r\n"))) {
		cli_msg(PROG, "--cmd-id wants 1..128 bytes on one line");
		return EXIT_USAGE;
	}
	if (p.insecure && p.cacert) {
		cli_msg(PROG, "give --cacert or --insecure, not both");
		return EXIT_USAGE;
	}
	if ((rc = load_token(&p)) != 0)
		return rc;
	if (!p.cmd_id) {
		static const char digits[] = "0123456789abcdef";

		if (token_random(rnd, sizeof rnd)) {
			cli_msg(PROG, "cannot make a command id (no randomness)");
			return EXIT_FAIL;
		}
		memcpy(p.key, "post-", 5);
		for (i = 0; i < 16; i++) {
			p.key[5 + 2 * i] = digits[rnd[i] >> 4];
			p.key[6 + 2 * i] = digits[rnd[i] & 15];
		}
		p.key[37] = '\0';
		p.cmd_id = p.key;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cli_msg(PROG, "libcurl does not start");
		return EXIT_FAIL;
	}
	if (!sub || strcmp(sub, "entry") == 0)
		rc = cmd_entry(&p);
	else if (strcmp(sub, "comment") == 0)
		rc = cmd_comment(&p);
	else
		rc = cmd_status(&p);
	OPENSSL_cleanse(p.token, sizeof p.token);
	curl_global_cleanup();
	return rc;
}
