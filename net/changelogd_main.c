/*
 * changelogd_main.c - the changelogd command line: read the config file
 * (net/config.c), then the flags, which win over it; check them, then hand
 * over to srv_run (net/server.c). docs/operations.md describes every flag;
 * --help prints the same list and docs/man/changelogd.8.scd documents it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "libver.h"
#include "server.h"
#include "tlsreload.h"

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

static void usage(FILE *f)
{
	fprintf(f,
"usage: changelogd [--config FILE] [--data DIR] [options]\n"
"\n"
"Serves the changelog in DIR over wss:// (JSON text frames), plus\n"
"GET /healthz, GET /metrics and the web UI on the same port.\n"
"On first start in an empty DIR it creates the log, a self-signed\n"
"certificate (DIR/tls) and the first admin, and prints the admin token.\n"
"\n"
"  --config FILE       settings file (default " CFG_DEFAULT_PATH ",\n"
"                      read if present): the long flags below without\n"
"                      their --, one \"name = value\" a line; flags win\n"
"  --check-config      check the settings file (and the certificate and key\n"
"                      it names), say ok or the line of the first error\n"
"  --data DIR          data directory (required here or in the file)\n"
"  --listen HOST:PORT  address to listen on (default 127.0.0.1:8443)\n"
"  --cert FILE         TLS certificate chain (PEM); with --key\n"
"  --key FILE          TLS private key (PEM)\n"
"  --plain             serve ws:// without TLS (behind a TLS proxy only)\n"
"  --admin-name NAME   name of the first admin on a new log (default admin)\n"
"  --web DIR           web UI directory (default <bin>/../web if present)\n"
"  --no-web            do not serve the web UI\n"
"  --allow-origin LIST browsers may connect only from these comma-separated\n"
"                      origins (e.g. https://changelog.example.com); clients\n"
"                      that send no Origin header are not affected\n"
"  --max-conns N       websocket sessions; more get HTTP 503 (default 10000)\n"
"  --max-msg BYTES     largest inbound message; more closes 1009 (default 64K)\n"
"  --rate N            requests per second per connection (default 100)\n"
"  --burst N           request burst per connection (default 200)\n"
"  --user-rate N       requests per second per user, all its connections\n"
"                      together (default 200)\n"
"  --user-burst N      request burst per user (default 400)\n"
"  --max-queue BYTES   outbound bytes owed to one session (default 8M)\n"
"  --max-memory BYTES  outbound bytes owed to all sessions (default 512M)\n"
"  --ring N            recent pushes kept in memory (default 4096 events)\n"
"  --ring-bytes BYTES  ... and at most this many bytes (default 64M)\n"
"  --sndbuf BYTES      SO_SNDBUF per socket (default: the kernel's)\n"
"  --ping SECS         websocket ping after SECS without a pong (default 30)\n"
"  --pong-timeout SECS hang up if the pong is SECS late (default 10)\n"
"  --handshake-timeout SECS  TLS + upgrade must finish in SECS (default 10)\n"
"  --map-size BYTES    fix the log's LMDB map at BYTES: writes past it are\n"
"                      refused as unavailable (default: 1G, grown as needed)\n"
"  --nats URL          publish every committed event to NATS JetStream\n"
"                      (nats://HOST:PORT, comma-separated for a cluster)\n"
"  --nats-stream NAME  the stream (default changelog; subject NAME.events)\n"
"  --nats-creds FILE   NATS credentials (.creds) file\n"
"  --nats-replicas N   replicas of a stream it creates (1..5, default 1)\n"
"  --nats-max-msgs N   ... keeping at most N events (default: all)\n"
"  --nats-max-bytes BYTES  ... and at most BYTES (default: all)\n"
"  --edge              a read-only edge node: its log in DIR is a copy of the\n"
"                      writer's, fed from the --nats stream\n"
"  --forward-max N     commands an edge forwards to the writer at once (256)\n"
"  --forward-user-max N  ... of one user (8)\n"
"  --forward-timeout SECS  an edge's wait for the writer's reply (5)\n"
"  --session-days N    a browser stays signed in N days (default 30)\n"
"  --webhook-timeout SECS  one webhook request, connect to answer (default 10)\n"
"  --webhook-retry-min MS  first retry of a failed webhook request (default 1000)\n"
"  --webhook-retry-max MS  retries double up to this (default 600000: 10 min)\n"
"  --nosync            no fsync on commit (benchmarks only: loses data on\n"
"                      power failure)\n"
"  -v, --verbose       debug logging\n"
"  -h, --help          this text\n"
"  --version           the release and the libraries it runs with\n"
"\n"
"BYTES take a K, M or G suffix (powers of 1024). SIGHUP reloads the\n"
"certificate and key; SIGTERM and SIGINT stop cleanly.\n");
}

/* --nats: one URL or "a,b,c" (net/natsconn.c hands a list to libnats) */
static int nats_urls_ok(const char *arg)
{
	const char *p = arg;
	int n = 0;

	if (strlen(arg) >= 4096)
		return 0;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && *p == ' ')
			p++, len--;
		if (++n > 16 || !((len > 7 && strncmp(p, "nats://", 7) == 0) ||
				  (len > 6 && strncmp(p, "tls://", 6) == 0)))
			return 0;
		if (!end)
			return 1;
		p = end + 1;
	}
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_bytes(const char *s, size_t max, size_t *out)
{
	char buf[32], *end;
	size_t len = strlen(s), mult = 1;
	unsigned long long v;

	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len + 1);
	switch (buf[len - 1]) {
	case 'k': case 'K': mult = KIB; buf[--len] = '\0'; break;
	case 'm': case 'M': mult = MIB; buf[--len] = '\0'; break;
	case 'g': case 'G': mult = GIB; buf[--len] = '\0'; break;
	default: break;
	}
	if (len == 0 || buf[0] == '-')
		return -1;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || *end || v > max / mult || v * mult > max)
		return -1;
	*out = (size_t)(v * mult);
	return 0;
}

#define LISTEN_MAX 256

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT". host points into copy
 * (LISTEN_MAX bytes, the caller's). */
static int parse_listen(const char *s, char copy[LISTEN_MAX], const char **host, int *port)
{
	unsigned long long p;
	char *colon;

	if (strlen(s) >= LISTEN_MAX)
		return -1;
	memcpy(copy, s, strlen(s) + 1);
	if (copy[0] == '[') {
		char *close = strchr(copy, ']');

		if (!close || close[1] != ':')
			return -1;
		*close = '\0';
		*host = copy + 1;
		colon = close + 1;
	} else {
		colon = strrchr(copy, ':');
		if (!colon) {
			*host = NULL;
			colon = copy - 1;   /* the whole string is the port */
		} else {
			*colon = '\0';
			*host = copy[0] ? copy : NULL;
		}
	}
	if (parse_u64(colon + 1, 65535, &p) || p == 0)
		return -1;
	*port = (int)p;
	return 0;
}

enum {
	OPT_DATA = 256, OPT_LISTEN, OPT_CERT, OPT_KEY, OPT_PLAIN, OPT_ADMIN, OPT_WEB,
	OPT_NOWEB, OPT_ORIGIN, OPT_MAXCONNS, OPT_MAXMSG, OPT_RATE, OPT_BURST, OPT_MAXQUEUE,
	OPT_MAXMEM, OPT_RING, OPT_RINGBYTES, OPT_SNDBUF, OPT_PING, OPT_PONG, OPT_HANDSHAKE,
	OPT_NOSYNC, OPT_CONFIG, OPT_CHECK, OPT_VERSION, OPT_MAPSIZE, OPT_SESSDAYS,
	OPT_NATS, OPT_NATS_STREAM, OPT_NATS_CREDS, OPT_NATS_REPLICAS, OPT_NATS_MAXMSGS,
	OPT_NATS_MAXBYTES, OPT_EDGE, OPT_FWDMAX, OPT_FWDUSER, OPT_FWDSECS,
	OPT_USERRATE, OPT_USERBURST, OPT_HOOK_TIMEOUT, OPT_HOOK_MIN, OPT_HOOK_MAX,
};

static const struct option longopts[] = {
	{ "data", required_argument, NULL, OPT_DATA },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "plain", no_argument, NULL, OPT_PLAIN },
	{ "admin-name", required_argument, NULL, OPT_ADMIN },
	{ "web", required_argument, NULL, OPT_WEB },
	{ "no-web", no_argument, NULL, OPT_NOWEB },
	{ "allow-origin", required_argument, NULL, OPT_ORIGIN },
	{ "max-conns", required_argument, NULL, OPT_MAXCONNS },
	{ "max-msg", required_argument, NULL, OPT_MAXMSG },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "burst", required_argument, NULL, OPT_BURST },
	{ "user-rate", required_argument, NULL, OPT_USERRATE },
	{ "user-burst", required_argument, NULL, OPT_USERBURST },
	{ "max-queue", required_argument, NULL, OPT_MAXQUEUE },
	{ "max-memory", required_argument, NULL, OPT_MAXMEM },
	{ "ring", required_argument, NULL, OPT_RING },
	{ "ring-bytes", required_argument, NULL, OPT_RINGBYTES },
	{ "sndbuf", required_argument, NULL, OPT_SNDBUF },
	{ "ping", required_argument, NULL, OPT_PING },
	{ "pong-timeout", required_argument, NULL, OPT_PONG },
	{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
	{ "nosync", no_argument, NULL, OPT_NOSYNC },
	{ "map-size", required_argument, NULL, OPT_MAPSIZE },
	{ "nats", required_argument, NULL, OPT_NATS },
	{ "nats-stream", required_argument, NULL, OPT_NATS_STREAM },
	{ "nats-creds", required_argument, NULL, OPT_NATS_CREDS },
	{ "nats-replicas", required_argument, NULL, OPT_NATS_REPLICAS },
	{ "nats-max-msgs", required_argument, NULL, OPT_NATS_MAXMSGS },
	{ "nats-max-bytes", required_argument, NULL, OPT_NATS_MAXBYTES },
	{ "edge", no_argument, NULL, OPT_EDGE },
	{ "forward-max", required_argument, NULL, OPT_FWDMAX },
	{ "forward-user-max", required_argument, NULL, OPT_FWDUSER },
	{ "forward-timeout", required_argument, NULL, OPT_FWDSECS },
	{ "session-days", required_argument, NULL, OPT_SESSDAYS },
	{ "webhook-timeout", required_argument, NULL, OPT_HOOK_TIMEOUT },
	{ "webhook-retry-min", required_argument, NULL, OPT_HOOK_MIN },
	{ "webhook-retry-max", required_argument, NULL, OPT_HOOK_MAX },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "check-config", no_argument, NULL, OPT_CHECK },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* Not settable from the file: they say which file, or do no serving. */
static const char *const not_in_file[] = { "config", "check-config", "help", "version", NULL };

/* One option, from the command line or the file (cfg_apply_fn); NULL if ok. */
/* What apply() fills: the options, and the buffer o->host points into. */
struct apply_ctx {
	struct srv_opts *o;
	char *listen_copy;         /* LISTEN_MAX bytes, alive as long as o */
};

static const char *apply(void *ctx, int c, const char *arg)
{
	struct apply_ctx *ac = ctx;
	struct srv_opts *o = ac->o;
	unsigned long long v = 0;
	size_t b = 0;
	const char *bad = NULL;

	switch (c) {
	case OPT_DATA: o->data_dir = arg; break;
	case OPT_LISTEN:
		if (parse_listen(arg, ac->listen_copy, &o->host, &o->port))
			bad = "--listen wants HOST:PORT";
		break;
	case OPT_CERT: o->cert = arg; break;
	case OPT_KEY: o->key = arg; break;
	case OPT_PLAIN: o->plain = 1; break;
	case OPT_ADMIN: o->admin_name = arg; break;
	case OPT_WEB: o->web_dir = arg; break;
	case OPT_NOWEB: o->web_dir = ""; break;
	case OPT_ORIGIN: o->allow_origin = arg; break;
	case OPT_MAXCONNS:
		if (parse_u64(arg, 1000000, &v) || v == 0)
			bad = "--max-conns wants 1..1000000";
		o->max_conns = (unsigned)v;
		break;
	case OPT_MAXMSG:
		if (parse_bytes(arg, 64 * MIB, &b) || b < 1024)
			bad = "--max-msg wants 1K..64M";
		o->max_msg = b;
		break;
	case OPT_RATE:
		if (parse_u64(arg, 1000000, &v) || v == 0)
			bad = "--rate wants 1..1000000";
		o->rate = (double)v;
		break;
	case OPT_BURST:
		if (parse_u64(arg, 1000000, &v) || v == 0)
			bad = "--burst wants 1..1000000";
		o->burst = (double)v;
		break;
	case OPT_USERRATE:
		if (parse_u64(arg, 1000000, &v) || v == 0)
			bad = "--user-rate wants 1..1000000";
		o->user_rate = (double)v;
		break;
	case OPT_USERBURST:
		if (parse_u64(arg, 1000000, &v) || v == 0)
			bad = "--user-burst wants 1..1000000";
		o->user_burst = (double)v;
		break;
	case OPT_MAXQUEUE:
		if (parse_bytes(arg, 64 * GIB, &b) || b < 4096)
			bad = "--max-queue wants 4K..64G";
		o->max_queue = b;
		break;
	case OPT_MAXMEM:
		if (parse_bytes(arg, 1024 * GIB, &b) || b < 4096)
			bad = "--max-memory wants 4K..1024G";
		o->max_memory = b;
		break;
	case OPT_RING:
		if (parse_u64(arg, 1 << 24, &v) || v < 16)
			bad = "--ring wants 16..16777216";
		o->ring_events = (size_t)v;
		break;
	case OPT_RINGBYTES:
		if (parse_bytes(arg, 64 * GIB, &b) || b < 4096)
			bad = "--ring-bytes wants 4K..64G";
		o->ring_bytes = b;
		break;
	case OPT_SNDBUF:
		if (parse_bytes(arg, 256 * MIB, &b) || b < 4096)
			bad = "--sndbuf wants 4K..256M";
		o->sndbuf = (int)b;
		break;
	case OPT_PING:
		if (parse_u64(arg, 3600, &v) || v < 1)
			bad = "--ping wants 1..3600 seconds";
		o->ping_secs = (int)v;
		break;
	case OPT_PONG:
		if (parse_u64(arg, 3600, &v) || v < 1)
			bad = "--pong-timeout wants 1..3600 seconds";
		o->pong_secs = (int)v;
		break;
	case OPT_HANDSHAKE:
		if (parse_u64(arg, 3600, &v) || v < 1)
			bad = "--handshake-timeout wants 1..3600 seconds";
		o->handshake_secs = (int)v;
		break;
	case OPT_NOSYNC: o->nosync = 1; break;
	case OPT_MAPSIZE:
		if (parse_bytes(arg, 64 * 1024 * GIB, &b) || b < 64 * KIB)
			bad = "--map-size wants 64K..64T";
		o->map_size = b;
		break;
	case OPT_NATS:
		if (!nats_urls_ok(arg))
			bad = "--nats wants nats://HOST:PORT (or tls://), or a comma-separated "
			      "list of at most 16 of them";
		o->nats.url = arg;
		break;
	case OPT_NATS_STREAM: o->nats.stream = arg; break;
	case OPT_NATS_CREDS: o->nats.creds = arg; break;
	case OPT_NATS_REPLICAS:
		if (parse_u64(arg, 5, &v) || v == 0)
			bad = "--nats-replicas wants 1..5";
		o->nats.replicas = (int)v;
		break;
	case OPT_NATS_MAXMSGS:
		if (parse_u64(arg, (unsigned long long)INT64_MAX, &v) || v == 0)
			bad = "--nats-max-msgs wants a count of at least 1";
		o->nats.max_msgs = (int64_t)v;
		break;
	case OPT_NATS_MAXBYTES:
		if (parse_bytes(arg, (size_t)INT64_MAX, &b) || b < MIB)
			bad = "--nats-max-bytes wants 1M or more";
		o->nats.max_bytes = (int64_t)b;
		break;
	case OPT_EDGE: o->edge = 1; break;
	case OPT_FWDMAX:
		if (parse_u64(arg, 65536, &v) || v < 1)
			bad = "--forward-max wants 1..65536";
		o->fwd_max = (unsigned)v;
		break;
	case OPT_FWDUSER:
		if (parse_u64(arg, 65536, &v) || v < 1)
			bad = "--forward-user-max wants 1..65536";
		o->fwd_user_max = (unsigned)v;
		break;
	case OPT_FWDSECS:
		if (parse_u64(arg, 600, &v) || v < 1)
			bad = "--forward-timeout wants 1..600 seconds";
		o->fwd_secs = (int)v;
		break;
	case OPT_SESSDAYS:
		if (parse_u64(arg, 3650, &v) || v < 1)
			bad = "--session-days wants 1..3650";
		o->session_days = (int)v;
		break;
	case OPT_HOOK_TIMEOUT:
		if (parse_u64(arg, 600, &v) || v < 1)
			bad = "--webhook-timeout wants 1..600 seconds";
		o->webhook_timeout_ms = (long)v * 1000;
		break;
	case OPT_HOOK_MIN:
		if (parse_u64(arg, 3600000, &v) || v < 10)
			bad = "--webhook-retry-min wants 10..3600000 milliseconds";
		o->webhook_retry_min_ms = (long)v;
		break;
	case OPT_HOOK_MAX:
		if (parse_u64(arg, 86400000, &v) || v < 10)
			bad = "--webhook-retry-max wants 10..86400000 milliseconds";
		o->webhook_retry_max_ms = (long)v;
		break;
	case 'v': o->verbose = 1; break;
	default: bad = "not a setting"; break;
	}
	return bad;
}

int main(int argc, char **argv)
{
	struct srv_opts o = {
		.host = "127.0.0.1", .port = 8443, .admin_name = "admin",
		.max_conns = 10000, .max_msg = 64 * KIB, .rate = 100, .burst = 200,
		.user_rate = 200, .user_burst = 400,
		.max_queue = 8 * MIB, .max_memory = 512 * MIB,
		.ring_events = 4096, .ring_bytes = 64 * MIB, .ping_secs = 30,
		.pong_secs = 10, .handshake_secs = 10, .session_days = 30,
		.webhook_timeout_ms = 10000, .webhook_retry_min_ms = 1000,
		.webhook_retry_max_ms = 600000,
		.nats = { .stream = "changelog", .replicas = 1, .max_msgs = -1, .max_bytes = -1 },
		.fwd_max = 256, .fwd_user_max = 8, .fwd_secs = 5,
	};
	char listen_copy[LISTEN_MAX];   /* o.host points into it */
	struct apply_ctx ac = { &o, listen_copy };
	const char *config = NULL, *path;
	struct cfg cfg = { NULL };
	char err[8400];
	int c, check = 0, rc;

	/*
	 * Big buffers (an answer of up to 16 MiB, its frame) from mmap, always:
	 * glibc would otherwise raise the threshold after the first such free
	 * and keep later ones in the heap, holding memory --max-memory counts
	 * as returned (docs/operations.md "Memory").
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* pass 1: which file, and the flags that do no serving */
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG: config = optarg; break;
		case OPT_CHECK: check = 1; break;
		case 'h': usage(stdout); return 0;
		case OPT_VERSION: net_version_print("changelogd"); return 0;
		case '?': usage(stderr); return 2;
		default: break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "changelogd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* the file (a missing default file is no file), then pass 2: the
	 * command line over it */
	path = config ? config : CFG_DEFAULT_PATH;
	rc = cfg_load(&cfg, path, longopts, not_in_file, apply, &ac, err, sizeof err);
	if (rc == CFG_ENOFILE && !config && !check) {
		path = NULL;
	} else if (rc) {
		fprintf(stderr, "changelogd: %s\n", err);
		cfg_free(&cfg);
		return 2;
	}
	optind = 0;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		const char *bad;

		if (c == OPT_CONFIG || c == OPT_CHECK)
			continue;
		if ((bad = apply(&ac, c, optarg)) != NULL) {
			fprintf(stderr, "changelogd: %s (got \"%s\")\n", bad, optarg ? optarg : "");
			cfg_free(&cfg);
			return 2;
		}
	}
	rc = 0;
	if (!o.data_dir || !*o.data_dir) {
		fprintf(stderr, "changelogd: --data DIR is required (or data = DIR in %s)\n",
			path ? path : CFG_DEFAULT_PATH);
		if (!check)
			usage(stderr);
		rc = 2;
	} else if (o.edge && !o.nats.url) {
		fprintf(stderr, "changelogd: --edge needs --nats URL (the writer's stream)\n");
		rc = 2;
	} else if ((o.cert == NULL) != (o.key == NULL)) {
		fprintf(stderr, "changelogd: --cert and --key go together\n");
		rc = 2;
	} else if (check && o.cert && tlsr_check(o.cert, o.key, err, sizeof err)) {
		fprintf(stderr, "changelogd: %s\n", err);
		rc = 1;
	} else if (check) {
		printf("changelogd: %s: ok\n", path);
	} else {
		rc = srv_run(&o);
	}
	cfg_free(&cfg);
	return rc;
}
