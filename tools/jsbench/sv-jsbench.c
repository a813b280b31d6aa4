/* sv-jsbench - raw JetStream reference: publish and pull-consume N pair-sized
 * messages with cnats alone, as the yardstick for simverifyd's end-to-end
 * pairs/s through JetStream (docs/SCALING.md: target >= 70% of this).
 *
 *   sv-jsbench --urls URLS [-n 20000] [--size 6288] [--replicas 1] [--runs 3]
 *
 * Each run makes a fresh file-storage stream SV_JSBENCH (duplicate window
 * 2 min), publishes N messages asynchronously, each with a distinct msg id
 * like the gateway's, waits for every PubAck, then drains them through a
 * durable pull consumer (AckPolicy all, batches of 256, one ack per batch).
 * Prints the median of the runs and their range, for each phase.
 * The default size is one pair of 784-float32 vectors plus a 16-byte header.
 * Leaves out: the daemon, LMDB, training - this is the ceiling, not a result.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int fail(const char *what, natsStatus s)
{
	fprintf(stderr, "sv-jsbench: %s: %s (%s)\n", what, natsStatus_GetText(s),
		nats_GetLastError(NULL));
	return 1;
}

static int run_once(jsCtx *js, int n, int size, int replicas, double *pub_rate, double *sub_rate)
{
	jsStreamConfig sc;
	jsConsumerConfig cc;
	jsPubOptions po;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsSubscription *sub = NULL;
	natsStatus s;
	const char *subj[1] = {"svbench.pairs"};
	char *payload = calloc(1, (size_t)size);
	char id[40];
	double t0;
	int got = 0;

	js_DeleteStream(js, "SV_JSBENCH", NULL, NULL);
	jsStreamConfig_Init(&sc);
	sc.Name = "SV_JSBENCH";
	sc.Subjects = subj;
	sc.SubjectsLen = 1;
	sc.Replicas = replicas;
	sc.Storage = js_FileStorage;
	sc.Duplicates = 120LL * 1000000000LL;
	s = js_AddStream(NULL, js, &sc, NULL, &jerr);
	if (s != NATS_OK)
		return fail("add stream", s);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		jsPubOptions_Init(&po);
		snprintf(id, sizeof id, "%016x-%016x", 1u, (unsigned)i);
		po.MsgId = id;
		memcpy(payload, &i, sizeof i);
		s = js_PublishAsync(js, subj[0], payload, size, &po);
		if (s != NATS_OK)
			return fail("publish", s);
	}
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	s = js_PublishAsyncComplete(js, &po);
	if (s != NATS_OK)
		return fail("publish complete", s);
	*pub_rate = n / (now_s() - t0);

	jsSubOptions_Init(&so);
	jsConsumerConfig_Init(&cc);
	so.Config.AckPolicy = js_AckAll;
	so.Config.MaxAckPending = 10000;
	so.ManualAck = true;
	s = js_PullSubscribe(&sub, js, subj[0], "bench", NULL, &so, &jerr);
	if (s != NATS_OK)
		return fail("pull subscribe", s);
	t0 = now_s();
	while (got < n) {
		natsMsgList l = {0};
		s = natsSubscription_Fetch(&l, sub, 256, 5000, &jerr);
		if (s != NATS_OK)
			return fail("fetch", s);
		got += l.Count;
		if (l.Count)
			natsMsg_Ack(l.Msgs[l.Count - 1], NULL);
		natsMsgList_Destroy(&l);
	}
	*sub_rate = n / (now_s() - t0);
	natsSubscription_Destroy(sub);
	js_DeleteStream(js, "SV_JSBENCH", NULL, NULL);
	free(payload);
	return 0;
}

int main(int argc, char **argv)
{
	const char *urls = NULL;
	int n = 20000, size = 6288, replicas = 1, runs = 3;
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	double pub[16], sub[16];

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--urls") && v)
			urls = argv[++i];
		else if (!strcmp(argv[i], "-n") && v)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--size") && v)
			size = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--replicas") && v)
			replicas = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && v)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: sv-jsbench --urls URLS [-n N] [--size BYTES] "
					"[--replicas 1..5] [--runs 1..16]\n");
			return 2;
		}
	}
	if (!urls || n < 1 || size < 4 || replicas < 1 || replicas > 5 || runs < 1 || runs > 16) {
		fprintf(stderr, "sv-jsbench: --urls is required; -n >= 1, --size >= 4, --runs 1..16\n");
		return 2;
	}
	/* a list goes through SetServers: SetURL did not take "a,b,c" here */
	char *list = strdup(urls), *save = NULL;
	const char *srv[16];
	int nsrv = 0;
	for (char *t = strtok_r(list, ",", &save); t && nsrv < 16; t = strtok_r(NULL, ",", &save))
		srv[nsrv++] = t;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, srv, nsrv);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, o);
	if (s != NATS_OK)
		return fail(urls, s);
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	jo.PublishAsync.MaxPending = 4096;
	if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
		return fail("jetstream", NATS_ERR);
	for (int r = 0; r < runs; r++)
		if (run_once(js, n, size, replicas, &pub[r], &sub[r]))
			return 1;
	qsort(pub, (size_t)runs, sizeof *pub, cmp_d);
	qsort(sub, (size_t)runs, sizeof *sub, cmp_d);
	printf("raw JetStream R%d, %d msgs of %d B, %d runs\n", replicas, n, size, runs);
	printf("  publish async+ack: median %.0f msg/s (range %.0f..%.0f)\n", pub[runs / 2], pub[0],
	       pub[runs - 1]);
	printf("  pull consume+ack:  median %.0f msg/s (range %.0f..%.0f)\n", sub[runs / 2], sub[0],
	       sub[runs - 1]);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	free(list);
	return 0;
}
