/*
 * natsconn.c - NATS connection options for the publisher and the edge
 * (see natsconn.h).
 */
#include "natsconn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* "--nats a,b,c": libnats takes one URL in SetURL, a list in SetServers */
static natsStatus natsconn_servers(natsOptions *no, const char *url)
{
	char buf[4096], *save = NULL, *tok;
	const char *list[NATSCONN_MAX_URLS];
	int n = 0;

	if (!strchr(url, ','))
		return natsOptions_SetURL(no, url);
	if (strlen(url) >= sizeof buf)
		return NATS_INVALID_ARG;
	strcpy(buf, url);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (n == NATSCONN_MAX_URLS)
			return NATS_INVALID_ARG;
		list[n++] = tok;
	}
	if (n == 0)
		return NATS_INVALID_ARG;
	return natsOptions_SetServers(no, list, n);   /* it copies the strings */
}

int natsconn_options(natsOptions **out, const char *url, const char *creds,
		     natsConnectionHandler on_connected, natsConnectionHandler on_disconnected,
		     void *arg, char *why, size_t cap)
{
	natsOptions *no = NULL;
	natsStatus s;

	*out = NULL;
	if (creds) {
		/* libnats reads it only when it connects: say now that it cannot */
		FILE *f = fopen(creds, "r");

		if (!f) {
			snprintf(why, cap, "cannot read --nats-creds %s (%s)", creds, strerror(errno));
			return -1;
		}
		fclose(f);
	}
	s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = natsconn_servers(no, url);
	if (s == NATS_OK)
		s = natsOptions_SetName(no, "changelogd");
	if (s == NATS_OK && creds)
		s = natsOptions_SetUserCredentialsFromFiles(no, creds, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(no, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(no, 250);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(no, true, on_connected, arg);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(no, on_connected, arg);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(no, on_disconnected, arg);
	if (s != NATS_OK) {
		snprintf(why, cap, "--nats %s: %s", url,
			 s == NATS_INVALID_ARG ? "not a URL or a comma-separated list of at most "
			 "16 URLs" : nats_GetLastError(NULL));
		natsOptions_Destroy(no);
		return -1;
	}
	*out = no;
	return 0;
}

void natsconn_close(natsConnection *nc, jsCtx *js, natsOptions *no)
{
	if (nc)
		natsConnection_Close(nc);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(no);
}

void natsconn_free(natsConnection *nc, jsCtx *js, natsOptions *no)
{
	natsconn_close(nc, js, no);
	nats_CloseAndWait(2000);
}

void natsconn_rec_put(uint8_t *p, uint64_t seq, const uint8_t *val, size_t len)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(seq >> (56 - 8 * i));
	for (i = 0; i < 4; i++)
		p[8 + i] = (uint8_t)((uint32_t)len >> (24 - 8 * i));
	memcpy(p + NATSCONN_REC_HDR, val, len);
}

int natsconn_rec_next(const uint8_t *buf, size_t len, size_t *off, uint64_t *seq,
		      const uint8_t **val, size_t *vlen)
{
	const uint8_t *p = buf + *off;
	uint64_t s = 0;
	size_t n = 0;
	int i;

	if (*off >= len)
		return 0;
	if (len - *off < NATSCONN_REC_HDR)
		return -1;
	for (i = 0; i < 8; i++)
		s = s << 8 | p[i];
	for (i = 0; i < 4; i++)
		n = n << 8 | p[8 + i];
	if (len - *off - NATSCONN_REC_HDR < n)
		return -1;
	*seq = s;
	*val = p + NATSCONN_REC_HDR;
	*vlen = n;
	*off += NATSCONN_REC_HDR + n;
	return 1;
}
