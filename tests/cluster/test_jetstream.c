/* test_jetstream.c - daemon/jetstream.c against a real 3-node nats-server cluster.
 *
 * Each test starts its own cluster with nats-cluster.sh in a fresh temporary
 * directory (Criterion forks each test; the fixture runs in the child) and
 * stops it afterwards.  Suite `cluster`; needs nats-server on PATH.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jetstream.h"
#include "sv/error.h"

static char dir[256];
static char urls[512];
static char script[512];

static int sh(const char *fmt, const char *arg)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "'%s' %s '%s' %s >/dev/null", script, fmt, dir, arg ? arg : "");
	return system(cmd);
}

static void cluster_up(void)
{
	const char *src = getenv("SV_SOURCE_ROOT");
	char path[300];
	FILE *f;

	snprintf(script, sizeof script, "%s/tests/cluster/nats-cluster.sh", src ? src : ".");
	snprintf(dir, sizeof dir, "/tmp/svjs.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(sh("start", NULL), 0, "cluster did not start");
	snprintf(path, sizeof path, "%s/urls", dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(urls, sizeof urls, f));
	urls[strcspn(urls, "\n")] = '\0';
	fclose(f);
}

static void cluster_down(void)
{
	char cmd[600];

	sh("stop", NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static sv_js *connect_js(void)
{
	sv_js *js = NULL;
	int rc = sv_js_open(&js, urls, 5000);

	cr_assert_eq(rc, 0, "open: %s", sv_js_strerror(rc));
	return js;
}

static void pairs_stream(sv_js *js, int replicas)
{
	struct sv_js_stream_cfg sc = {
		.name = "SV_PAIRS", .subjects = "sv.pairs", .replicas = replicas,
		.duplicates_ns = 120LL * 1000000000LL,
	};
	int rc = 0;

	/* right after start the meta leader may still be settling: retry */
	for (int i = 0; i < 50; i++) {
		rc = sv_js_stream_ensure(js, &sc);
		if (rc == 0)
			return;
		usleep(200000);
	}
	cr_assert_fail("stream_ensure: %s (%s)", sv_js_strerror(rc), sv_js_detail(js));
}

TestSuite(jetstream, .init = cluster_up, .fini = cluster_down, .timeout = 120);

Test(jetstream, open_rejects_bad_arguments_and_dead_servers)
{
	sv_js *js = (sv_js *)0x1;

	cr_assert_eq(sv_js_open(&js, "", 1000), SV_ERR_RANGE);
	cr_assert_eq(sv_js_open(&js, urls, 0), SV_ERR_RANGE);
	cr_assert_eq(sv_js_open(&js, "nats://127.0.0.1:1", 500), SV_JS_ERR_CONNECT);
	cr_assert_eq(js, (sv_js *)0x1, "out-parameter written on failure");
	sv_js_close(NULL);
	cr_assert_str_eq(sv_js_strerror(SV_JS_ERR_STALE),
			 "compare-and-set refused: the revision moved on");
}

Test(jetstream, publish_dedups_by_msgid)
{
	sv_js *js = connect_js();
	char id[SV_JS_MSGID_LEN + 1], id2[SV_JS_MSGID_LEN + 1];
	uint64_t s1 = 0, s2 = 0, s3 = 0, last = 0;
	bool dup = true;

	pairs_stream(js, 3);
	sv_js_msgid(id, 7, 1);
	cr_assert_str_eq(id, "0000000000000007-0000000000000001");
	cr_assert_eq(sv_js_publish(js, "sv.pairs", id, "a", 1, 5000, &s1, &dup), 0);
	cr_assert_not(dup);
	cr_assert_eq(sv_js_publish(js, "sv.pairs", id, "a", 1, 5000, &s2, &dup), 0);
	cr_assert(dup, "same msg id not flagged duplicate");
	cr_assert_eq(s2, s1);
	sv_js_msgid(id2, 7, 2);
	cr_assert_eq(sv_js_publish(js, "sv.pairs", id2, "b", 1, 5000, &s3, &dup), 0);
	cr_assert_not(dup);
	cr_assert_eq(s3, s1 + 1);

	/* a pipelined batch with a resend inside and of an earlier message */
	struct sv_js_pub b[200];
	char ids[200][SV_JS_MSGID_LEN + 1];
	for (int i = 0; i < 200; i++) {
		sv_js_msgid(ids[i], 9, (uint64_t)(i < 100 ? i : i - 100)); /* second half resends */
		b[i] = (struct sv_js_pub){.msgid = ids[i], .data = ids[i], .len = 33};
	}
	int rc = sv_js_publish_batch(js, "sv.pairs", b, 200, 10000);
	cr_assert_eq(rc, 0, "batch: %s (%s)", sv_js_strerror(rc), sv_js_detail(js));
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(b[i].rc, 0);
		cr_assert_eq(b[i + 100].rc, 0);
		cr_assert(b[i + 100].duplicate, "resend %d not duplicate", i);
		cr_assert_eq(b[i + 100].stream_seq, b[i].stream_seq);
	}
	cr_assert_eq(sv_js_stream_last_seq(js, "SV_PAIRS", &last), 0);
	cr_assert_eq(last, 102, "each distinct id stored once: last seq %llu",
		     (unsigned long long)last);
	cr_assert_eq(sv_js_stream_last_seq(js, "NOPE", &last), SV_ERR_NOTFOUND);
	sv_js_close(js);
}

/* Messages 1..n of client `client` on sv.pairs, each holding its seq. */
static void publish_seqs(sv_js *js, uint64_t client, uint64_t n)
{
	for (uint64_t i = 1; i <= n; i++) {
		char id[SV_JS_MSGID_LEN + 1];

		sv_js_msgid(id, client, i);
		cr_assert_eq(sv_js_publish(js, "sv.pairs", id, &i, sizeof i, 5000, NULL, NULL), 0);
	}
}

/* Fetches until n messages or a timeout; returns their sequences. */
static int drain(sv_js_consumer *c, uint64_t *seqs, int n)
{
	int got = 0;

	while (got < n) {
		struct sv_js_msg m[8];
		int k = 0;
		int rc = sv_js_fetch(c, m, 8, 2000, &k);

		cr_assert_eq(rc, 0, "fetch: %s", sv_js_strerror(rc));
		if (k == 0)
			break;
		for (int i = 0; i < k && got < n; i++)
			seqs[got++] = m[i].stream_seq;
		cr_assert_eq(sv_js_ack_upto(c, m[k - 1].stream_seq), 0);
	}
	return got;
}

Test(jetstream, consumer_resumes_after_reconnect)
{
	sv_js *js = connect_js();
	sv_js_consumer *c = NULL;
	struct sv_js_msg m[5];
	uint64_t seqs[20];
	int k = 0, rc;

	pairs_stream(js, 3);
	publish_seqs(js, 1, 10);
	struct sv_js_consumer_cfg cc = {.stream = "SV_PAIRS", .durable = "trainer",
					.ack_wait_ms = 1000};
	rc = sv_js_consumer_open(&c, js, &cc);
	cr_assert_eq(rc, 0, "consumer: %s (%s)", sv_js_strerror(rc), sv_js_detail(js));
	/* the first five, over as many fetches as it takes (a fetch returns what
	 * the consumer has at once) */
	for (int got = 0, tries = 0; got < 5; got += k, tries++) {
		cr_assert_lt(tries, 20);
		cr_assert_eq(sv_js_fetch(c, m, 5 - got, 5000, &k), 0);
		for (int i = 0; i < k; i++) {
			cr_assert_eq(m[i].stream_seq, (uint64_t)(got + i) + 1);
			cr_assert_eq(*(const uint64_t *)m[i].data, (uint64_t)(got + i) + 1);
			cr_assert_eq(m[i].delivered, 1);
		}
	}
	cr_assert_eq(sv_js_ack_upto(c, 99), SV_ERR_RANGE);
	/* the caller committed 1..4 but crashed before acking 4: ack only 3 */
	cr_assert_eq(sv_js_ack_upto(c, 3), 0);
	sv_js_consumer_close(c);
	sv_js_close(js);

	sleep(2); /* past AckWait: 4 and 5 are due for redelivery */
	js = connect_js();
	cc.resume_after = 4; /* what the caller's LMDB recorded */
	cr_assert_eq(sv_js_consumer_open(&c, js, &cc), 0);
	int got = drain(c, seqs, 20);
	cr_assert_eq(got, 6, "after resume got %d messages", got);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(seqs[i], (uint64_t)i + 5, "message %d is seq %llu", i,
			     (unsigned long long)seqs[i]);
	cr_assert_eq(sv_js_consumer_acked(c), 10);
	sv_js_consumer_close(c);

	/* a new durable (a replica bootstrapped from a backup at seq 7) starts at 8 */
	struct sv_js_consumer_cfg rc7 = {.stream = "SV_PAIRS", .durable = "replica-a",
					 .resume_after = 7};
	cr_assert_eq(sv_js_consumer_open(&c, js, &rc7), 0);
	got = drain(c, seqs, 20);
	cr_assert_eq(got, 3);
	cr_assert_eq(seqs[0], 8);
	sv_js_consumer_close(c);

	struct sv_js_consumer_cfg bad = {.stream = "NOPE", .durable = "x"};
	c = (sv_js_consumer *)0x1;
	cr_assert_eq(sv_js_consumer_open(&c, js, &bad), SV_ERR_NOTFOUND);
	cr_assert_eq(c, (sv_js_consumer *)0x1);
	sv_js_close(js);
}

Test(jetstream, items_stream_keeps_latest_per_id)
{
	sv_js *js = connect_js();
	struct sv_js_stream_cfg sc = {.name = "SV_ITEMS", .subjects = "sv.items.>", .replicas = 3,
				      .duplicates_ns = 1000000000LL, .max_msgs_per_subject = 1};
	sv_js_consumer *c = NULL;
	struct sv_js_msg m[10];
	int k = 0, rc = SV_JS_ERR_API;

	for (int i = 0; i < 50 && rc != 0; i++, usleep(200000))
		rc = sv_js_stream_ensure(js, &sc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(sv_js_publish(js, "sv.items.1", NULL, "v1", 2, 5000, NULL, NULL), 0);
	cr_assert_eq(sv_js_publish(js, "sv.items.2", NULL, "w1", 2, 5000, NULL, NULL), 0);
	cr_assert_eq(sv_js_publish(js, "sv.items.1", NULL, "v2", 2, 5000, NULL, NULL), 0);
	struct sv_js_consumer_cfg cc = {.stream = "SV_ITEMS", .durable = "replica-b"};
	cr_assert_eq(sv_js_consumer_open(&c, js, &cc), 0);
	/* what the stream holds, over as many fetches as it takes */
	char vals[3][3] = {{0}};
	uint64_t last = 0;
	int n = 0;
	for (int tries = 0; tries < 10; tries++) {
		cr_assert_eq(sv_js_fetch(c, m, 10, tries ? 500 : 3000, &k), 0);
		for (int i = 0; i < k && n + i < 3; i++) {
			memcpy(vals[n + i], m[i].data, 2);
			last = m[i].stream_seq;
		}
		n += k;
		if (k == 0 && n > 0)
			break;
	}
	cr_assert_eq(n, 2, "only the latest value per id remains");
	cr_assert_str_eq(vals[0], "w1");
	cr_assert_str_eq(vals[1], "v2");
	cr_assert_eq(last, 3);
	sv_js_consumer_close(c);
	sv_js_close(js);
}

/* The model at revision want or later.  A read may be served by a bucket
 * replica that has not applied the put yet (NOTFOUND, or a manifest whose
 * chunks are not there: CORRUPT, retried inside): ask again, for up to 10 s. */
static int model_get_at(sv_js_kv *kv, const char *name, uint64_t want, void **blob,
                        size_t *len, uint64_t *rev)
{
	int rc = 0;

	for (int i = 0; i < 100; i++) {
		rc = sv_js_model_get(kv, name, blob, len, rev);
		if (rc == 0 && *rev >= want)
			return 0;
		if (rc == 0)
			free(*blob);
		if (i == 0)
			fprintf(stderr, "model %s: not yet at revision %llu (%d): asking again\n", name,
			        (unsigned long long)want, rc);
		usleep(100000);
	}
	return rc ? rc : SV_ERR_NOTFOUND;
}

Test(jetstream, stale_model_write_is_refused)
{
	sv_js *js = connect_js();
	sv_js_kv *kv = NULL;
	uint64_t r1 = 0, r2 = 0, r3 = 0, rev = 0;
	void *blob = NULL;
	size_t len = 0;
	int rc;

	rc = sv_js_kv_open(&kv, js, "sv_models", 3, 0, false);
	cr_assert_eq(rc, 0, "kv: %s (%s)", sv_js_strerror(rc), sv_js_detail(js));
	cr_assert_eq(sv_js_model_get(kv, "model", &blob, &len, &rev), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_js_model_put(kv, "model", "version-1", 9, 0, 0, &r1), 0);
	cr_assert_eq(sv_js_model_put(kv, "model", "version-x", 9, 0, 0, &r3), SV_JS_ERR_STALE,
		     "create over an existing model accepted");
	/* two trainers both saw r1; the first write wins, the second is stale */
	cr_assert_eq(sv_js_model_put(kv, "model", "version-2", 9, 0, r1, &r2), 0);
	cr_assert_gt(r2, r1);
	r3 = 0;
	cr_assert_eq(sv_js_model_put(kv, "model", "stale-3!!", 9, 0, r1, &r3), SV_JS_ERR_STALE);
	cr_assert_eq(r3, 0, "out-parameter written on failure");
	cr_assert_eq(model_get_at(kv, "model", r2, &blob, &len, &rev), 0);
	cr_assert_eq(len, 9);
	cr_assert_eq(memcmp(blob, "version-2", 9), 0);
	cr_assert_eq(rev, r2);
	free(blob);
	cr_assert_eq(sv_js_model_rev(kv, "model", &rev), 0);
	cr_assert_eq(rev, r2);
	sv_js_kv_close(kv);
	sv_js_close(js);
}

Test(jetstream, chunked_model_round_trip)
{
	sv_js *js = connect_js();
	sv_js_kv *kv = NULL;
	uint64_t r1 = 0, r2 = 0, rev = 0;
	size_t n = 784 * 64 * 4, big = sv_js_max_payload(js) + 12345, len = 0;
	unsigned char *w = malloc(big);
	void *back = NULL;

	cr_assert_eq(sv_js_kv_open(&kv, js, "sv_models", 3, 0, false), 0);
	srand(17);
	for (size_t i = 0; i < big; i++)
		w[i] = (unsigned char)rand();
	/* a 784x64 float32 W in 64 KiB chunks */
	cr_assert_eq(sv_js_model_put(kv, "model", w, n, 65536, 0, &r1), 0);
	cr_assert_eq(model_get_at(kv, "model", r1, &back, &len, &rev), 0);
	cr_assert_eq(len, n);
	cr_assert_eq(rev, r1);
	cr_assert_eq(memcmp(back, w, n), 0);
	free(back);
	/* larger than one message can carry, with chunks at their default size */
	cr_assert_eq(sv_js_model_put(kv, "model", w, big, 0, r1, &r2), 0);
	cr_assert_eq(model_get_at(kv, "model", r2, &back, &len, &rev), 0);
	cr_assert_eq(len, big);
	cr_assert_eq(rev, r2);
	cr_assert_eq(memcmp(back, w, big), 0);
	free(back);
	cr_assert_eq(sv_js_model_put(kv, "model", w, n, big, r2, NULL), SV_ERR_TOOBIG);
	/* an empty model is a valid version too */
	cr_assert_eq(sv_js_model_put(kv, "empty", w, 0, 0, 0, &r1), 0);
	cr_assert_eq(model_get_at(kv, "empty", r1, &back, &len, &rev), 0);
	cr_assert_eq(len, 0);
	free(back);
	free(w);
	sv_js_kv_close(kv);
	sv_js_close(js);
}

Test(jetstream, lease_lapses_and_standby_takes_over)
{
	sv_js *a = connect_js(), *b = connect_js();
	sv_js_kv *ka = NULL, *kb = NULL;
	uint64_t ra = 0, rb = 0, rev = 0;
	char who[64];
	int rc;

	cr_assert_eq(sv_js_kv_open(&ka, a, "sv_lease", 3, 2000, false), 0);
	cr_assert_eq(sv_js_kv_open(&kb, b, "sv_lease", 3, 2000, false), 0);
	cr_assert_eq(sv_js_lease_holder(kb, "trainer", who, sizeof who, &rev), SV_ERR_NOTFOUND);
	cr_assert_eq(sv_js_lease_acquire(ka, "trainer", "node-a", &ra), 0);
	cr_assert_eq(sv_js_lease_acquire(kb, "trainer", "node-b", &rb), SV_JS_ERR_HELD);
	cr_assert_eq(sv_js_lease_holder(kb, "trainer", who, sizeof who, &rev), 0);
	cr_assert_str_eq(who, "node-a");
	/* renewing keeps it past its TTL */
	for (int i = 0; i < 4; i++) {
		usleep(700000);
		cr_assert_eq(sv_js_lease_renew(ka, "trainer", "node-a", ra, &ra), 0);
		cr_assert_eq(sv_js_lease_acquire(kb, "trainer", "node-b", &rb), SV_JS_ERR_HELD);
	}
	/* the leader stops renewing: the standby retries create until it lapses */
	double t0 = now_s();
	do {
		rc = sv_js_lease_acquire(kb, "trainer", "node-b", &rb);
		if (rc == SV_JS_ERR_HELD)
			usleep(100000);
	} while (rc == SV_JS_ERR_HELD && now_s() - t0 < 20);
	double took = now_s() - t0;
	cr_assert_eq(rc, 0, "standby did not take over: %s", sv_js_strerror(rc));
	cr_assert_geq(took, 1.0, "lease lapsed after %.2f s, before its TTL", took);
	fprintf(stderr, "lease takeover %.2f s after the last renew (TTL 2 s)\n", took);
	/* the old leader's renew is refused: it must stop publishing */
	cr_assert_eq(sv_js_lease_renew(ka, "trainer", "node-a", ra, &ra), SV_JS_ERR_STALE);
	cr_assert_eq(sv_js_lease_renew(kb, "trainer", "node-b", rb, &rb), 0);
	/* a graceful stop: only the holder's release counts, and the next
	 * acquire succeeds at once, well inside the TTL */
	cr_assert_eq(sv_js_lease_release(ka, "trainer", "node-a", ra), SV_JS_ERR_STALE);
	cr_assert_eq(sv_js_lease_acquire(ka, "trainer", "node-a", &ra), SV_JS_ERR_HELD);
	cr_assert_eq(sv_js_lease_release(kb, "trainer", "node-b", rb), 0);
	/* at once: b had just renewed it, so anything but a release answers HELD */
	cr_assert_eq(sv_js_lease_acquire(ka, "trainer", "node-a", &ra), 0,
		     "the released lease could not be taken");
	/* a read may come from a follower that has not applied it yet */
	t0 = now_s();
	do
		rc = sv_js_lease_holder(kb, "trainer", who, sizeof who, &rev);
	while ((rc != 0 || strcmp(who, "node-a") != 0) && now_s() - t0 < 10 && usleep(50000) == 0);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(who, "node-a");
	sv_js_kv_close(ka);
	sv_js_kv_close(kb);
	sv_js_close(a);
	sv_js_close(b);
}

Test(jetstream, no_ack_with_two_nodes_down)
{
	sv_js *js = connect_js();
	char id[SV_JS_MSGID_LEN + 1];
	uint64_t last = 0, seq = 0, before = 0;
	int rc;

	pairs_stream(js, 3);
	for (uint64_t i = 1; i <= 5; i++) {
		sv_js_msgid(id, 3, i);
		cr_assert_eq(sv_js_publish(js, "sv.pairs", id, "p", 1, 5000, NULL, NULL), 0);
	}
	cr_assert_eq(sv_js_stream_last_seq(js, "SV_PAIRS", &before), 0);
	cr_assert_eq(before, 5);
	/* take down two of three: whichever the client is on may go, it reconnects */
	sh("kill", "2");
	sh("kill", "3");
	double t0 = now_s();
	sv_js_msgid(id, 3, 6);
	rc = sv_js_publish(js, "sv.pairs", id, "p", 1, 2000, &seq, NULL);
	double took = now_s() - t0;
	/* no ack: a timeout, no responders, or the connection failing while the
	 * client reconnects; any of them, never success */
	cr_assert_neq(rc, 0, "publish without quorum was acked (seq %llu)",
		      (unsigned long long)seq);
	cr_assert_lt(took, 4.0, "no-ack took %.2f s for a 2 s timeout", took);
	struct sv_js_pub b[3];
	char ids[3][SV_JS_MSGID_LEN + 1];
	for (int i = 0; i < 3; i++) {
		sv_js_msgid(ids[i], 3, 7 + (uint64_t)i);
		b[i] = (struct sv_js_pub){.msgid = ids[i], .data = "q", .len = 1};
	}
	rc = sv_js_publish_batch(js, "sv.pairs", b, 3, 2000);
	cr_assert_neq(rc, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_neq(b[i].rc, 0, "message %d acked without quorum", i);

	cr_assert_eq(sh("restart", "2"), 0);
	cr_assert_eq(sh("restart", "3"), 0);
	/* quorum is back.  No ack means "unknown", not "not stored": the
	 * surviving node may have appended them and commits them now.  What
	 * must hold: nothing is torn or doubled, and a resend with the same ids
	 * stores each message exactly once. */
	rc = -1;
	for (int i = 0; i < 100 && rc != 0; i++, usleep(200000))
		rc = sv_js_stream_last_seq(js, "SV_PAIRS", &last);
	cr_assert_eq(rc, 0);
	cr_assert(last >= before && last <= before + 4, "last seq %llu", (unsigned long long)last);
	sv_js_msgid(id, 3, 6);
	rc = -1;
	for (int i = 0; i < 100 && rc != 0; i++, usleep(200000))
		rc = sv_js_publish(js, "sv.pairs", id, "p", 1, 2000, &seq, NULL);
	cr_assert_eq(rc, 0, "publish after recovery: %s", sv_js_strerror(rc));
	for (int i = 0; i < 3; i++)
		b[i].rc = -1;
	cr_assert_eq(sv_js_publish_batch(js, "sv.pairs", b, 3, 5000), 0);
	cr_assert_eq(sv_js_stream_last_seq(js, "SV_PAIRS", &last), 0);
	cr_assert_eq(last, before + 4, "resends doubled messages: last seq %llu",
		     (unsigned long long)last);
	/* and the log reads back as ids 1..9 of client 3, each once, untorn */
	sv_js_consumer *c = NULL;
	struct sv_js_consumer_cfg cc = {.stream = "SV_PAIRS", .durable = "check"};
	struct sv_js_msg m[16];
	int k = 0;
	bool seen[10] = {false};
	cr_assert_eq(sv_js_consumer_open(&c, js, &cc), 0);
	/* a fetch returns what the consumer has at once (or waits for one): read
	 * until all nine came, checking each fetch's messages before the next */
	for (int tries = 0, n = 0; k < 9 && tries < 20; tries++) {
		cr_assert_eq(sv_js_fetch(c, m, 16, 2000, &n), 0);
		for (int i = 0; i < n; i++) {
			unsigned long long cid = 0, s9 = 0;
			cr_assert_eq(sscanf(m[i].msgid, "%llx-%llx", &cid, &s9), 2);
			cr_assert_eq(cid, 3);
			cr_assert(s9 >= 1 && s9 <= 9 && !seen[s9], "id %llu twice or out of range",
			          s9);
			seen[s9] = true;
			cr_assert_eq(m[i].len, 1);
		}
		k += n;
	}
	cr_assert_eq(k, 9);
	cr_assert_eq(sv_js_fetch(c, m, 16, 500, &k), 0);
	cr_assert_eq(k, 0, "more than the nine messages in the log");
	sv_js_consumer_close(c);
	sv_js_close(js);
}

/* Reaps until want outcomes came or timeout_s passed; returns how many. */
static size_t reap_all(sv_js_pipe *p, struct sv_js_done *out, size_t want, int64_t ack_ms,
		       double timeout_s)
{
	size_t got = 0;
	double end = now_s() + timeout_s;

	while (got < want && now_s() < end) {
		got += sv_js_pipe_reap(p, out + got, want - got, ack_ms);
		usleep(1000);
	}
	return got;
}

Test(jetstream, pipe_reports_each_ack_and_bounds_the_window)
{
	sv_js *js = connect_js();
	sv_js_pipe *p = NULL;
	struct sv_js_done d[80];
	char ids[65][SV_JS_MSGID_LEN + 1];
	bool seen[64] = {false};
	uint64_t lo = UINT64_MAX, hi = 0;
	int rc;

	pairs_stream(js, 3);
	cr_assert_eq(sv_js_pipe_open(&p, js, 0), SV_ERR_RANGE);
	cr_assert_eq(sv_js_pipe_open(&p, js, 4), 0); /* closed unused (a gateway that got nothing) */
	sv_js_pipe_close(p);
	cr_assert_eq(sv_js_pipe_open(&p, js, 64), 0);
	cr_assert_geq(sv_js_pipe_fd(p), 0);
	for (int i = 0; i < 64; i++) {
		sv_js_msgid(ids[i], 11, (uint64_t)i + 1);
		rc = sv_js_pipe_send(p, "sv.pairs", ids[i], ids[i], 33, (uint64_t)i);
		cr_assert_eq(rc, 0, "send %d: %s", i, sv_js_strerror(rc));
	}
	sv_js_msgid(ids[64], 11, 65);
	cr_assert_eq(sv_js_pipe_send(p, "sv.pairs", ids[64], "x", 1, 64), SV_ERR_STATE,
		     "a 65th message went into a window of 64");
	cr_assert_eq(reap_all(p, d, 64, 5000, 10), 64);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(d[i].rc, 0, "message %llu: %s", (unsigned long long)d[i].tag,
			     sv_js_strerror(d[i].rc));
		cr_assert(d[i].tag < 64 && !seen[d[i].tag], "tag %llu twice or unknown",
			  (unsigned long long)d[i].tag);
		seen[d[i].tag] = true;
		cr_assert_not(d[i].duplicate);
		lo = d[i].stream_seq < lo ? d[i].stream_seq : lo;
		hi = d[i].stream_seq > hi ? d[i].stream_seq : hi;
	}
	cr_assert_eq(hi - lo, 63, "64 messages over sequences %llu..%llu", (unsigned long long)lo,
		     (unsigned long long)hi);
	cr_assert_eq(sv_js_pipe_inflight(p), 0);
	/* the window is free again; a resend is reported as the first copy */
	cr_assert_eq(sv_js_pipe_send(p, "sv.pairs", ids[0], ids[0], 33, 7), 0);
	cr_assert_eq(reap_all(p, d, 1, 5000, 10), 1);
	cr_assert(d[0].rc == 0 && d[0].duplicate && d[0].tag == 7);

	/* no quorum: every message in flight is given up after the ack timeout */
	sh("kill", "2");
	sh("kill", "3");
	double t0 = now_s();
	size_t sent = 0;
	for (int i = 0; i < 3; i++)
		sent += sv_js_pipe_send(p, "sv.pairs", ids[64], "y", 1, 100 + (uint64_t)i) == 0;
	size_t got = reap_all(p, d, sent, 1000, 10);
	double took = now_s() - t0;
	cr_assert_eq(got, sent, "%zu of %zu outcomes", got, sent);
	for (size_t i = 0; i < got; i++)
		cr_assert_neq(d[i].rc, 0, "message %llu acked without quorum",
			      (unsigned long long)d[i].tag);
	cr_assert_lt(took, 4.0, "outcomes took %.2f s for a 1 s ack timeout", took);
	cr_assert_eq(sv_js_pipe_inflight(p), 0);
	sv_js_pipe_close(p);
	sv_js_close(js);
}

Test(jetstream, an_older_fetch_is_acked_by_its_last_message)
{
	sv_js *js = connect_js();
	sv_js_consumer *c = NULL;
	struct sv_js_msg m[4];
	uint64_t seqs[20];
	int k = 0;

	pairs_stream(js, 3);
	publish_seqs(js, 2, 12);
	struct sv_js_consumer_cfg cc = {.stream = "SV_PAIRS", .durable = "deep",
					.ack_wait_ms = 1000};
	cr_assert_eq(sv_js_consumer_open(&c, js, &cc), 0);
	/* all twelve in fetches of at most 4 (a fetch returns what the consumer
	 * has at once, so there are at least three), held as the feed holds them */
	uint64_t first0 = 0, last0 = 0, total = 0;
	int nf = 0;
	while (total < 12 && nf < 40) {
		cr_assert_eq(sv_js_fetch(c, m, 4, 5000, &k), 0);
		cr_assert_gt(k, 0);
		if (nf++ == 0) {
			first0 = m[0].stream_seq;
			last0 = m[k - 1].stream_seq;
		}
		total += (uint64_t)k;
	}
	cr_assert_eq(total, 12);
	cr_assert_geq(nf, 3);
	if (first0 != last0)
		cr_assert_eq(sv_js_ack_upto(c, first0), SV_ERR_RANGE,
			     "a middle message of a fetch two back cannot be acked");
	cr_assert_eq(sv_js_ack_upto(c, last0), 0, "the first fetch's last message");
	cr_assert_eq(sv_js_consumer_acked(c), last0);
	sv_js_consumer_close(c);
	sleep(2); /* past AckWait: the rest are due again, the first fetch's are not */
	cr_assert_eq(sv_js_consumer_open(&c, js, &cc), 0);
	int got = drain(c, seqs, 20);
	cr_assert_eq((uint64_t)got, 12 - last0, "after the ack got %d messages", got);
	cr_assert_eq(seqs[0], last0 + 1);
	sv_js_consumer_close(c);
	sv_js_close(js);
}
