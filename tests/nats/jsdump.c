/*
 * jsdump.c - a test helper (not installed): print a JetStream stream as
 * JSON lines, read with the NATS C client (libnats), so the integration
 * tests can compare what changelogd published with its log.
 *
 *   nats-jsdump URL STREAM
 *   nats-jsdump URL STREAM publish SUBJECT HEX
 *   nats-jsdump URL STREAM delete|purge
 *   nats-jsdump URL STREAM request SUBJECT TEXT
 *   nats-jsdump URL STREAM serve SUBJECT HEX EPOCH
 *
 * The second form plays a foreign publisher: it stores the bytes HEX on SUBJECT
 * (no expectations) and prints {"seq":N} or {"error":"..."}. The third
 * deletes the stream, or purges its messages (its last seq stays), and
 * prints {"ok":true} or {"error":"..."}. "request" sends TEXT to SUBJECT
 * (request/reply: a writer's service, net/natssvc.h) and prints
 * {"data":"<the reply>"} or {"error":"..."}. "serve" plays a writer's
 * fetch service: it prints {"ready":true}, then answers every request on
 * SUBJECT with the bytes HEX and the header Changelog-Epoch: EPOCH, for at
 * most 120 s (the test stops it sooner).
 *
 * First line: {"stream","description","first_seq","last_seq","messages"}
 * (or {"error":"..."}); then one line per stored message, in order:
 * {"seq","subject","msg_id","expected_last_seq","expected_last_subject_seq",
 *  "data" (hex)}, a header that is absent being null.
 * Exit status: 0, 1 when the stream cannot be read, 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nats/nats.h>

static void put(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

static json_t *header(natsMsg *m, const char *name)
{
	const char *v = NULL;

	return natsMsgHeader_Get(m, name, &v) == NATS_OK && v ? json_string(v) : json_null();
}

static char *unhex(const char *h, size_t *n)
{
	char *bytes;

	*n = strlen(h) / 2;
	bytes = malloc(*n + 1);
	for (size_t i = 0; bytes && i < *n; i++) {
		unsigned v;

		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			v = 0;
		bytes[i] = (char)v;
	}
	return bytes;
}

/* "request" and "serve" (see the top). */
static int service(natsConnection *nc, char **argv)
{
	if (strcmp(argv[3], "request") == 0) {
		natsMsg *m = NULL;
		natsStatus s = natsConnection_RequestString(&m, nc, argv[4], argv[5], 10000);

		if (s != NATS_OK) {
			put(json_pack("{ss}", "error", natsStatus_GetText(s)));
			return 1;
		}
		put(json_pack("{ss#}", "data", natsMsg_GetData(m), natsMsg_GetDataLength(m)));
		natsMsg_Destroy(m);
		return 0;
	} else {
		natsSubscription *sub = NULL;
		size_t n;
		char *bytes = unhex(argv[5], &n);
		int turns = 0;

		if (!bytes || natsConnection_SubscribeSync(&sub, nc, argv[4]) != NATS_OK ||
		    natsConnection_Flush(nc) != NATS_OK)
			return 1;
		put(json_pack("{sb}", "ready", 1));
		fflush(stdout);
		while (turns++ < 480) {
			natsMsg *req = NULL, *rep = NULL;

			if (natsSubscription_NextMsg(&req, sub, 250) != NATS_OK)
				continue;
			if (natsMsg_GetReply(req) &&
			    natsMsg_Create(&rep, natsMsg_GetReply(req), NULL, bytes, (int)n) == NATS_OK) {
				natsMsgHeader_Set(rep, "Changelog-Epoch", argv[6]);
				natsConnection_PublishMsg(nc, rep);
				natsConnection_Flush(nc);
			}
			natsMsg_Destroy(rep);
			natsMsg_Destroy(req);
		}
		natsSubscription_Destroy(sub);
		free(bytes);
		return 0;
	}
}

static json_t *hex(const char *p, int n)
{
	static const char digits[] = "0123456789abcdef";
	char *h = malloc((size_t)n * 2 + 1);
	json_t *j;

	if (!h)
		return json_null();
	for (int i = 0; i < n; i++) {
		h[2 * i] = digits[(unsigned char)p[i] >> 4];
		h[2 * i + 1] = digits[(unsigned char)p[i] & 15];
	}
	h[2 * n] = '\0';
	j = json_string(h);
	free(h);
	return j;
}

int main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int rc = 0;

	if ((argc == 6 && strcmp(argv[3], "request") == 0) ||
	    (argc == 7 && strcmp(argv[3], "serve") == 0)) {
		s = natsConnection_ConnectTo(&nc, argv[1]);
		rc = s == NATS_OK ? service(nc, argv) : 1;
		if (s != NATS_OK)
			put(json_pack("{ss}", "error", natsStatus_GetText(s)));
		natsConnection_Destroy(nc);
		nats_CloseAndWait(2000);
		return rc;
	}
	if (argc != 3 && !(argc == 6 && strcmp(argv[3], "publish") == 0) &&
	    !(argc == 4 && (strcmp(argv[3], "delete") == 0 || strcmp(argv[3], "purge") == 0))) {
		fprintf(stderr, "usage: nats-jsdump URL STREAM [publish SUBJECT HEX | delete | "
			"purge]\n");
		return 2;
	}
	s = natsConnection_ConnectTo(&nc, argv[1]);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK && argc == 6) {
		jsPubAck *pa = NULL;
		size_t n;
		char *bytes = unhex(argv[5], &n);
		s = bytes ? js_Publish(&pa, js, argv[4], bytes, (int)n, NULL, &jerr) : NATS_NO_MEMORY;
		free(bytes);
		if (s == NATS_OK)
			put(json_pack("{sI}", "seq", (json_int_t)pa->Sequence));
		jsPubAck_Destroy(pa);
		if (s == NATS_OK)
			goto out;
	} else if (s == NATS_OK && argc == 4) {
		if (strcmp(argv[3], "delete") == 0)
			s = js_DeleteStream(js, argv[2], NULL, &jerr);
		else
			s = js_PurgeStream(js, argv[2], NULL, &jerr);
		if (s == NATS_OK) {
			put(json_pack("{sb}", "ok", 1));
			goto out;
		}
	} else if (s == NATS_OK)
		s = js_GetStreamInfo(&si, js, argv[2], NULL, &jerr);
	if (s != NATS_OK) {
		char err[200];

		snprintf(err, sizeof err, "%s (%d)", natsStatus_GetText(s), (int)jerr);
		put(json_pack("{ss}", "error", err));
		rc = 1;
		goto out;
	}
	put(json_pack("{sssosIsIsI}", "stream", argv[2], "description",
		      si->Config->Description ? json_string(si->Config->Description) : json_null(),
		      "first_seq", (json_int_t)si->State.FirstSeq,
		      "last_seq", (json_int_t)si->State.LastSeq,
		      "messages", (json_int_t)si->State.Msgs));
	for (uint64_t seq = si->State.FirstSeq; si->State.Msgs && seq <= si->State.LastSeq; seq++) {
		natsMsg *m = NULL;

		jerr = 0;
		s = js_GetMsg(&m, js, argv[2], seq, NULL, &jerr);
		if (s != NATS_OK)
			continue;       /* deleted: the gap shows in the seqs printed */
		put(json_pack("{sIsssosososo}", "seq", (json_int_t)seq,
			      "subject", natsMsg_GetSubject(m),
			      "msg_id", header(m, "Nats-Msg-Id"),
			      "expected_last_seq", header(m, "Nats-Expected-Last-Sequence"),
			      "expected_last_subject_seq",
			      header(m, "Nats-Expected-Last-Subject-Sequence"),
			      "data", hex(natsMsg_GetData(m), natsMsg_GetDataLength(m))));
		natsMsg_Destroy(m);
	}
out:
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(2000);
	return rc;
}
