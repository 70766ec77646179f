/*
 * bench_main.c - changelog-bench: a load client for changelogd (and for the
 * peer servers of tests/bench/peers, which speak the same JSON subset).
 *
 * It owns nothing but measurement. One thread, one libwebsockets client
 * context, N subscribing + M writing + K reading connections over wss on
 * loopback. Subscribers check that every event arrives once and in seq order
 * (gaps, duplicates, undelivered are counted and must be 0). Writers send
 * createEntry with the send time (CLOCK_MONOTONIC ns) in the title, so the
 * subscriber that receives the push computes write->delivered latency
 * without any shared table. Readers run getChangelogEntries closed loop.
 *
 * Shape: replies and acks are parsed with jansson; push frames, which are
 * the hot path (1,000 subscribers x every event), are scanned for
 * `{"op":"event","seq":` and the bench title instead of being parsed: the
 * server writes them with jansson in insertion order, and the Node peer with
 * JSON.stringify in the same order. Latencies go into fixed histograms
 * (1 us buckets to 10 ms, 1 ms buckets to 10 s), so memory is bounded
 * whatever the run length. Everything is capped: connections, duration,
 * rate, depth; non-loopback hosts are refused.
 *
 * --nats drives a NATS server's WebSocket listener instead (the second
 * fan-out peer): CONNECT, SUB, PUB + PING, MSG, PONG over the same lws
 * connections. A subscriber is ready at its first PONG (the SUB is in);
 * a writer's PUB is acknowledged by the PONG that follows it (NATS answers
 * in order, after it has queued the message to every subscriber). NATS has
 * no seq: the one writer numbers its messages, whose payload has the shape
 * and about the size of changelogd's push, so the same scan checks them.
 *
 * Server-side figures, independent of this client: the server's CPU (utime
 * + stime from /proc/PID/stat) over the run and drain, the kernel's TCP
 * socket memory (/proc/net/sockstat) next to the server's RSS, and with
 * --perf-syscalls the server's syscalls over the same span, counted by
 * `perf stat` on its pid (tracepoints: no ptrace, little overhead).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>

#include <openssl/crypto.h>

#define MAX_SUBS 20000
#define MAX_WRITERS 1024
#define MAX_READERS 1024
#define MAX_DEPTH 64
#define MAX_DURATION 600
#define MAX_FRAME (16u * 1024 * 1024)
#define CONNECT_WINDOW 64
#define TICK_US 20000
#define DRAIN_S 30.0   /* a client on one pinned core may lag seconds behind */
#define CONNECT_TIMEOUT_S 180.0   /* 10,000 TLS handshakes on a loaded 2-core VM */
#define TITLE_TAG "bench "

enum role { ROLE_SUB, ROLE_WRITER, ROLE_READER };
enum cstate { CS_IDLE, CS_CONNECTING, CS_OPEN, CS_READY, CS_DEAD };
enum phase { PH_SUBS, PH_CLIENTS, PH_RUN, PH_DRAIN, PH_DONE };

#define H_FINE 10000    /* 1 us buckets below 10 ms */
#define H_COARSE 9990   /* 1 ms buckets from 10 ms to 10 s */
struct hist {
	uint64_t n, max_us;
	uint64_t b[H_FINE + H_COARSE + 1];
};

struct bench;

struct conn {
	struct bench *b;
	struct lws *wsi;
	enum role role;
	enum cstate state;
	uint64_t t_start;
	unsigned char *rx;
	size_t rxlen, rxcap;
	/* subscriber */
	uint64_t next_seq, delivered;
	/* writer / reader: replies come back in send order, so a ring of send times */
	uint64_t sent_at[MAX_DEPTH];
	uint64_t sent_seq[MAX_DEPTH];  /* --nats: the seq each PUB carried */
	unsigned q_head, q_len, want;
	uint64_t next_id;
};

struct opts {
	char host[64];
	int port, tls;
	char token[300];
	int subs, writers, readers, depth, max_writes;
	double rate, duration;
	int json, server_pid;
	int procs;                 /* processes sharing the subscribers */
	int nats;                  /* --nats: the NATS WebSocket text protocol */
	int perf_syscalls;         /* --perf-syscalls: count the server's syscalls */
};

#define MAX_PROCS 8

struct bench {
	struct opts o;
	struct lws_context *ctx;
	struct conn *conns;
	int nconns, next_connect, connecting;
	enum phase phase;
	lws_sorted_usec_list_t sul;
	uint64_t t0, t_run, t_stop, t_last_ack, t_last_deliv, t_last_read, t_phase;
	int subs_ready, clients_ready, dead, conn_failed, closed_early;
	uint64_t acked, write_err, reads, read_err, deliveries, gaps, dups;
	uint64_t max_seq, sent_writes, rate_skipped;
	long rss_before_kb, rss_after_kb, rss_end_kb;
	long sock_before_kb, sock_after_kb, sock_end_kb;   /* /proc/net/sockstat TCP mem */
	uint64_t nats_seq;                 /* --nats: the last seq a writer sent */
	int perf_pid;                      /* --perf-syscalls: perf stat's pid */
	char perf_out[64];
	json_t *syscalls;                  /* what it counted, or NULL */
	double cpu_self0, cpu_srv0, cpu_self, cpu_srv;
	char first_err[200];
	struct hist h_ack, h_deliv, h_read, h_conn;
	/* --procs: a helper holds only subscribers and is steered by its parent */
	int helper, ctl_in, ctl_out;       /* helper: pipes from / to the parent */
	int nkids, kid_pid[MAX_PROCS], kid_in[MAX_PROCS], kid_out[MAX_PROCS];
	int kid_ready[MAX_PROCS], kids_ready, end_sent, subs_all, ready_sent;
};

/* What a helper reports when it is done: raw, parent and helper are one binary. */
struct kid_result {
	uint64_t deliveries, gaps, dups, undelivered, t_last_deliv;
	int live, conn_failed, closed_early;
	double cpu;
	char first_err[200];
	struct hist h_deliv, h_conn;
};

static volatile sig_atomic_t interrupted;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / 1e9 : 0.0;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	uint64_t us = ns / 1000;
	size_t i;

	if (us < H_FINE)
		i = (size_t)us;
	else if (us < H_FINE + (uint64_t)H_COARSE * 1000)
		i = H_FINE + (size_t)((us - H_FINE) / 1000);
	else
		i = H_FINE + H_COARSE;
	h->b[i]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

/* the lower edge of the bucket holding quantile q, in microseconds */
static double hist_q(const struct hist *h, double q)
{
	uint64_t want, acc = 0;
	size_t i;

	if (!h->n)
		return 0.0;
	want = (uint64_t)(q * (double)h->n);
	if (want >= h->n)
		want = h->n - 1;
	for (i = 0; i <= H_FINE + H_COARSE; i++) {
		acc += h->b[i];
		if (acc > want)
			break;
	}
	if (i < H_FINE)
		return (double)i;
	return (double)H_FINE + (double)(i - H_FINE) * 1000.0;
}

static long rss_kb(int pid)
{
	char path[64], line[256];
	FILE *f;
	long kb = -1;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/*
 * The kernel's TCP socket buffer memory in kB: "mem" of the TCP line of
 * /proc/net/sockstat (pages, every socket of the host: on loopback both
 * ends of each connection). Not in any process's RSS.
 */
static long sock_kb(void)
{
	char line[256];
	FILE *f = fopen("/proc/net/sockstat", "r");
	long pages = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		const char *m = strstr(line, " mem ");

		if (!strncmp(line, "TCP:", 4) && m) {
			pages = strtol(m + 5, NULL, 10);
			break;
		}
	}
	fclose(f);
	return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* user+system CPU seconds of a process (self when pid <= 0) */
static double cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;
	int i;

	if (pid <= 0)
		snprintf(path, sizeof path, "/proc/self/stat");
	else
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1.0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');   /* the command name may hold spaces */
	if (!p)
		return -1.0;
	for (i = 0; i < 12 && p; i++)   /* to field 14 (utime) */
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %lu %lu", &ut, &st) != 2)
		return -1.0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- --perf-syscalls: the server's syscalls over the run ------------ */

static const char *const perf_events[] = {
	"raw_syscalls:sys_enter", "syscalls:sys_enter_write", "syscalls:sys_enter_writev",
	"syscalls:sys_enter_sendto", "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_read",
	"syscalls:sys_enter_recvfrom", "syscalls:sys_enter_epoll_wait",
	"syscalls:sys_enter_epoll_pwait", "syscalls:sys_enter_epoll_ctl",
	"syscalls:sys_enter_poll", "syscalls:sys_enter_ppoll", "syscalls:sys_enter_futex",
	"syscalls:sys_enter_fdatasync", "syscalls:sys_enter_pwrite64",
};
#define N_PERF_EVENTS (sizeof perf_events / sizeof perf_events[0])

/* `perf stat -x, -p PID` counting perf_events until perf_stop; -1 if not */
static void perf_start(struct bench *b)
{
	char pid[16], evs[1024];
	size_t i, n = 0;
	int child;

	b->perf_pid = -1;
	if (!b->o.perf_syscalls || b->o.server_pid <= 0)
		return;
	for (i = 0; i < N_PERF_EVENTS; i++)
		n += (size_t)snprintf(evs + n, sizeof evs - n, "%s%s", i ? "," : "",
				      perf_events[i]);
	snprintf(pid, sizeof pid, "%d", b->o.server_pid);
	snprintf(b->perf_out, sizeof b->perf_out, "/tmp/changelog-bench-perf.%d", (int)getpid());
	fflush(NULL);
	child = fork();
	if (child == 0) {
		struct rlimit rl;
		int fd;

		/* not our sockets: the server must see them close when we do */
		if (!getrlimit(RLIMIT_NOFILE, &rl))
			for (fd = 3; fd < (int)rl.rlim_cur && fd < 65536; fd++)
				close(fd);
		execlp("perf", "perf", "stat", "-x,", "-o", b->perf_out, "-e", evs, "-p", pid,
		       (char *)NULL);
		_exit(127);
	}
	b->perf_pid = child;
}

/* stop perf (SIGINT: it writes its counts) and keep them as JSON */
static void perf_stop(struct bench *b)
{
	char line[512];
	FILE *f;
	int st;

	if (b->perf_pid <= 0)
		return;
	kill(b->perf_pid, SIGINT);
	while (waitpid(b->perf_pid, &st, 0) < 0 && errno == EINTR)
		;
	b->perf_pid = -1;
	f = fopen(b->perf_out, "r");
	if (!f)
		return;
	b->syscalls = json_object();
	while (fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ','), *c2, *c3, *name, *e;
		unsigned long long v;

		if (!c1 || !(c2 = strchr(c1 + 1, ',')) || !(c3 = strchr(c2 + 1, ',')))
			continue;
		*c1 = *c3 = '\0';
		v = strtoull(line, &e, 10);
		if (e == line)
			continue;   /* <not counted> / <not supported> */
		name = strchr(c2 + 1, ':');
		name = name ? name + 1 : c2 + 1;
		if (!strncmp(name, "sys_enter_", 10))
			name += 10;
		else if (!strcmp(name, "sys_enter"))
			name = (char *)"total";
		json_object_set_new(b->syscalls, name, json_integer((json_int_t)v));
	}
	fclose(f);
	unlink(b->perf_out);
}

static void note_err(struct bench *b, const char *what)
{
	if (!b->first_err[0])
		snprintf(b->first_err, sizeof b->first_err, "%s", what);
}

static int send_json(struct conn *c, json_t *j)
{
	unsigned char buf[LWS_PRE + 1024];
	size_t n = json_dumpb(j, (char *)buf + LWS_PRE, sizeof buf - LWS_PRE, JSON_COMPACT);

	json_decref(j);
	if (!n || n > sizeof buf - LWS_PRE)
		return -1;
	if (lws_write(c->wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
		return -1;
	return 0;
}

static void start_connect(struct bench *b, struct conn *c)
{
	struct lws_client_connect_info i;
	char path[320];

	memset(&i, 0, sizeof i);
	snprintf(path, sizeof path, b->o.nats ? "/" : "/ws/%s", b->o.token);
	i.context = b->ctx;
	i.address = b->o.host;
	i.port = b->o.port;
	i.path = path;
	i.host = b->o.host;
	i.origin = b->o.host;
	i.ssl_connection = b->o.tls ? (LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
					LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK) : 0;
	i.local_protocol_name = "bench";
	i.alpn = "http/1.1";
	i.userdata = c;
	i.pwsi = &c->wsi;
	c->state = CS_CONNECTING;
	c->t_start = now_ns();
	b->connecting++;
	if (!lws_client_connect_via_info(&i)) {
		c->state = CS_DEAD;
		b->connecting--;
		b->conn_failed++;
		b->dead++;
	}
}

/* start connections of the current phase, at most CONNECT_WINDOW at a time */
static void connect_more(struct bench *b)
{
	int limit = b->phase == PH_SUBS ? b->o.subs : b->nconns;

	while (b->connecting < CONNECT_WINDOW && b->next_connect < limit)
		start_connect(b, &b->conns[b->next_connect++]);
}

static void conn_ready(struct bench *b, struct conn *c)
{
	c->state = CS_READY;
	if (c->role == ROLE_SUB)
		b->subs_ready++;
	else
		b->clients_ready++;
}

static void on_reply(struct bench *b, struct conn *c, const unsigned char *p, size_t n)
{
	json_error_t err;
	json_t *j = json_loadb((const char *)p, n, 0, &err), *ok;
	uint64_t t = now_ns(), sent;

	if (!j) {
		note_err(b, "unparsable reply frame");
		return;
	}
	ok = json_object_get(j, "ok");
	if (c->role == ROLE_SUB) {
		json_t *head = json_object_get(j, "head");
		if (c->state == CS_OPEN && json_is_true(ok) && json_is_integer(head)) {
			c->next_seq = (uint64_t)json_integer_value(head) + 1;
			conn_ready(b, c);
		} else if (c->state == CS_OPEN) {
			note_err(b, "subscribe refused");
			c->state = CS_DEAD;
			b->dead++;
		}
		json_decref(j);
		return;
	}
	if (!c->q_len) {
		json_decref(j);
		return;     /* a reply we did not ask for (none expected) */
	}
	sent = c->sent_at[c->q_head];
	c->q_head = (c->q_head + 1) % MAX_DEPTH;
	c->q_len--;
	if (c->role == ROLE_WRITER) {
		json_t *seq = json_object_get(j, "seq");
		if (json_is_true(ok) && json_is_integer(seq)) {
			b->acked++;
			hist_add(&b->h_ack, t - sent);
			if ((uint64_t)json_integer_value(seq) > b->max_seq)
				b->max_seq = (uint64_t)json_integer_value(seq);
			b->t_last_ack = t;
		} else {
			json_t *m = json_object_get(json_object_get(j, "error"), "code");
			b->write_err++;
			note_err(b, json_is_string(m) ? json_string_value(m) : "write refused");
		}
		if (b->phase == PH_RUN && b->o.rate <= 0)
			c->want++;
	} else {
		if (json_is_true(ok)) {
			b->reads++;
			hist_add(&b->h_read, t - sent);
			b->t_last_read = t;
		} else {
			b->read_err++;
			note_err(b, "query refused");
		}
		if (b->phase == PH_RUN)
			c->want++;
	}
	json_decref(j);
	if (c->want)
		lws_callback_on_writable(c->wsi);
}

static void on_push(struct bench *b, struct conn *c, const char *p, size_t n)
{
	static const char key[] = "{\"op\":\"event\",\"seq\":";
	const char *end = p + n, *at = p, *nx;
	uint64_t t = now_ns();

	while ((at = memmem(at, (size_t)(end - at), key, sizeof key - 1))) {
		uint64_t seq, ts;
		const char *title;
		char *e;

		at += sizeof key - 1;
		seq = strtoull(at, &e, 10);
		nx = memmem(at, (size_t)(end - at), key, sizeof key - 1);
		if (!nx)
			nx = end;
		if (seq == c->next_seq) {
			c->next_seq++;
		} else if (seq > c->next_seq) {
			b->gaps += seq - c->next_seq;
			c->next_seq = seq + 1;
		} else {
			b->dups++;
			continue;
		}
		c->delivered++;
		b->deliveries++;
		b->t_last_deliv = t;
		title = memmem(at, (size_t)(nx - at), "\"title\":\"" TITLE_TAG,
			       sizeof "\"title\":\"" TITLE_TAG - 1);
		if (title) {
			ts = strtoull(title + sizeof "\"title\":\"" TITLE_TAG - 1, NULL, 10);
			if (ts && ts <= t)
				hist_add(&b->h_deliv, t - ts);
		}
	}
}

/* ---- --nats: the NATS WebSocket peer's text protocol ----------------- */

#define NATS_SUBJECT "changelog.bench"

static int send_raw(struct conn *c, const char *s, size_t n)
{
	unsigned char buf[LWS_PRE + 2048];

	if (n > sizeof buf - LWS_PRE)
		return -1;
	memcpy(buf + LWS_PRE, s, n);
	return lws_write(c->wsi, buf + LWS_PRE, n, LWS_WRITE_BINARY) < (int)n ? -1 : 0;
}

/* CONNECT (and SUB for a subscriber), then PING: its PONG says they are in */
static int nats_hello(struct conn *c)
{
	char m[256];
	int n = snprintf(m, sizeof m, "CONNECT {\"verbose\":false,\"pedantic\":false,"
			 "\"headers\":false,\"name\":\"changelog-bench\"}\r\n%sPING\r\n",
			 c->role == ROLE_SUB ? "SUB " NATS_SUBJECT " 1\r\n" : "");

	return send_raw(c, m, (size_t)n);
}

/*
 * One createEntry's worth: the payload has the shape of changelogd's push
 * for it (and of the Node peer's), with this writer's seq and the send time
 * in the title; the PING after it is the ack.
 */
static int nats_pub(struct bench *b, struct conn *c, uint64_t t)
{
	char pl[1024], m[1200];
	uint64_t seq = ++b->nats_seq;
	int n = snprintf(pl, sizeof pl,
		"{\"op\":\"event\",\"seq\":%" PRIu64 ",\"event\":{\"seq\":%" PRIu64 ","
		"\"type\":\"entry.created\",\"v\":1,\"ts\":\"2026-01-01T00:00:00.000000Z\","
		"\"actor\":1,\"entry\":%" PRIu64 ",\"data\":{\"title\":\"" TITLE_TAG "%" PRIu64
		" w%d\",\"body\":\"written by changelog-bench\",\"kind\":\"fix\"}},"
		"\"entry\":{\"id\":%" PRIu64 ",\"title\":\"" TITLE_TAG "%" PRIu64 " w%d\","
		"\"body\":\"written by changelog-bench\",\"kind\":\"fix\",\"status\":\"open\","
		"\"author\":\"admin\",\"author_id\":1,\"created\":\"2026-01-01T00:00:00.000000Z\","
		"\"updated\":\"2026-01-01T00:00:00.000000Z\",\"version\":1,\"comments\":0,"
		"\"last_activity\":\"2026-01-01T00:00:00.000000Z\"}}",
		seq, seq, seq, t, (int)(c - b->conns), seq, t, (int)(c - b->conns));
	int k = snprintf(m, sizeof m, "PUB " NATS_SUBJECT " %d\r\n%s\r\nPING\r\n", n, pl);

	c->sent_seq[(c->q_head + c->q_len) % MAX_DEPTH] = seq;
	return k > 0 && (size_t)k < sizeof m ? send_raw(c, m, (size_t)k) : -1;
}

static void nats_pong(struct bench *b, struct conn *c)
{
	uint64_t t = now_ns();

	if (c->state == CS_OPEN) {
		if (c->role == ROLE_SUB)
			c->next_seq = 1;   /* subscribers are all in before any PUB */
		conn_ready(b, c);
		return;
	}
	if (c->role != ROLE_WRITER || !c->q_len)
		return;
	b->acked++;
	hist_add(&b->h_ack, t - c->sent_at[c->q_head]);
	if (c->sent_seq[c->q_head] > b->max_seq)
		b->max_seq = c->sent_seq[c->q_head];
	b->t_last_ack = t;
	c->q_head = (c->q_head + 1) % MAX_DEPTH;
	c->q_len--;
	if (b->phase == PH_RUN && b->o.rate <= 0)
		c->want++;
	if (c->want)
		lws_callback_on_writable(c->wsi);
}

/*
 * NATS frames its protocol its own way: one websocket message may hold
 * several operations or part of one. Append, take every complete one,
 * keep the rest.
 */
static int nats_rx(struct bench *b, struct conn *c, const void *in, size_t len)
{
	size_t pos = 0;

	if (c->rxlen + len + 1 > MAX_FRAME) {
		note_err(b, "NATS stream backlog over 16 MiB");
		return -1;
	}
	if (c->rxlen + len + 1 > c->rxcap) {
		size_t cap = c->rxcap ? c->rxcap : 4096;
		unsigned char *nb;

		while (cap < c->rxlen + len + 1)
			cap *= 2;
		if (!(nb = realloc(c->rx, cap)))
			return -1;
		c->rx = nb;
		c->rxcap = cap;
	}
	memcpy(c->rx + c->rxlen, in, len);
	c->rxlen += len;
	for (;;) {
		char *l = (char *)c->rx + pos;
		char *eol = memmem(l, c->rxlen - pos, "\r\n", 2);
		size_t ll;

		if (!eol)
			break;
		ll = (size_t)(eol - l);
		if (ll > 4 && !memcmp(l, "MSG ", 4)) {
			const char *sz = eol;
			unsigned long long n;

			while (sz > l && sz[-1] != ' ')
				sz--;
			n = strtoull(sz, NULL, 10);
			if (n > MAX_FRAME) {
				note_err(b, "NATS MSG over 16 MiB");
				return -1;
			}
			if (pos + ll + 2 + n + 2 > c->rxlen)
				break;   /* the payload is not all in yet */
			eol[2 + n] = '\0';
			on_push(b, c, eol + 2, (size_t)n);
			pos += ll + 2 + (size_t)n + 2;
			continue;
		}
		if (ll == 4 && !memcmp(l, "PING", 4)) {
			if (send_raw(c, "PONG\r\n", 6))
				return -1;
		} else if (ll == 4 && !memcmp(l, "PONG", 4)) {
			nats_pong(b, c);
		} else if (ll >= 4 && !memcmp(l, "-ERR", 4)) {
			char e[120];

			snprintf(e, sizeof e, "NATS: %.*s", (int)(ll < 100 ? ll : 100), l);
			note_err(b, e);
		}   /* INFO, +OK: nothing to do */
		pos += ll + 2;
	}
	memmove(c->rx, c->rx + pos, c->rxlen - pos);
	c->rxlen -= pos;
	return 0;
}

/*
 * A query reply is large (a page of entries) and only its "ok" matters here:
 * both servers put "id" then "ok" first, so look at the head of the frame
 * instead of parsing 10-30 KB per reply on the CPU the server shares.
 */
static void on_read_reply(struct bench *b, struct conn *c)
{
	size_t head = c->rxlen < 48 ? c->rxlen : 48;
	uint64_t t = now_ns(), sent;

	if (!c->q_len)
		return;
	sent = c->sent_at[c->q_head];
	c->q_head = (c->q_head + 1) % MAX_DEPTH;
	c->q_len--;
	if (memmem(c->rx, head, "\"ok\":true", 9) && c->rx[c->rxlen - 1] == '}') {
		b->reads++;
		hist_add(&b->h_read, t - sent);
		b->t_last_read = t;
	} else {
		b->read_err++;
		note_err(b, "query refused");
	}
	if (b->phase == PH_RUN) {
		c->want++;
		lws_callback_on_writable(c->wsi);
	}
}

static void on_frame(struct bench *b, struct conn *c)
{
	c->rx[c->rxlen] = 0;
	if (c->role == ROLE_SUB && c->rxlen > 13 && !memcmp(c->rx, "{\"op\":\"event", 12))
		on_push(b, c, (const char *)c->rx, c->rxlen);
	else if (c->role == ROLE_READER && c->rxlen > 12)
		on_read_reply(b, c);
	else
		on_reply(b, c, c->rx, c->rxlen);
	c->rxlen = 0;
}

static int on_writeable(struct bench *b, struct conn *c)
{
	char title[64];
	json_t *j;
	uint64_t t;
	int n;

	if (b->o.nats && c->state == CS_OPEN)
		return nats_hello(c);
	if (c->state == CS_OPEN && c->role == ROLE_SUB) {
		/* subscribe from the current head: no since, no epoch */
		j = json_pack("{s:I, s:s}", "id", (json_int_t)++c->next_id, "op", "subscribe");
		return j ? send_json(c, j) : -1;
	}
	if (c->state != CS_READY || !c->want || c->q_len >= (unsigned)b->o.depth)
		return 0;
	if (b->phase != PH_RUN) {
		c->want = 0;
		return 0;
	}
	/*
	 * Several requests per callback while the socket takes them: one per
	 * WRITEABLE would hold a pipelining writer to one request per service
	 * turn of this process, which also services every subscriber.
	 */
	for (n = 0; n < 16; n++) {
		if (n && (!c->want || c->q_len >= (unsigned)b->o.depth ||
			  lws_send_pipe_choked(c->wsi)))
			break;
		t = now_ns();
		if (b->o.nats) {
			if (nats_pub(b, c, t))
				return -1;
			if (b->o.rate <= 0)
				b->sent_writes++;
			c->sent_at[(c->q_head + c->q_len) % MAX_DEPTH] = t;
			c->q_len++;
			c->want--;
			continue;
		}
		if (c->role == ROLE_WRITER) {
			snprintf(title, sizeof title, TITLE_TAG "%" PRIu64 " w%d", t,
				 (int)(c - b->conns));
			j = json_pack("{s:I, s:s, s:{s:s, s:s, s:s}}", "id",
				      (json_int_t)++c->next_id, "op", "createEntry", "params",
				      "title", title, "kind", "fix",
				      "body", "written by changelog-bench");
			if (b->o.rate <= 0)
				b->sent_writes++;
		} else {
			j = json_pack("{s:I, s:s, s:s, s:{}}", "id", (json_int_t)++c->next_id,
				      "op", "query", "name", "getChangelogEntries", "params");
		}
		if (!j || send_json(c, j))
			return -1;
		c->sent_at[(c->q_head + c->q_len) % MAX_DEPTH] = t;
		c->q_len++;
		c->want--;
	}
	if (c->want && c->q_len < (unsigned)b->o.depth)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/*
 * lws reads one TLS record per connection per service turn, and a turn
 * here also reads from every subscriber. A writer with --depth replies
 * owed would get one of them per turn: the rest wait in its socket, the
 * writer sends one request per turn, and the run measures this process's
 * turn time instead of the server. So after each turn, read on from the
 * writers and readers (not the subscribers) while their sockets hold data.
 */
static void drain_requesters(struct bench *b)
{
	int i, k;

	for (i = b->o.subs; i < b->nconns; i++) {
		struct conn *c = &b->conns[i];
		struct lws_pollfd pfd;

		for (k = 0; k < MAX_DEPTH && c->wsi && c->state != CS_DEAD; k++) {
			pfd.fd = lws_get_socket_fd(c->wsi);
			pfd.events = POLLIN;
			pfd.revents = 0;
			if (pfd.fd < 0 || poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
				break;
			if (lws_service_fd(b->ctx, &pfd) < 0)
				break;
		}
	}
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = user;
	struct bench *b = c ? c->b : NULL;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		b->connecting--;
		hist_add(&b->h_conn, now_ns() - c->t_start);
		c->state = CS_OPEN;
		if (c->role == ROLE_SUB || b->o.nats)
			lws_callback_on_writable(wsi);
		else
			conn_ready(b, c);
		connect_more(b);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!b)
			break;
		note_err(b, in ? (const char *)in : "connection error");
		if (c->state == CS_CONNECTING)
			b->connecting--;
		if (c->state != CS_DEAD) {
			c->state = CS_DEAD;
			b->conn_failed++;
			b->dead++;
		}
		c->wsi = NULL;
		connect_more(b);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (b->o.nats)
			return nats_rx(b, c, in, len);
		if (c->rxlen + len + lws_remaining_packet_payload(wsi) + 1 > MAX_FRAME) {
			note_err(b, "frame over 16 MiB");
			return -1;
		}
		if (c->rxlen + len + 1 > c->rxcap) {
			size_t cap = c->rxcap ? c->rxcap : 4096;
			unsigned char *nb;
			while (cap < c->rxlen + len + 1)
				cap *= 2;
			nb = realloc(c->rx, cap);
			if (!nb)
				return -1;
			c->rx = nb;
			c->rxcap = cap;
		}
		memcpy(c->rx + c->rxlen, in, len);
		c->rxlen += len;
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi))
			on_frame(b, c);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(b, c);
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c->state != CS_DEAD) {
			if (b->phase < PH_DONE)
				b->closed_early++;
			c->state = CS_DEAD;
			b->dead++;
		}
		c->wsi = NULL;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ "bench", cb, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* open-loop writes: hand out what the rate owes so far, round robin */
static void rate_tick(struct bench *b)
{
	uint64_t owed = (uint64_t)(b->o.rate * secs(b->t_run, now_ns()));
	int w0 = b->o.subs;

	while (b->o.writers && b->sent_writes + b->rate_skipped < owed) {
		uint64_t k = b->sent_writes + b->rate_skipped;
		struct conn *c = &b->conns[w0 + (int)(k % (uint64_t)b->o.writers)];

		if (c->state == CS_READY && c->q_len + c->want < (unsigned)b->o.depth) {
			c->want++;
			b->sent_writes++;   /* counted when handed out, sent in WRITEABLE */
			lws_callback_on_writable(c->wsi);
		} else {
			b->rate_skipped++;
		}
	}
}

static void start_run(struct bench *b)
{
	int i;

	b->rss_after_kb = rss_kb(b->o.server_pid);
	b->sock_after_kb = sock_kb();
	perf_start(b);
	b->cpu_self0 = cpu_s(0);
	b->cpu_srv0 = b->o.server_pid > 0 ? cpu_s(b->o.server_pid) : -1.0;
	b->phase = PH_RUN;
	b->t_run = now_ns();
	for (i = b->o.subs; i < b->nconns; i++) {
		struct conn *c = &b->conns[i];
		if (c->state != CS_READY)
			continue;
		if (c->role == ROLE_READER || b->o.rate <= 0) {
			c->want = (unsigned)b->o.depth;
			lws_callback_on_writable(c->wsi);
		}
	}
}

static int all_caught_up(struct bench *b)
{
	int i;

	for (i = 0; i < b->o.subs; i++) {
		struct conn *c = &b->conns[i];
		if (c->state == CS_READY && c->next_seq <= b->max_seq)
			return 0;
	}
	return 1;
}

static int clients_settled(struct bench *b)
{
	int i, n = 0;

	for (i = b->o.subs; i < b->nconns; i++)
		if (b->conns[i].state == CS_READY || b->conns[i].state == CS_DEAD)
			n++;
	return n;
}

/* ---- --procs: helper processes that hold a share of the subscribers ---- */

/*
 * One process of this client saturates a core at ~100-250 k deliveries/s
 * (lws 4.1.6 parses client frames a byte at a time), below what the server
 * can push. With --procs P the subscribers are split over P processes:
 * P-1 helpers forked before any connection, each with its own lws context,
 * and this process, which also runs every writer and reader. A helper
 * reports 'R' once its subscribers are in, is told the last acknowledged
 * seq when the writers are done, drains to it and sends its counts and
 * histograms back (struct kid_result) for one merged report.
 */
static void kids_poll_ready(struct bench *b)
{
	int k;

	for (k = 0; k < b->nkids; k++) {
		struct pollfd pfd = { .fd = b->kid_in[k], .events = POLLIN };
		char ch;

		/* one 'R' each; the result comes later on the same pipe */
		if (b->kid_ready[k] || poll(&pfd, 1, 0) != 1)
			continue;
		if (read(b->kid_in[k], &ch, 1) != 1 || ch != 'R')
			note_err(b, "a helper process failed");
		b->kid_ready[k] = 1;
		b->kids_ready++;
	}
}

static void kids_send_end(struct bench *b)
{
	int k;

	if (b->end_sent)
		return;
	b->end_sent = 1;
	for (k = 0; k < b->nkids; k++)
		if (write(b->kid_out[k], &b->max_seq, sizeof b->max_seq) != sizeof b->max_seq)
			note_err(b, "a helper process went away");
}

static int helper_ready(struct bench *b)
{
	char ch = 'R';

	if (b->ready_sent)
		return 0;
	b->ready_sent = 1;
	return write(b->ctl_out, &ch, 1) == 1 ? 0 : -1;
}

static void helper_start(struct bench *b)
{
	if (helper_ready(b)) {
		b->phase = PH_DONE;
		return;
	}
	b->cpu_self0 = cpu_s(0);
	b->phase = PH_RUN;
	b->t_run = now_ns();
}

static void helper_poll_end(struct bench *b, uint64_t t)
{
	struct pollfd pfd = { .fd = b->ctl_in, .events = POLLIN };
	uint64_t seq;

	if (poll(&pfd, 1, 0) != 1)
		return;
	if (read(b->ctl_in, &seq, sizeof seq) == sizeof seq)
		b->max_seq = seq;
	else
		note_err(b, "lost the parent process");
	b->phase = PH_DRAIN;
	b->t_stop = t;
}

/* all n bytes through a pipe, in (writing 0) or out (writing 1) */
static int pipe_full(int fd, void *p, size_t n, int writing)
{
	char *q = p;

	while (n) {
		ssize_t r = writing ? write(fd, q, n) : read(fd, q, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

static uint64_t undelivered_of(const struct bench *b, int *live)
{
	uint64_t n = 0;
	int i;

	*live = 0;
	for (i = 0; i < b->o.subs; i++) {
		const struct conn *c = &b->conns[i];

		if (c->state != CS_READY)
			continue;
		(*live)++;
		if (c->next_seq <= b->max_seq)
			n += b->max_seq + 1 - c->next_seq;
	}
	return n;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	size_t i;

	for (i = 0; i < sizeof to->b / sizeof to->b[0]; i++)
		to->b[i] += from->b[i];
	to->n += from->n;
	if (from->max_us > to->max_us)
		to->max_us = from->max_us;
}

/* helper: send the result to the parent */
static int helper_report(struct bench *b)
{
	static struct kid_result r;

	if (helper_ready(b))        /* a helper that gave up early still says R */
		return 2;
	memset(&r, 0, sizeof r);
	r.deliveries = b->deliveries;
	r.gaps = b->gaps;
	r.dups = b->dups;
	r.undelivered = undelivered_of(b, &r.live);
	r.t_last_deliv = b->t_last_deliv;
	r.conn_failed = b->conn_failed;
	r.closed_early = b->closed_early;
	r.cpu = b->cpu_self;
	memcpy(r.first_err, b->first_err, sizeof r.first_err);
	r.h_deliv = b->h_deliv;
	r.h_conn = b->h_conn;
	return pipe_full(b->ctl_out, &r, sizeof r, 1) ? 2 : 0;
}

/* parent: wait for every helper's result and fold it into ours */
static uint64_t kids_collect(struct bench *b, int *live)
{
	static struct kid_result r;
	uint64_t undelivered = 0;
	int k, st;

	*live = 0;
	for (k = 0; k < b->nkids; k++) {
		char ch;

		/* a run cut short (^C) may end before the parent saw a helper's R */
		if ((!b->kid_ready[k] && pipe_full(b->kid_in[k], &ch, 1, 0)) ||
		    pipe_full(b->kid_in[k], &r, sizeof r, 0)) {
			note_err(b, "a helper process died before reporting");
			b->conn_failed++;
			continue;
		}
		b->deliveries += r.deliveries;
		b->gaps += r.gaps;
		b->dups += r.dups;
		undelivered += r.undelivered;
		*live += r.live;
		if (r.t_last_deliv > b->t_last_deliv)
			b->t_last_deliv = r.t_last_deliv;
		b->conn_failed += r.conn_failed;
		b->closed_early += r.closed_early;
		b->cpu_self += r.cpu;
		if (r.first_err[0]) {
			r.first_err[sizeof r.first_err - 1] = 0;
			note_err(b, r.first_err);
		}
		hist_merge(&b->h_deliv, &r.h_deliv);
		hist_merge(&b->h_conn, &r.h_conn);
	}
	for (k = 0; k < b->nkids; k++) {
		close(b->kid_in[k]);
		close(b->kid_out[k]);
		while (waitpid(b->kid_pid[k], &st, 0) < 0 && errno == EINTR)
			;
	}
	return undelivered;
}

/*
 * Fork the helpers and give each its share of the subscribers; this
 * process keeps the rest and all writers and readers. 0 in the parent,
 * 1 in a helper, -1 on failure.
 */
static int kids_fork(struct bench *b)
{
	int share = b->o.subs / b->o.procs, k;

	b->subs_all = b->o.subs;
	for (k = 0; k < b->o.procs - 1; k++) {
		int down[2], up[2], pid;

		if (pipe(down) || pipe(up))
			return -1;
		fflush(NULL);
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			int j;

			for (j = 0; j < b->nkids; j++) {
				close(b->kid_in[j]);
				close(b->kid_out[j]);
			}
			close(down[1]);
			close(up[0]);
			b->helper = 1;
			b->nkids = 0;
			b->ctl_in = down[0];
			b->ctl_out = up[1];
			b->o.subs = share;
			b->o.writers = 0;
			b->o.readers = 0;
			b->o.json = 0;
			b->o.server_pid = 0;
			return 1;
		}
		close(down[0]);
		close(up[1]);
		b->kid_pid[b->nkids] = pid;
		b->kid_in[b->nkids] = up[0];
		b->kid_out[b->nkids] = down[1];
		b->nkids++;
	}
	b->o.subs -= share * (b->o.procs - 1);
	return 0;
}

static void tick(lws_sorted_usec_list_t *sul)
{
	struct bench *b = lws_container_of(sul, struct bench, sul);
	uint64_t t = now_ns();
	int clients = b->nconns - b->o.subs;

	if (interrupted && b->phase < PH_DRAIN) {
		b->phase = PH_DRAIN;
		b->t_stop = t;
	}
	switch (b->phase) {
	case PH_SUBS:
		kids_poll_ready(b);
		if (b->helper && b->subs_ready + b->dead >= b->o.subs) {
			helper_start(b);
		} else if (b->subs_ready + b->dead >= b->o.subs && b->kids_ready >= b->nkids) {
			b->phase = PH_CLIENTS;
			b->t_phase = t;
			connect_more(b);
		} else if (secs(b->t0, t) > CONNECT_TIMEOUT_S) {
			note_err(b, "subscribers did not all connect in time");
			b->phase = PH_DONE;
		}
		break;
	case PH_CLIENTS:
		if (clients_settled(b) >= clients)
			start_run(b);
		else if (secs(b->t_phase, t) > CONNECT_TIMEOUT_S) {
			note_err(b, "writers/readers did not all connect in time");
			b->phase = PH_DONE;
		}
		break;
	case PH_RUN:
		if (b->helper) {
			helper_poll_end(b, t);
			break;
		}
		if (b->o.rate > 0)
			rate_tick(b);
		if (secs(b->t_run, t) >= b->o.duration ||
		    (b->o.max_writes && b->acked + b->write_err >= (uint64_t)b->o.max_writes)) {
			/* settled: the handshakes' transient memory is gone */
			b->rss_end_kb = rss_kb(b->o.server_pid);
			b->sock_end_kb = sock_kb();
			b->phase = PH_DRAIN;
			b->t_stop = t;
		}
		break;
	case PH_DRAIN: {
		int i, busy = 0;
		for (i = b->o.subs; i < b->nconns; i++)
			if (b->conns[i].state == CS_READY && b->conns[i].q_len)
				busy = 1;
		if (!busy)
			kids_send_end(b);
		if ((!busy && all_caught_up(b)) || secs(b->t_stop, t) > DRAIN_S) {
			kids_send_end(b);
			b->phase = PH_DONE;
			b->cpu_self = cpu_s(0) - b->cpu_self0;
			b->cpu_srv = b->cpu_srv0 >= 0 ? cpu_s(b->o.server_pid) - b->cpu_srv0 : -1.0;
			perf_stop(b);
		}
		break;
	}
	case PH_DONE:
		break;
	}
	if (b->phase != PH_DONE)
		lws_sul_schedule(b->ctx, 0, &b->sul, tick, TICK_US);
}

static int parse_url(const char *url, struct opts *o)
{
	const char *h, *colon, *slash;
	size_t hl;
	char *e;
	long port;

	if (!strncmp(url, "wss://", 6)) {
		o->tls = 1;
		h = url + 6;
	} else if (!strncmp(url, "ws://", 5)) {
		o->tls = 0;
		h = url + 5;
	} else {
		return -1;
	}
	colon = strrchr(h, ':');
	if (!colon)
		return -1;
	hl = (size_t)(colon - h);
	if (!hl || hl >= sizeof o->host)
		return -1;
	memcpy(o->host, h, hl);
	o->host[hl] = 0;
	port = strtol(colon + 1, &e, 10);
	slash = e;
	if (e == colon + 1 || port < 1 || port > 65535 || (*slash && strcmp(slash, "/")))
		return -1;
	o->port = (int)port;
	/* loopback only: this tool makes a lot of load */
	if (strncmp(o->host, "127.", 4) && strcmp(o->host, "localhost"))
		return -2;
	return 0;
}

static int num_arg(const char *s, double lo, double hi, double *out)
{
	char *e;
	double v;

	errno = 0;
	v = strtod(s, &e);
	if (errno || e == s || *e || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/*
 * --version: the release (kept equal to core/version.h's CL_VERSION by
 * tests/integration/test_version.py; this client includes no project header)
 * and the two libraries it calls, as they report themselves at run time.
 */
#define BENCH_VERSION "0.1.0"

static void version_print(void)
{
	char lws[64];
	size_t n;

	snprintf(lws, sizeof lws, "%s", lws_get_library_version());
	n = strlen(lws);
	if (n > 0 && lws[n - 1] == '-')     /* "4.1.6-": no git hash */
		lws[n - 1] = '\0';
	printf("changelog-bench %s\n  libwebsockets %s\n  OpenSSL %s\n", BENCH_VERSION, lws,
	       OpenSSL_version(OPENSSL_VERSION_STRING));
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: changelog-bench --url wss://127.0.0.1:PORT --token T [options]\n"
		"  --subscribers N   subscribing connections (0..%d, default 0)\n"
		"  --writers M       createEntry connections (0..%d, default 1)\n"
		"  --readers K       getChangelogEntries connections (0..%d, default 0)\n"
		"  --rate R          writes/s in total (0 = closed loop, default 0)\n"
		"  --depth D         requests in flight per writer/reader (1..%d, default 1)\n"
		"  --duration S      seconds of load (0.1..%d, default 5)\n"
		"  --max-writes W    stop after W acknowledged writes (0 = no limit)\n"
		"  --procs P         split the subscribers over P processes (1..%d, default 1)\n"
		"  --server-pid P    read the server's VmRSS before and after connecting, and\n"
		"                    at the end of the run (settled: handshakes done)\n"
		"  --json            print one JSON object on stdout (summary on stderr)\n"
		"  --peer-protocol   accepted for symmetry: the peers speak the same JSON\n"
		"  --nats            the server is a NATS WebSocket listener (token ignored;\n"
		"                    at most 1 writer, no readers)\n"
		"  --perf-syscalls   count the --server-pid's syscalls over the run (perf stat)\n"
		"  --help            this text\n"
		"  --version         the release and the libraries it runs with\n"
		"Loopback hosts only. Exit 1 if any subscriber saw a gap, a duplicate or\n"
		"missed an event, or a connection failed or closed early; 2 on bad usage.\n",
		MAX_SUBS, MAX_WRITERS, MAX_READERS, MAX_DEPTH, MAX_DURATION, MAX_PROCS);
}

static json_t *hist_json(const struct hist *h)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f}", "n", (json_int_t)h->n,
			 "p50", hist_q(h, 0.50), "p90", hist_q(h, 0.90),
			 "p99", hist_q(h, 0.99), "max", (double)h->max_us);
}

static int report(struct bench *b)
{
	uint64_t undelivered;
	double wsec, dsec, rsec;
	long rss_d = (b->rss_after_kb >= 0 && b->rss_before_kb >= 0) ? b->rss_after_kb - b->rss_before_kb : -1;
	long rss_e = (b->rss_end_kb >= 0 && b->rss_before_kb >= 0) ? b->rss_end_kb - b->rss_before_kb : -1;
	int live, kids_live, subs = b->subs_all ? b->subs_all : b->o.subs;
	long rss_now;
	int nconns = b->nconns + (subs - b->o.subs);
	json_t *j;

	undelivered = undelivered_of(b, &live);
	undelivered += kids_collect(b, &kids_live);
	live += kids_live;
	rss_now = rss_kb(b->o.server_pid);
	wsec = secs(b->t_run, b->t_last_ack);
	dsec = secs(b->t_run, b->t_last_deliv);
	rsec = secs(b->t_run, b->t_last_read);
	j = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:I, s:I, s:f, s:o, s:I, s:f, s:o,"
		      " s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:s, s:f, s:f}",
		      "subscribers", subs, "subscribers_live", live, "writers", b->o.writers,
		      "readers", b->o.readers, "conn_failed", b->conn_failed,
		      "closed_early", b->closed_early, "seconds", secs(b->t_run, b->t_stop),
		      "acked", (json_int_t)b->acked, "write_errors", (json_int_t)b->write_err,
		      "acked_per_s", wsec > 0 ? (double)b->acked / wsec : 0.0,
		      "write_ack_us", hist_json(&b->h_ack),
		      "deliveries", (json_int_t)b->deliveries,
		      "deliveries_per_s", dsec > 0 ? (double)b->deliveries / dsec : 0.0,
		      "deliver_us", hist_json(&b->h_deliv),
		      "gaps", (json_int_t)b->gaps, "dups", (json_int_t)b->dups,
		      "undelivered", (json_int_t)undelivered, "reads", (json_int_t)b->reads,
		      "reads_per_s", rsec > 0 ? (double)b->reads / rsec : 0.0,
		      "read_us", hist_json(&b->h_read), "connect_us", hist_json(&b->h_conn),
		      "rss_before_kb", (json_int_t)b->rss_before_kb,
		      "rss_after_kb", (json_int_t)b->rss_after_kb,
		      "rss_per_conn_bytes",
		      (json_int_t)(rss_d >= 0 && nconns ? rss_d * 1024 / nconns : -1),
		      "rss_end_kb", (json_int_t)b->rss_end_kb,
		      "rss_end_per_conn_bytes",
		      (json_int_t)(rss_e >= 0 && nconns ? rss_e * 1024 / nconns : -1),
		      "first_error", b->first_err, "client_cpu_s", b->cpu_self,
		      "server_cpu_s", b->cpu_srv);
	if (j) {
		long sa = b->sock_after_kb, se = b->sock_end_kb, s0 = b->sock_before_kb;
		double us = b->cpu_srv * 1e6;

		/* the server's CPU per unit of work, over the run and the drain */
		json_object_set_new(j, "server_cpu_us_per_delivery", b->cpu_srv >= 0 &&
				    b->deliveries ? json_real(us / (double)b->deliveries) : json_null());
		json_object_set_new(j, "server_cpu_us_per_ack", b->cpu_srv >= 0 && b->acked ?
				    json_real(us / (double)b->acked) : json_null());
		json_object_set_new(j, "server_cpu_us_per_read", b->cpu_srv >= 0 && b->reads ?
				    json_real(us / (double)b->reads) : json_null());
		json_object_set_new(j, "sock_before_kb", json_integer(s0));
		json_object_set_new(j, "sock_after_kb", json_integer(sa));
		json_object_set_new(j, "sock_end_kb", json_integer(se));
		json_object_set_new(j, "sock_end_per_conn_bytes", se >= 0 && s0 >= 0 && nconns ?
				    json_integer((json_int_t)((se - s0) * 1024 / nconns)) : json_null());
		json_object_set_new(j, "server_syscalls", b->syscalls ? json_incref(b->syscalls) :
				    json_null());
		/* every connection still open, at the end (also when not all got in:
		 * then the other RSS figures are -1) */
		json_object_set_new(j, "rss_now_kb", json_integer(rss_now));
		json_object_set_new(j, "rss_per_live_conn_bytes", rss_now >= 0 &&
				    b->rss_before_kb >= 0 && live ? json_integer((json_int_t)(
				    (rss_now - b->rss_before_kb) * 1024 / live)) : json_null());
	}
	if (j && b->o.json) {
		char *s = json_dumps(j, JSON_COMPACT);
		if (s)
			printf("%s\n", s);
		free(s);
	}
	json_decref(j);
	fprintf(stderr,
		"conns %d subs (%d live) + %d writers + %d readers, failed %d, closed early %d\n"
		"connect p50 %.0f us max %" PRIu64 " us; server RSS %ld -> %ld kB (%ld B/conn), "
		"at the end of the run %ld kB (%ld B/conn)\n"
		"writes: %" PRIu64 " acked (%.0f/s), %" PRIu64 " refused; ack us p50 %.0f p90 %.0f p99 %.0f max %" PRIu64 "\n"
		"deliveries: %" PRIu64 " (%.0f/s); delivered us p50 %.0f p90 %.0f p99 %.0f max %" PRIu64 "\n"
		"order: gaps %" PRIu64 " dups %" PRIu64 " undelivered %" PRIu64 "\n"
		"reads: %" PRIu64 " (%.0f/s); us p50 %.0f p99 %.0f\n"
		"cpu over the run: client %.2f s, server %.2f s; kernel TCP memory %ld -> %ld -> %ld kB\n%s%s\n",
		subs, live, b->o.writers, b->o.readers, b->conn_failed, b->closed_early,
		hist_q(&b->h_conn, 0.5), b->h_conn.max_us, b->rss_before_kb, b->rss_after_kb,
		rss_d >= 0 && nconns ? rss_d * 1024 / nconns : -1,
		b->rss_end_kb, rss_e >= 0 && nconns ? rss_e * 1024 / nconns : -1,
		b->acked, wsec > 0 ? (double)b->acked / wsec : 0.0, b->write_err,
		hist_q(&b->h_ack, 0.5), hist_q(&b->h_ack, 0.9), hist_q(&b->h_ack, 0.99), b->h_ack.max_us,
		b->deliveries, dsec > 0 ? (double)b->deliveries / dsec : 0.0,
		hist_q(&b->h_deliv, 0.5), hist_q(&b->h_deliv, 0.9), hist_q(&b->h_deliv, 0.99),
		b->h_deliv.max_us, b->gaps, b->dups, undelivered,
		b->reads, rsec > 0 ? (double)b->reads / rsec : 0.0,
		hist_q(&b->h_read, 0.5), hist_q(&b->h_read, 0.99), b->cpu_self, b->cpu_srv,
		b->sock_before_kb, b->sock_after_kb, b->sock_end_kb, b->first_err[0] ? "first error: " : "", b->first_err);
	return (b->gaps || b->dups || undelivered || b->conn_failed || b->closed_early) ? 1 : 0;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

enum { O_URL = 256, O_TOKEN, O_SUBS, O_WRITERS, O_READERS, O_RATE, O_DEPTH, O_DUR,
       O_MAXW, O_PID, O_JSON, O_PEER, O_HELP, O_PROCS, O_VERSION, O_NATS, O_PERF };

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "token", required_argument, NULL, O_TOKEN },
		{ "subscribers", required_argument, NULL, O_SUBS },
		{ "writers", required_argument, NULL, O_WRITERS },
		{ "readers", required_argument, NULL, O_READERS },
		{ "rate", required_argument, NULL, O_RATE },
		{ "depth", required_argument, NULL, O_DEPTH },
		{ "duration", required_argument, NULL, O_DUR },
		{ "max-writes", required_argument, NULL, O_MAXW },
		{ "server-pid", required_argument, NULL, O_PID },
		{ "json", no_argument, NULL, O_JSON },
		{ "peer-protocol", no_argument, NULL, O_PEER },
		{ "help", no_argument, NULL, O_HELP },
		{ "procs", required_argument, NULL, O_PROCS },
		{ "version", no_argument, NULL, O_VERSION },
		{ "nats", no_argument, NULL, O_NATS },
		{ "perf-syscalls", no_argument, NULL, O_PERF },
		{ NULL, 0, NULL, 0 }
	};
	int ch, have_url = 0, r;
	double v;

	o->writers = 1;
	o->depth = 1;
	o->procs = 1;
	o->duration = 5;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		const char *bad = NULL;
		switch (ch) {
		case O_URL:
			r = parse_url(optarg, o);
			if (r == -2)
				bad = "only loopback hosts (127.x.x.x, localhost) are allowed";
			else if (r)
				bad = "--url wants wss://HOST:PORT or ws://HOST:PORT";
			have_url = 1;
			break;
		case O_TOKEN:
			if (strlen(optarg) >= sizeof o->token || strpbrk(optarg, "/?# "))
				bad = "--token is too long or has / ? # or spaces";
			else
				snprintf(o->token, sizeof o->token, "%s", optarg);
			break;
		case O_SUBS:
			if (num_arg(optarg, 0, MAX_SUBS, &v)) bad = "--subscribers out of range";
			o->subs = (int)v;
			break;
		case O_WRITERS:
			if (num_arg(optarg, 0, MAX_WRITERS, &v)) bad = "--writers out of range";
			o->writers = (int)v;
			break;
		case O_READERS:
			if (num_arg(optarg, 0, MAX_READERS, &v)) bad = "--readers out of range";
			o->readers = (int)v;
			break;
		case O_RATE:
			if (num_arg(optarg, 0, 1e6, &v)) bad = "--rate wants 0..1000000";
			o->rate = v;
			break;
		case O_DEPTH:
			if (num_arg(optarg, 1, MAX_DEPTH, &v)) bad = "--depth out of range";
			o->depth = (int)v;
			break;
		case O_DUR:
			if (num_arg(optarg, 0.1, MAX_DURATION, &v)) bad = "--duration wants 0.1..600";
			o->duration = v;
			break;
		case O_MAXW:
			if (num_arg(optarg, 0, 1e9, &v)) bad = "--max-writes out of range";
			o->max_writes = (int)v;
			break;
		case O_PID:
			if (num_arg(optarg, 1, 1e9, &v)) bad = "--server-pid out of range";
			o->server_pid = (int)v;
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_PROCS:
			if (num_arg(optarg, 1, MAX_PROCS, &v)) bad = "--procs wants 1..8";
			o->procs = (int)v;
			break;
		case O_PEER:
			break;
		case O_NATS:
			o->nats = 1;
			break;
		case O_PERF:
			o->perf_syscalls = 1;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		case O_VERSION:
			version_print();
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "changelog-bench: %s\n", bad);
			return -1;
		}
	}
	if (optind != argc || !have_url || !o->token[0]) {
		fprintf(stderr, "changelog-bench: --url and --token are required\n");
		return -1;
	}
	if (o->nats && (o->writers > 1 || o->readers)) {
		fprintf(stderr, "changelog-bench: --nats takes at most 1 writer and no readers "
			"(NATS has no seq: one writer numbers the messages)\n");
		return -1;
	}
	if (!o->subs && !o->writers && !o->readers) {
		fprintf(stderr, "changelog-bench: nothing to do (no connections)\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench bench;   /* histograms are ~160 KB each: not on the stack */
	struct bench *b = &bench;
	struct lws_context_creation_info info;
	struct rlimit rl;
	int i, rc = 0;

	if (parse_opts(argc, argv, &b->o))
		return 2;
	b->rss_before_kb = rss_kb(b->o.server_pid);
	b->sock_before_kb = sock_kb();
	if (b->o.procs > 1 && b->o.subs >= b->o.procs) {
		int r = kids_fork(b);

		if (r < 0) {
			fprintf(stderr, "changelog-bench: cannot start helper processes: %s\n",
				strerror(errno));
			return 2;
		}
	}
	b->nconns = b->o.subs + b->o.writers + b->o.readers;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)b->nconns + 64) {
		fprintf(stderr, "changelog-bench: open file limit %lu is below %d connections\n",
			(unsigned long)rl.rlim_cur, b->nconns);
		return 2;
	}
	b->conns = calloc((size_t)b->nconns, sizeof *b->conns);
	if (!b->conns)
		return 2;
	for (i = 0; i < b->nconns; i++) {
		b->conns[i].b = b;
		b->conns[i].role = i < b->o.subs ? ROLE_SUB :
				   i < b->o.subs + b->o.writers ? ROLE_WRITER : ROLE_READER;
	}
	/* a helper stops when its parent says so (or goes away), not on ^C:
	 * the parent sends the last acked seq to check against */
	signal(SIGINT, b->helper ? SIG_IGN : on_signal);
	signal(SIGTERM, b->helper ? SIG_IGN : on_signal);
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.fd_limit_per_thread = (unsigned)b->nconns + 64;
	b->ctx = lws_create_context(&info);
	if (!b->ctx) {
		fprintf(stderr, "changelog-bench: lws_create_context failed\n");
		free(b->conns);
		return 2;
	}
	b->rss_after_kb = -1;
	b->rss_end_kb = -1;
	b->sock_after_kb = -1;
	b->sock_end_kb = -1;
	b->perf_pid = -1;
	b->t0 = now_ns();
	b->phase = b->o.subs ? PH_SUBS : PH_CLIENTS;
	b->t_phase = b->t0;
	connect_more(b);
	lws_sul_schedule(b->ctx, 0, &b->sul, tick, TICK_US);
	while (b->phase != PH_DONE) {
		if (lws_service(b->ctx, 0) < 0)
			break;
		drain_requesters(b);
	}
	if (!b->t_stop)
		b->t_stop = now_ns();
	if (b->helper && !b->cpu_self)
		b->cpu_self = cpu_s(0) - b->cpu_self0;
	perf_stop(b);   /* a run cut short */
	rc = b->helper ? helper_report(b) : report(b);
	json_decref(b->syscalls);
	lws_sul_cancel(&b->sul);
	lws_context_destroy(b->ctx);
	for (i = 0; i < b->nconns; i++)
		free(b->conns[i].rx);
	free(b->conns);
	return rc;
}
