/* test_net_natsconn.c - net/natsconn.c: the records of a fetch reply (the
 * writer's catch-up service, net/natssvc.c, read by net/edge.c). */
#include "harness.h"
#include "../../net/natsconn.h"

#include <stdlib.h>

static void t_records_roundtrip(void)
{
	uint8_t buf[3 * NATSCONN_REC_HDR + 3 + 16];
	const uint8_t *val;
	size_t off = 0, len = 0, vlen;
	uint64_t seq;

	natsconn_rec_put(buf, 7, (const uint8_t *)"abc", 3);
	len += NATSCONN_REC_HDR + 3;
	natsconn_rec_put(buf + len, 0x0102030405060708ull, (const uint8_t *)"", 0);
	len += NATSCONN_REC_HDR;
	natsconn_rec_put(buf + len, 9, (const uint8_t *)"0123456789abcdef", 16);
	len += NATSCONN_REC_HDR + 16;
	/* big-endian on the wire: seq then length */
	CHECK_EQ_INT(buf[7], 7);
	CHECK_EQ_INT(buf[11], 3);
	CHECK_EQ_INT(natsconn_rec_next(buf, len, &off, &seq, &val, &vlen), 1);
	CHECK_EQ_INT(seq, 7);
	CHECK(vlen == 3 && memcmp(val, "abc", 3) == 0);
	CHECK_EQ_INT(natsconn_rec_next(buf, len, &off, &seq, &val, &vlen), 1);
	CHECK(seq == 0x0102030405060708ull && vlen == 0);
	CHECK_EQ_INT(natsconn_rec_next(buf, len, &off, &seq, &val, &vlen), 1);
	CHECK(seq == 9 && vlen == 16 && memcmp(val, "0123456789abcdef", 16) == 0);
	CHECK_EQ_INT(natsconn_rec_next(buf, len, &off, &seq, &val, &vlen), 0);
	CHECK_EQ_INT(off, len);
}

static void t_records_cut_short(void)
{
	uint8_t buf[NATSCONN_REC_HDR + 4];
	const uint8_t *val;
	size_t off, vlen, n;
	uint64_t seq;

	natsconn_rec_put(buf, 1, (const uint8_t *)"wxyz", 4);
	/* every shorter body is refused, never read past */
	for (n = 1; n < sizeof buf; n++) {
		off = 0;
		CHECK_EQ_INT(natsconn_rec_next(buf, n, &off, &seq, &val, &vlen), -1);
		CHECK_EQ_INT(off, 0);
	}
	off = 0;
	CHECK_EQ_INT(natsconn_rec_next(buf, 0, &off, &seq, &val, &vlen), 0);
	/* a length that claims more than the body holds */
	buf[8] = 0xff;
	off = 0;
	CHECK_EQ_INT(natsconn_rec_next(buf, sizeof buf, &off, &seq, &val, &vlen), -1);
}

int main(void)
{
	RUN(t_records_roundtrip);
	RUN(t_records_cut_short);
	return harness_done();
}
