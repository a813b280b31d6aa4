/* jsraw.c - raw JetStream publish and pull-consume with cnats (jsraw.h).
 * Leaves out: anything of simverifyd's; the caller picks the messages. */
#include "jsraw.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double jsraw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, natsStatus s)
{
	fprintf(stderr, "jsraw: %s: %s (%s)\n", what, natsStatus_GetText(s),
	        nats_GetLastError(NULL));
	return 1;
}

int jsraw_connect(const char *urls, natsConnection **nc, jsCtx **js)
{
	natsOptions *o = NULL;
	jsOptions jo;
	const char *srv[16];
	int nsrv = 0;
	char *list = strdup(urls), *save = NULL;
	natsStatus s = list ? NATS_OK : NATS_NO_MEMORY;

	*nc = NULL;
	*js = NULL;
	/* a list goes through SetServers: SetURL did not take "a,b,c" here */
	for (char *t = list ? strtok_r(list, ",", &save) : NULL; t && nsrv < 16;
	     t = strtok_r(NULL, ",", &save))
		srv[nsrv++] = t;
	if (s == NATS_OK)
		s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, srv, nsrv);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, o);
	natsOptions_Destroy(o);
	free(list);
	if (s != NATS_OK)
		return fail(urls, s);
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	jo.PublishAsync.MaxPending = 4096;
	s = natsConnection_JetStream(js, *nc, &jo);
	if (s != NATS_OK) {
		natsConnection_Destroy(*nc);
		*nc = NULL;
		return fail("jetstream", s);
	}
	return 0;
}

void jsraw_close(natsConnection *nc, jsCtx *js)
{
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

void jsraw_delete(jsCtx *js, const char *name)
{
	js_DeleteStream(js, name, NULL, NULL);
}

int jsraw_last_seq(jsCtx *js, const char *name, uint64_t *last)
{
	jsStreamInfo *si = NULL;

	if (js_GetStreamInfo(&si, js, name, NULL, NULL) != NATS_OK)
		return -1;
	*last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return 0;
}

static int consume(jsCtx *js, const char *subject, size_t n, double *sub_rate)
{
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsSubscription *sub = NULL;
	natsStatus s;
	size_t got = 0;
	double t0;

	jsSubOptions_Init(&so);
	so.Config.AckPolicy = js_AckAll;
	so.Config.MaxAckPending = 10000;
	so.ManualAck = true;
	s = js_PullSubscribe(&sub, js, subject, "bench", NULL, &so, &jerr);
	if (s != NATS_OK)
		return fail("pull subscribe", s);
	t0 = jsraw_now();
	for (double moved = t0; got < n;) {
		natsMsgList l = {0};
		jsFetchRequest fr;

		/* at most 256 messages or 8 MB: 256 pairs of 64 inline 784-d
		 * vectors are 100 MB, past a client's 64 MB of pending bytes,
		 * and the server cuts off a slow consumer */
		jsFetchRequest_Init(&fr);
		fr.Batch = n - got < 256 ? (int)(n - got) : 256; /* no wait for more */
		fr.MaxBytes = 8 << 20;
		fr.Expires = 5000LL * 1000000LL;
		s = natsSubscription_FetchRequest(&l, sub, &fr);
		if (s == NATS_TIMEOUT && jsraw_now() - moved < 60)
			continue; /* a large batch may take longer than one fetch */
		if (s != NATS_OK) {
			natsSubscription_Destroy(sub);
			return fail("fetch", s);
		}
		moved = jsraw_now();
		got += (size_t)l.Count;
		if (l.Count)
			natsMsg_Ack(l.Msgs[l.Count - 1], NULL);
		natsMsgList_Destroy(&l);
	}
	*sub_rate = (double)n / (jsraw_now() - t0);
	natsSubscription_Destroy(sub);
	return 0;
}

int jsraw_run(jsCtx *js, const char *stream, int replicas, const struct jsraw_msg *msgs, size_t n,
              double *pub_rate, double *sub_rate, const struct jsraw_hook *hook)
{
	jsStreamConfig sc;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus s;
	char subject[128], id[40];
	const char *subj[1] = {subject};
	double t0;
	int rc;

	snprintf(subject, sizeof subject, "%s.pairs", stream);
	jsraw_delete(js, stream);
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = subj;
	sc.SubjectsLen = 1;
	sc.Replicas = replicas;
	sc.Storage = js_FileStorage;
	sc.Duplicates = 120LL * 1000000000LL;
	s = js_AddStream(NULL, js, &sc, NULL, &jerr);
	if (s != NATS_OK)
		return fail("add stream", s);
	if (hook)
		hook->fn(hook->ctx, 0);
	t0 = jsraw_now();
	for (size_t i = 0; i < n; i++) {
		jsPubOptions_Init(&po);
		snprintf(id, sizeof id, "%016" PRIx64 "%016zx", (uint64_t)0x5eb, i + 1);
		po.MsgId = id;
		s = js_PublishAsync(js, subject, msgs[i].data, (int)msgs[i].len, &po);
		if (s != NATS_OK) {
			jsraw_delete(js, stream);
			return fail("publish", s);
		}
	}
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	s = js_PublishAsyncComplete(js, &po);
	if (s != NATS_OK) {
		jsraw_delete(js, stream);
		return fail("publish complete", s);
	}
	*pub_rate = (double)n / (jsraw_now() - t0);
	if (hook)
		hook->fn(hook->ctx, 1);
	rc = consume(js, subject, n, sub_rate);
	if (hook)
		hook->fn(hook->ctx, 2);
	jsraw_delete(js, stream);
	return rc;
}
