/*
 * test_net_webhook.c - net/webhook.c: the retry schedule (doubling from the
 * minimum, capped, no overflow however many failures).
 */
#include "harness.h"
#include "../../net/webhook.h"

static void t_backoff(void)
{
	CHECK_EQ_INT(webhook_backoff_ms(0, 1000, 600000), 0);
	CHECK_EQ_INT(webhook_backoff_ms(1, 1000, 600000), 1000);
	CHECK_EQ_INT(webhook_backoff_ms(2, 1000, 600000), 2000);
	CHECK_EQ_INT(webhook_backoff_ms(3, 1000, 600000), 4000);
	CHECK_EQ_INT(webhook_backoff_ms(10, 1000, 600000), 512000);
	CHECK_EQ_INT(webhook_backoff_ms(11, 1000, 600000), 600000);   /* the cap */
	CHECK_EQ_INT(webhook_backoff_ms(1000000, 1000, 600000), 600000);
	CHECK_EQ_INT(webhook_backoff_ms(4000000000u, 20, 200), 200);
	/* never decreasing, never past the cap */
	for (unsigned n = 1; n < 200; n++) {
		CHECK(webhook_backoff_ms(n + 1, 7, 100000) >= webhook_backoff_ms(n, 7, 100000));
		CHECK(webhook_backoff_ms(n, 7, 100000) <= 100000);
	}
	/* a minimum above the cap: the cap */
	CHECK_EQ_INT(webhook_backoff_ms(1, 5000, 100), 100);
	CHECK_EQ_INT(webhook_backoff_ms(64, UINT64_MAX / 2 + 1, UINT64_MAX), UINT64_MAX);
}

int main(void)
{
	RUN(t_backoff);
	return harness_done();
}
