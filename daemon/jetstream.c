/* jetstream.c - the daemon's wrapper over cnats 3.4.1 (see jetstream.h).
 *
 * Every cnats status is mapped to one of our codes in one place (map());
 * the server's own text is kept in the handle for the caller's single log
 * line.  Compare-and-set writes to key-value buckets are published here
 * directly on the bucket's subject with the expected-last-subject-sequence
 * header, so that a refused write is told apart from a lost connection by
 * the server's error code (kvStore_Update folds both into NATS_ERR).
 * Nothing here logs, sleeps beyond a documented bound, or owns a thread.
 */
#include "jetstream.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <nats/nats.h>

#include "sv/error.h"
#include "util.h"

struct sv_js {
	natsConnection *nc;
	jsCtx *js;
	int64_t wait_ms;
	char detail[256];
};

struct sv_js_consumer {
	sv_js *js;
	natsSubscription *sub;
	natsMsgList list, prev; /* the last fetch, and the one before it */
	uint64_t skip_upto;
	uint64_t acked;
	uint64_t *seqs, *prev_seqs; /* stream sequence of each message in list, prev */
	struct ackpoint {           /* the last message of each recent fetch */
		uint64_t seq;
		char *reply;        /* its ack subject */
	} ring[SV_JS_ACK_FETCHES];
	unsigned ring_next;
};

struct sv_js_kv {
	sv_js *js;
	kvStore *kv;
	char bucket[128];
};

const char *sv_js_strerror(int rc)
{
	switch (rc) {
	case SV_JS_ERR_CONNECT: return "no NATS server reachable";
	case SV_JS_ERR_NOACK: return "no JetStream ack within the timeout";
	case SV_JS_ERR_STALE: return "compare-and-set refused: the revision moved on";
	case SV_JS_ERR_HELD: return "lease held";
	case SV_JS_ERR_UNAVAILABLE: return "JetStream unavailable (no leader or quorum)";
	case SV_JS_ERR_API: return "JetStream refused the request";
	case SV_JS_ERR_CLIENT: return "NATS client library failure";
	default: return sv_strerror(rc);
	}
}

const char *sv_js_detail(const sv_js *js)
{
	return js ? js->detail : "";
}

/* Records the library's last error text and maps a status to our code. */
static int map(sv_js *js, natsStatus s, jsErrCode jerr)
{
	const char *txt = nats_GetLastError(NULL);
	snprintf(js->detail, sizeof js->detail, "%s%s%s (jerr %d)", natsStatus_GetText(s),
		 txt && *txt ? ": " : "", txt ? txt : "", (int)jerr);
	if (jerr == JSStreamWrongLastSequenceErr)
		return SV_JS_ERR_STALE;
	if (jerr == JSClusterNoPeersErr || jerr == JSNotEnabledErr || jerr == JSInsufficientResourcesErr)
		return SV_JS_ERR_UNAVAILABLE;
	if (jerr != 0)
		return SV_JS_ERR_API;
	switch (s) {
	case NATS_OK: return 0;
	case NATS_NO_MEMORY: return -ENOMEM;
	case NATS_TIMEOUT: return SV_JS_ERR_NOACK;
	case NATS_NO_RESPONDERS: return SV_JS_ERR_UNAVAILABLE;
	case NATS_NO_SERVER: return SV_JS_ERR_CONNECT;
	case NATS_CONNECTION_CLOSED:
	case NATS_CONNECTION_DISCONNECTED: return SV_JS_ERR_UNAVAILABLE;
	case NATS_NOT_FOUND: return SV_ERR_NOTFOUND;
	case NATS_INVALID_ARG: return SV_ERR_RANGE;
	case NATS_MAX_PAYLOAD: return SV_ERR_TOOBIG;
	default: return SV_JS_ERR_CLIENT;
	}
}

int sv_js_open(sv_js **out, const char *urls, int64_t timeout_ms)
{
	int rc = 0;
	natsOptions *o = NULL;
	natsStatus s;
	sv_js *js;
	jsOptions jo;
	char *list = NULL, *save = NULL;
	const char *srv[16];
	int nsrv = 0;

	if (!out || !urls || !*urls || timeout_ms <= 0)
		return SV_ERR_RANGE;
	js = calloc(1, sizeof *js);
	list = strdup(urls);
	if (!js || !list) {
		free(js);
		free(list);
		return -ENOMEM;
	}
	js->wait_ms = timeout_ms;
	for (char *t = strtok_r(list, ",", &save); t && nsrv < 16; t = strtok_r(NULL, ",", &save))
		srv[nsrv++] = t;
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, srv, nsrv);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 250);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(o, 0); /* no buffering while down: fail fast */
	if (s != NATS_OK) {
		rc = map(js, s, 0);
		goto out;
	}
	s = natsConnection_Connect(&js->nc, o);
	if (s != NATS_OK) {
		rc = map(js, s, 0);
		if (rc == SV_JS_ERR_UNAVAILABLE || rc == SV_JS_ERR_NOACK)
			rc = SV_JS_ERR_CONNECT;
		goto out;
	}
	jsOptions_Init(&jo);
	jo.Wait = timeout_ms;
	s = natsConnection_JetStream(&js->js, js->nc, &jo);
	if (s != NATS_OK)
		rc = map(js, s, 0);
out:
	natsOptions_Destroy(o);
	free(list);
	if (rc < 0) {
		sv_js_close(js);
		return rc;
	}
	*out = js;
	return 0;
}

void sv_js_close(sv_js *js)
{
	if (js) {
		jsCtx_Destroy(js->js);
		natsConnection_Destroy(js->nc);
	}
	free(js);
}

size_t sv_js_max_payload(const sv_js *js)
{
	int64_t m = natsConnection_GetMaxPayload(js->nc);
	return m > 0 ? (size_t)m : 0;
}

/* ---- streams ---- */

int sv_js_stream_ensure(sv_js *js, const struct sv_js_stream_cfg *cfg)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	const char *subj[1];

	if (!js || !cfg || !cfg->name || !cfg->subjects || cfg->replicas < 1 ||
	    cfg->replicas > 5 || cfg->duplicates_ns <= 0 || cfg->max_msgs_per_subject < 0)
		return SV_ERR_RANGE;
	jsStreamConfig_Init(&sc);
	subj[0] = cfg->subjects;
	sc.Name = cfg->name;
	sc.Subjects = subj;
	sc.SubjectsLen = 1;
	sc.Replicas = cfg->replicas;
	sc.Duplicates = cfg->duplicates_ns;
	sc.Storage = cfg->memory ? js_MemoryStorage : js_FileStorage;
	sc.MaxMsgsPerSubject = cfg->max_msgs_per_subject ? cfg->max_msgs_per_subject : -1;
	sc.Discard = js_DiscardOld;
	s = js_AddStream(&si, js->js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr) {
		jerr = 0;
		s = js_UpdateStream(&si, js->js, &sc, NULL, &jerr);
	}
	jsStreamInfo_Destroy(si);
	return s == NATS_OK ? 0 : map(js, s, jerr);
}

int sv_js_stream_last_seq(sv_js *js, const char *stream, uint64_t *last_seq)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, js->js, stream, NULL, &jerr);

	if (s != NATS_OK)
		return jerr == JSStreamNotFoundErr ? SV_ERR_NOTFOUND : map(js, s, jerr);
	*last_seq = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* ---- publishing ---- */

int sv_js_stream_get(sv_js *js, const char *stream, uint64_t seq, void **data, size_t *len,
		     char *id, size_t idcap)
{
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	const char *mid = NULL;
	natsStatus s;
	void *copy;
	int n;

	if (!js || !stream || !data || !len || !id || !idcap)
		return SV_ERR_RANGE;
	s = js_GetMsg(&m, js->js, stream, seq, NULL, &jerr);
	if (s != NATS_OK)
		return s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr ? SV_ERR_NOTFOUND
									   : map(js, s, jerr);
	n = natsMsg_GetDataLength(m);
	copy = malloc(n > 0 ? (size_t)n : 1);
	if (!copy) {
		natsMsg_Destroy(m);
		return -ENOMEM;
	}
	if (n > 0)
		memcpy(copy, natsMsg_GetData(m), (size_t)n);
	if (natsMsgHeader_Get(m, "Nats-Msg-Id", &mid) != NATS_OK || !mid)
		mid = "";
	snprintf(id, idcap, "%s", mid);
	natsMsg_Destroy(m);
	*data = copy;
	*len = (size_t)n;
	return 0;
}

int sv_js_subject_last_id(sv_js *js, const char *stream, const char *subject, char *id,
			  size_t idcap)
{
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	const char *mid = NULL;
	natsStatus s;

	if (!js || !stream || !subject || !id || !idcap)
		return SV_ERR_RANGE;
	s = js_GetLastMsg(&m, js->js, stream, subject, NULL, &jerr);
	if (s != NATS_OK)
		return s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr ? SV_ERR_NOTFOUND
									   : map(js, s, jerr);
	if (natsMsgHeader_Get(m, "Nats-Msg-Id", &mid) != NATS_OK || !mid)
		mid = "";
	snprintf(id, idcap, "%s", mid);
	natsMsg_Destroy(m);
	return 0;
}

void sv_js_msgid(char *buf, uint64_t client_id, uint64_t seq)
{
	snprintf(buf, SV_JS_MSGID_LEN + 1, "%016" PRIx64 "-%016" PRIx64, client_id, seq);
}

int sv_js_publish(sv_js *js, const char *subject, const char *msgid, const void *data,
		  size_t len, int64_t timeout_ms, uint64_t *stream_seq, bool *duplicate)
{
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	if (!js || !subject || (len && !data) || len > INT32_MAX || timeout_ms <= 0)
		return SV_ERR_RANGE;
	jsPubOptions_Init(&po);
	po.MsgId = msgid;
	po.MaxWait = timeout_ms;
	s = js_Publish(&pa, js->js, subject, data, (int)len, &po, &jerr);
	if (s != NATS_OK)
		return map(js, s, jerr);
	if (stream_seq)
		*stream_seq = pa->Sequence;
	if (duplicate)
		*duplicate = pa->Duplicate;
	jsPubAck_Destroy(pa);
	return 0;
}

/* ---- the pipelined publisher ---- */

/* An in-flight message, found again by its natsMsg pointer when cnats hands
 * back the PubAck (open addressing; a tombstone keeps probe chains whole). */
#define SLOT_FREE NULL
#define SLOT_GONE ((const natsMsg *)1)

struct slot {
	const natsMsg *msg;
	uint64_t tag;
	int64_t sent_ms;
};

struct sv_js_pipe {
	sv_js *js;
	jsCtx *actx;  /* its own context: the ack handler is per context */
	size_t window;
	int sent;     /* a message went out (cnats has its pending map) */
	int efd;      /* eventfd: readable while outcomes wait */
	pthread_mutex_t mu; /* the rest: the ack handler runs on a cnats thread */
	struct slot *slots;
	size_t cap, used, gone; /* used counts live entries */
	struct sv_js_done *done; /* a ring of `window` outcomes */
	size_t head, ndone;
};

static size_t slot_hash(const natsMsg *m, size_t n)
{
	uint64_t x = (uint64_t)(uintptr_t)m;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)(x & (n - 1));
}

static struct slot *slot_find(struct sv_js_pipe *p, const natsMsg *m)
{
	for (size_t h = slot_hash(m, p->cap); p->slots[h].msg != SLOT_FREE;
	     h = (h + 1) & (p->cap - 1))
		if (p->slots[h].msg == m)
			return &p->slots[h];
	return NULL;
}

/* Under mu: insert, first dropping the tombstones when they crowd the table
 * (cap is at least 4 * window, so the live entries never do). */
static void slot_put(struct sv_js_pipe *p, const natsMsg *m, uint64_t tag)
{
	size_t h;

	if (p->used + p->gone >= p->cap / 2) {
		struct slot *old = p->slots;

		p->slots = old + p->cap; /* the second half of the allocation */
		memset(p->slots, 0, p->cap * sizeof *p->slots);
		for (size_t i = 0; i < p->cap; i++)
			if (old[i].msg != SLOT_FREE && old[i].msg != SLOT_GONE) {
				for (h = slot_hash(old[i].msg, p->cap); p->slots[h].msg != SLOT_FREE;
				     h = (h + 1) & (p->cap - 1))
					;
				p->slots[h] = old[i];
			}
		memmove(old, p->slots, p->cap * sizeof *old); /* back to the first half */
		p->slots = old;
		p->gone = 0;
	}
	for (h = slot_hash(m, p->cap);
	     p->slots[h].msg != SLOT_FREE && p->slots[h].msg != SLOT_GONE;
	     h = (h + 1) & (p->cap - 1))
		;
	if (p->slots[h].msg == SLOT_GONE)
		p->gone--;
	p->slots[h] = (struct slot){.msg = m, .tag = tag, .sent_ms = nats_Now()};
	p->used++;
}

/* Under mu: the outcome of slot s, queued for the owner; the slot goes. */
static void slot_done(struct sv_js_pipe *p, struct slot *s, int rc, uint64_t seq, bool dup)
{
	uint64_t one = 1;

	p->done[(p->head + p->ndone++) % p->window] =
	    (struct sv_js_done){.tag = s->tag, .rc = rc, .stream_seq = seq, .duplicate = dup};
	s->msg = SLOT_GONE;
	p->used--;
	p->gone++;
	if (write(p->efd, &one, sizeof one) < 0) { /* only EAGAIN: the counter is full */
	}
}

/* Called by cnats for each message, on its own thread. */
static void on_puback(jsCtx *jctx, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct sv_js_pipe *p = closure;
	struct slot *s;

	(void)jctx;
	pthread_mutex_lock(&p->mu);
	if ((s = slot_find(p, msg)) != NULL) { /* else given up on (sv_js_pipe_reap) */
		if (pa)
			slot_done(p, s, 0, pa->Sequence, pa->Duplicate);
		else
			slot_done(p, s,
			          pae && pae->ErrCode == JSStreamWrongLastSequenceErr ? SV_JS_ERR_STALE
			          : pae && pae->Err == NATS_TIMEOUT ? SV_JS_ERR_NOACK
			          : pae && pae->ErrCode ? SV_JS_ERR_API : SV_JS_ERR_NOACK,
			          0, false);
	}
	pthread_mutex_unlock(&p->mu);
	natsMsg_Destroy(msg);
}

int sv_js_pipe_open(sv_js_pipe **out, sv_js *js, size_t window)
{
	struct sv_js_pipe *p;
	jsOptions jo;
	natsStatus s;
	size_t cap = 16;

	if (!out || !js || window == 0 || window > (1u << 20))
		return SV_ERR_RANGE;
	while (cap < 4 * window)
		cap <<= 1;
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->js = js;
	p->window = window;
	p->cap = cap;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->slots = calloc(2 * cap, sizeof *p->slots);
	p->done = calloc(window, sizeof *p->done);
	pthread_mutex_init(&p->mu, NULL);
	if (p->efd < 0 || !p->slots || !p->done) {
		int rc = p->efd < 0 ? -errno : -ENOMEM;

		sv_js_pipe_close(p);
		return rc;
	}
	jsOptions_Init(&jo);
	jo.Wait = js->wait_ms;
	jo.PublishAsync.MaxPending = (int64_t)window;
	jo.PublishAsync.AckHandler = on_puback;
	jo.PublishAsync.AckHandlerClosure = p;
	s = natsConnection_JetStream(&p->actx, js->nc, &jo);
	if (s != NATS_OK) {
		int rc = map(js, s, 0);

		sv_js_pipe_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

int sv_js_pipe_send(sv_js_pipe *p, const char *subject, const char *msgid, const void *data,
		    size_t len, uint64_t tag)
{
	natsMsg *m = NULL;
	jsPubOptions po;
	natsStatus s;
	struct slot *sl;

	if (!p || !subject || (len && !data) || len > INT32_MAX)
		return SV_ERR_RANGE;
	if (sv_js_pipe_inflight(p) >= p->window)
		return SV_ERR_STATE;
	s = natsMsg_Create(&m, subject, NULL, data, (int)len);
	if (s != NATS_OK)
		return map(p->js, s, 0);
	jsPubOptions_Init(&po);
	po.MsgId = msgid;
	po.MaxWait = p->js->wait_ms; /* a stall on cnats's own MaxPending, never reached */
	pthread_mutex_lock(&p->mu);
	slot_put(p, m, tag);
	pthread_mutex_unlock(&p->mu);
	s = js_PublishMsgAsync(p->actx, &m, &po);
	p->sent |= s == NATS_OK;
	if (s != NATS_OK) { /* not sent: no outcome will come */
		pthread_mutex_lock(&p->mu);
		if ((sl = slot_find(p, m)) != NULL) {
			sl->msg = SLOT_GONE;
			p->used--;
			p->gone++;
		}
		pthread_mutex_unlock(&p->mu);
		natsMsg_Destroy(m);
		return map(p->js, s, 0);
	}
	return 0;
}

size_t sv_js_pipe_inflight(sv_js_pipe *p)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	n = p->used + p->ndone;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int sv_js_pipe_fd(const sv_js_pipe *p)
{
	return p->efd;
}

size_t sv_js_pipe_reap(sv_js_pipe *p, struct sv_js_done *out, size_t max, int64_t timeout_ms)
{
	size_t n = 0;
	uint64_t drain;
	int64_t now = nats_Now(), oldest = now;
	int give_up;

	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->cap && p->used > 0; i++)
		if (p->slots[i].msg != SLOT_FREE && p->slots[i].msg != SLOT_GONE &&
		    p->slots[i].sent_ms < oldest)
			oldest = p->slots[i].sent_ms;
	give_up = p->used > 0 && now - oldest >= timeout_ms;
	if (give_up) { /* each is reported without ack; a late ack finds no slot */
		for (size_t i = 0; i < p->cap; i++)
			if (p->slots[i].msg != SLOT_FREE && p->slots[i].msg != SLOT_GONE)
				slot_done(p, &p->slots[i], SV_JS_ERR_NOACK, 0, false);
		snprintf(p->js->detail, sizeof p->js->detail,
		         "messages without ack after %" PRId64 " ms", timeout_ms);
	}
	pthread_mutex_unlock(&p->mu);
	if (give_up) {
		/* cnats forgets them (their handlers will not run); without our
		 * lock, which the handler takes on cnats's thread */
		natsMsgList pend = {0};

		if (js_PublishAsyncGetPendingList(&pend, p->actx) == NATS_OK)
			natsMsgList_Destroy(&pend);
	}
	pthread_mutex_lock(&p->mu);
	while (n < max && p->ndone > 0) {
		out[n++] = p->done[p->head];
		p->head = (p->head + 1) % p->window;
		p->ndone--;
	}
	if (p->ndone == 0 && read(p->efd, &drain, sizeof drain) < 0) { /* EAGAIN: was 0 */
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

void sv_js_pipe_close(sv_js_pipe *p)
{
	if (!p)
		return;
	if (p->actx) {
		natsMsgList pend = {0};

		/* only after a send: cnats 3.4.1 dereferences a pending map that
		 * it creates at the first async publish */
		if (p->sent && js_PublishAsyncGetPendingList(&pend, p->actx) == NATS_OK)
			natsMsgList_Destroy(&pend);
		jsCtx_Destroy(p->actx);
	}
	if (p->efd >= 0)
		close(p->efd);
	pthread_mutex_destroy(&p->mu);
	free(p->slots);
	free(p->done);
	free(p);
}

int sv_js_publish_batch(sv_js *js, const char *subject, struct sv_js_pub *msgs, size_t n,
			int64_t timeout_ms)
{
	struct sv_js_pipe *p = NULL;
	struct sv_js_done d[64];
	size_t left = 0;
	int rc;

	if (!js || !subject || (n && !msgs) || timeout_ms <= 0)
		return SV_ERR_RANGE;
	if (n == 0)
		return 0;
	if ((rc = sv_js_pipe_open(&p, js, n)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		msgs[i].rc = sv_js_pipe_send(p, subject, msgs[i].msgid, msgs[i].data, msgs[i].len, i);
		if (msgs[i].rc < 0) { /* the connection is failing: the rest too */
			for (size_t j = i + 1; j < n; j++)
				msgs[j].rc = msgs[i].rc;
			break;
		}
		msgs[i].rc = SV_JS_ERR_NOACK;
		left++;
	}
	while (left > 0) {
		struct pollfd pf = {.fd = p->efd, .events = POLLIN};
		size_t k;

		if (poll(&pf, 1, 10) < 0 && errno != EINTR)
			break;
		k = sv_js_pipe_reap(p, d, sizeof d / sizeof *d, timeout_ms);
		for (size_t i = 0; i < k; i++) {
			struct sv_js_pub *m = &msgs[d[i].tag];

			m->rc = d[i].rc;
			m->stream_seq = d[i].stream_seq;
			m->duplicate = d[i].duplicate;
		}
		left -= k;
	}
	sv_js_pipe_close(p);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = msgs[i].rc;
	return rc;
}

/* ---- the durable pull consumer ---- */

int sv_js_consumer_open(sv_js_consumer **out, sv_js *js, const struct sv_js_consumer_cfg *cfg)
{
	sv_js_consumer *c;
	jsConsumerInfo *ci = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;
	int rc = 0;

	if (!out || !js || !cfg || !cfg->stream || !cfg->durable || cfg->max_ack_pending < 0 ||
	    cfg->ack_wait_ms < 0)
		return SV_ERR_RANGE;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->js = js;
	c->skip_upto = cfg->resume_after;
	c->acked = cfg->resume_after;
	if (cfg->reset) {
		s = js_DeleteConsumer(js->js, cfg->stream, cfg->durable, NULL, &jerr);
		if (s != NATS_OK && jerr != JSConsumerNotFoundErr) {
			rc = jerr == JSStreamNotFoundErr ? SV_ERR_NOTFOUND : map(js, s, jerr);
			free(c);
			return rc;
		}
		jerr = 0;
	}
	s = js_GetConsumerInfo(&ci, js->js, cfg->stream, cfg->durable, NULL, &jerr);
	if (s != NATS_OK && jerr == JSConsumerNotFoundErr) {
		jsConsumerConfig cc;

		jsConsumerConfig_Init(&cc);
		cc.Durable = cfg->durable;
		cc.AckPolicy = js_AckAll;
		cc.AckWait = (cfg->ack_wait_ms ? cfg->ack_wait_ms : 30000) * 1000000LL;
		cc.MaxAckPending = cfg->max_ack_pending ? cfg->max_ack_pending : 1000;
		if (cfg->resume_after) {
			cc.DeliverPolicy = js_DeliverByStartSequence;
			cc.OptStartSeq = cfg->resume_after + 1;
		}
		jerr = 0;
		s = js_AddConsumer(&ci, js->js, cfg->stream, &cc, NULL, &jerr);
	}
	if (s != NATS_OK) {
		rc = jerr == JSStreamNotFoundErr ? SV_ERR_NOTFOUND : map(js, s, jerr);
		goto out;
	}
	jsSubOptions_Init(&so);
	so.Stream = cfg->stream;
	so.Consumer = cfg->durable;
	so.ManualAck = true;
	jerr = 0;
	s = js_PullSubscribe(&c->sub, js->js, NULL, cfg->durable, NULL, &so, &jerr);
	if (s != NATS_OK)
		rc = map(js, s, jerr);
out:
	jsConsumerInfo_Destroy(ci);
	if (rc < 0) {
		sv_js_consumer_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* The batch before last goes; the last one becomes prev (still ackable). */
static void release_batch(sv_js_consumer *c)
{
	natsMsgList_Destroy(&c->prev);
	free(c->prev_seqs);
	c->prev = c->list;
	c->prev_seqs = c->seqs;
	c->list.Msgs = NULL;
	c->list.Count = 0;
	c->seqs = NULL;
}

void sv_js_consumer_close(sv_js_consumer *c)
{
	if (!c)
		return;
	release_batch(c);
	release_batch(c);
	for (int i = 0; i < SV_JS_ACK_FETCHES; i++)
		free(c->ring[i].reply);
	natsSubscription_Destroy(c->sub);
	free(c);
}

uint64_t sv_js_consumer_acked(const sv_js_consumer *c)
{
	return c->acked;
}

int sv_js_fetch(sv_js_consumer *c, struct sv_js_msg *out, int max, int64_t timeout_ms, int *n)
{
	jsErrCode jerr = 0;
	jsFetchRequest fr;
	natsStatus s;
	int k = 0, skip_last = -1, last_i = -1;

	if (!c || !out || !n || max <= 0 || timeout_ms <= 0)
		return SV_ERR_RANGE;
	release_batch(c);
	/* what is there now, bounded in bytes too (a client holding more than
	 * its pending limit, 64 MB, is cut off by the server as a slow
	 * consumer); when nothing is, wait for one message only: a request for
	 * more would wait out its whole expiry unless they all came */
	jsFetchRequest_Init(&fr);
	fr.Batch = max;
	fr.MaxBytes = SV_JS_FETCH_MAX_BYTES;
	fr.NoWait = true;
	fr.Expires = timeout_ms * 1000000LL;
	s = natsSubscription_FetchRequest(&c->list, c->sub, &fr);
	if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND || (s == NATS_OK && c->list.Count == 0)) {
		natsMsgList_Destroy(&c->list);
		c->list.Msgs = NULL;
		c->list.Count = 0;
		fr.Batch = 1;
		fr.NoWait = false;
		s = natsSubscription_FetchRequest(&c->list, c->sub, &fr);
	}
	if (s == NATS_TIMEOUT) {
		*n = 0;
		return 0;
	}
	if (s != NATS_OK)
		return map(c->js, s, jerr);
	c->seqs = calloc((size_t)c->list.Count + 1, sizeof *c->seqs);
	if (!c->seqs) {
		release_batch(c);
		return -ENOMEM;
	}
	for (int i = 0; i < c->list.Count; i++) {
		natsMsg *m = c->list.Msgs[i];
		jsMsgMetaData *md = NULL;
		const char *id = NULL;

		s = natsMsg_GetMetaData(&md, m);
		if (s != NATS_OK) /* not a JetStream message (a status): skip it */
			continue;
		c->seqs[i] = md->Sequence.Stream;
		if (md->Sequence.Stream <= c->skip_upto) {
			skip_last = i; /* applied before a restart: ack, never return */
		} else {
			if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK)
				id = "";
			out[k].stream_seq = md->Sequence.Stream;
			out[k].delivered = md->NumDelivered;
			out[k].pending = md->NumPending;
			out[k].msgid = id;
			out[k].data = natsMsg_GetData(m);
			out[k].len = (size_t)natsMsg_GetDataLength(m);
			k++;
			last_i = i;
		}
		jsMsgMetaData_Destroy(md);
	}
	if (k > 0) { /* the batch's last message stays ackable for a while */
		struct ackpoint *ap = &c->ring[c->ring_next++ % SV_JS_ACK_FETCHES];
		const char *reply = natsMsg_GetReply(c->list.Msgs[last_i]);

		free(ap->reply);
		ap->seq = out[k - 1].stream_seq;
		ap->reply = reply ? strdup(reply) : NULL;
	}
	if (skip_last >= 0 && k == 0) {
		s = natsMsg_AckSync(c->list.Msgs[skip_last], NULL, &jerr);
		if (s != NATS_OK)
			return map(c->js, s, jerr);
		c->acked = c->seqs[skip_last];
	}
	*n = k;
	return 0;
}

int sv_js_ack_upto(sv_js_consumer *c, uint64_t stream_seq)
{
	jsErrCode jerr = 0;
	natsStatus s;
	int best = -1;

	natsMsgList *l = &c->list;

	if (!c)
		return SV_ERR_RANGE;
	for (int i = 0; i < c->list.Count; i++)
		if (c->seqs && c->seqs[i] == stream_seq)
			best = i;
	for (int i = 0; best < 0 && i < c->prev.Count; i++)
		if (c->prev_seqs && c->prev_seqs[i] == stream_seq) {
			best = i;
			l = &c->prev;
		}
	if (best < 0) { /* an older fetch's last message: ack by its subject */
		for (int i = 0; i < SV_JS_ACK_FETCHES; i++)
			if (c->ring[i].reply && c->ring[i].seq == stream_seq) {
				natsMsg *resp = NULL;

				s = natsConnection_RequestString(&resp, c->js->nc, c->ring[i].reply,
				                                 "+ACK", c->js->wait_ms);
				natsMsg_Destroy(resp);
				if (s != NATS_OK)
					return map(c->js, s, 0);
				c->acked = stream_seq;
				return 0;
			}
		return SV_ERR_RANGE;
	}
	s = natsMsg_AckSync(l->Msgs[best], NULL, &jerr);
	if (s != NATS_OK)
		return map(c->js, s, jerr);
	c->acked = stream_seq;
	return 0;
}

/* ---- key-value buckets ---- */

int sv_js_kv_open(sv_js_kv **out, sv_js *js, const char *bucket, int replicas, int64_t ttl_ms,
		  bool memory)
{
	sv_js_kv *kv;
	kvConfig kc;
	natsStatus s;

	if (!out || !js || !bucket || strlen(bucket) >= sizeof kv->bucket || replicas < 1 ||
	    replicas > 5 || ttl_ms < 0)
		return SV_ERR_RANGE;
	kv = calloc(1, sizeof *kv);
	if (!kv)
		return -ENOMEM;
	kv->js = js;
	strcpy(kv->bucket, bucket);
	kvConfig_Init(&kc);
	kc.Bucket = bucket;
	kc.History = 1;
	kc.Replicas = replicas;
	kc.TTL = ttl_ms * 1000000LL;
	kc.StorageType = memory ? js_MemoryStorage : js_FileStorage;
	s = js_CreateKeyValue(&kv->kv, js->js, &kc);
	if (s != NATS_OK) /* exists with another config: bind to it as it is */
		s = js_KeyValue(&kv->kv, js->js, bucket);
	if (s != NATS_OK) {
		int rc = map(js, s, 0);
		free(kv);
		return rc;
	}
	*out = kv;
	return 0;
}

void sv_js_kv_close(sv_js_kv *kv)
{
	if (kv)
		kvStore_Destroy(kv->kv);
	free(kv);
}

/* A write of key with compare-and-set on its last revision (0: must not
 * exist), published on the bucket's own subject. */
static int kv_cas(sv_js_kv *kv, const char *key, const void *data, size_t len, uint64_t expect,
		  uint64_t *rev)
{
	char subj[512], hdr[24];
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus s;

	if (snprintf(subj, sizeof subj, "$KV.%s.%s", kv->bucket, key) >= (int)sizeof subj)
		return SV_ERR_RANGE;
	snprintf(hdr, sizeof hdr, "%" PRIu64, expect);
	s = natsMsg_Create(&m, subj, NULL, data, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", hdr);
	if (s != NATS_OK) {
		natsMsg_Destroy(m);
		return map(kv->js, s, 0);
	}
	jsPubOptions_Init(&po);
	s = js_PublishMsg(&pa, kv->js->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (s != NATS_OK)
		return map(kv->js, s, jerr);
	if (rev)
		*rev = pa->Sequence;
	jsPubAck_Destroy(pa);
	return 0;
}

/* FNV-1a, 64 bit: the manifest's check of its chunks. */
static uint64_t fnv1a64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* The manifest, little-endian: "SVKM", u32 format version (1), u64 total
 * length, u64 chunk size, u64 chunk count, u64 nonce, u64 FNV-1a of the
 * blob.  Chunk i lives under key "<name>.c.<nonce hex>.<i>". */
#define MANIFEST_LEN 48
struct manifest {
	uint64_t len, chunk, nchunks, nonce, hash;
};

static void manifest_encode(unsigned char *b, const struct manifest *m)
{
	memcpy(b, "SVKM", 4);
	b[4] = 1;
	b[5] = b[6] = b[7] = 0;
	put64(b + 8, m->len);
	put64(b + 16, m->chunk);
	put64(b + 24, m->nchunks);
	put64(b + 32, m->nonce);
	put64(b + 40, m->hash);
}

static int manifest_decode(struct manifest *m, const void *p, size_t n)
{
	const unsigned char *b = p;

	if (n != MANIFEST_LEN || memcmp(b, "SVKM", 4) != 0)
		return SV_ERR_MAGIC;
	if (b[4] != 1 || b[5] || b[6] || b[7])
		return SV_ERR_VERSION;
	m->len = get64(b + 8);
	m->chunk = get64(b + 16);
	m->nchunks = get64(b + 24);
	m->nonce = get64(b + 32);
	m->hash = get64(b + 40);
	if (m->chunk == 0 || m->nchunks != (m->len + m->chunk - 1) / m->chunk)
		return SV_ERR_CORRUPT;
	return 0;
}

static void chunk_key(char *buf, size_t n, const char *name, uint64_t nonce, uint64_t i)
{
	snprintf(buf, n, "%s.c.%016" PRIx64 ".%" PRIu64, name, nonce, i);
}

static void delete_chunks(sv_js_kv *kv, const char *name, const struct manifest *m, uint64_t upto)
{
	char key[256];

	for (uint64_t i = 0; i < upto; i++) { /* best effort: an orphan costs space only */
		chunk_key(key, sizeof key, name, m->nonce, i);
		kvStore_Purge(kv->kv, key, NULL);
	}
}

static int read_manifest(sv_js_kv *kv, const char *name, struct manifest *m, uint64_t *rev)
{
	kvEntry *e = NULL;
	natsStatus s = kvStore_Get(&e, kv->kv, name);
	int rc;

	if (s == NATS_NOT_FOUND)
		return SV_ERR_NOTFOUND;
	if (s != NATS_OK)
		return map(kv->js, s, 0);
	rc = m ? manifest_decode(m, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)) : 0;
	if (rc == 0)
		*rev = kvEntry_Revision(e);
	kvEntry_Destroy(e);
	return rc;
}

int sv_js_model_put(sv_js_kv *kv, const char *name, const void *blob, size_t len,
		    size_t chunk_max, uint64_t expect_rev, uint64_t *new_rev)
{
	struct manifest m, old;
	unsigned char mb[MANIFEST_LEN];
	char key[256];
	uint64_t rev = 0, old_rev = 0, i;
	size_t maxp;
	int rc, have_old;

	if (!kv || !name || strlen(name) > 128 || (len && !blob))
		return SV_ERR_RANGE;
	maxp = sv_js_max_payload(kv->js);
	if (chunk_max == 0)
		chunk_max = maxp > 8192 ? maxp - 4096 : 4096;
	if (chunk_max > maxp)
		return SV_ERR_TOOBIG;
	/* the version this one replaces, to delete its chunks afterwards */
	have_old = read_manifest(kv, name, &old, &old_rev) == 0 && old_rev == expect_rev;
	m.len = len;
	m.chunk = chunk_max;
	m.nchunks = (len + chunk_max - 1) / chunk_max;
	m.hash = fnv1a64(blob, len);
	if (getrandom(&m.nonce, sizeof m.nonce, 0) != (ssize_t)sizeof m.nonce)
		return -errno;
	for (i = 0; i < m.nchunks; i++) {
		size_t off = (size_t)i * chunk_max, n = len - off < chunk_max ? len - off : chunk_max;
		natsStatus s;

		chunk_key(key, sizeof key, name, m.nonce, i);
		s = kvStore_Put(NULL, kv->kv, key, (const char *)blob + off, (int)n);
		if (s != NATS_OK) {
			rc = map(kv->js, s, 0);
			delete_chunks(kv, name, &m, i);
			return rc;
		}
	}
	manifest_encode(mb, &m);
	rc = kv_cas(kv, name, mb, sizeof mb, expect_rev, &rev);
	if (rc < 0) {
		/* refused: our chunks are garbage.  Any other failure (a lost
		 * PubAck) may hide a manifest that landed and names them: keep
		 * them (an orphan costs space only, a dangling manifest a model) */
		if (rc == SV_JS_ERR_STALE)
			delete_chunks(kv, name, &m, m.nchunks);
		return rc;
	}
	if (have_old)
		delete_chunks(kv, name, &old, old.nchunks);
	if (new_rev)
		*new_rev = rev;
	return 0;
}

int sv_js_model_rev(sv_js_kv *kv, const char *name, uint64_t *rev)
{
	if (!kv || !name || !rev)
		return SV_ERR_RANGE;
	return read_manifest(kv, name, NULL, rev);
}

int sv_js_model_get(sv_js_kv *kv, const char *name, void **blob, size_t *len, uint64_t *rev)
{
	int rc = 0;

	if (!kv || !name || !blob || !len || !rev)
		return SV_ERR_RANGE;
	for (int attempt = 0; attempt < 10; attempt++) {
		struct manifest m;
		uint64_t r;
		unsigned char *buf;
		char key[256];

		rc = read_manifest(kv, name, &m, &r);
		if (rc < 0)
			return rc;
		buf = malloc(m.len ? m.len : 1);
		if (!buf)
			return -ENOMEM;
		for (uint64_t i = 0; i < m.nchunks && rc == 0; i++) {
			kvEntry *e = NULL;
			uint64_t off = i * m.chunk, want = m.len - off < m.chunk ? m.len - off : m.chunk;
			natsStatus s;

			chunk_key(key, sizeof key, name, m.nonce, i);
			s = kvStore_Get(&e, kv->kv, key);
			if (s == NATS_OK && (uint64_t)kvEntry_ValueLen(e) == want)
				memcpy(buf + off, kvEntry_Value(e), want);
			else if (s == NATS_OK || s == NATS_NOT_FOUND)
				rc = SV_ERR_CORRUPT; /* replaced under us, or not yet on this replica */
			else
				rc = map(kv->js, s, 0);
			kvEntry_Destroy(e);
		}
		if (rc == 0 && fnv1a64(buf, m.len) != m.hash)
			rc = SV_ERR_CORRUPT;
		if (rc == 0) {
			*blob = buf;
			*len = m.len;
			*rev = r;
			return 0;
		}
		free(buf);
		if (rc != SV_ERR_CORRUPT)
			return rc;
		nats_Sleep(20 * (attempt + 1));
	}
	return rc;
}

/* ---- leases ---- */

int sv_js_lease_acquire(sv_js_kv *kv, const char *key, const char *holder, uint64_t *rev)
{
	int rc;

	if (!kv || !key || !holder)
		return SV_ERR_RANGE;
	rc = kv_cas(kv, key, holder, strlen(holder), 0, rev);
	return rc == SV_JS_ERR_STALE ? SV_JS_ERR_HELD : rc;
}

int sv_js_lease_renew(sv_js_kv *kv, const char *key, const char *holder, uint64_t rev,
		      uint64_t *new_rev)
{
	if (!kv || !key || !holder || rev == 0)
		return SV_ERR_RANGE;
	return kv_cas(kv, key, holder, strlen(holder), rev, new_rev);
}

int sv_js_lease_release(sv_js_kv *kv, const char *key, const char *holder, uint64_t rev)
{
	char stream[160], subj[512];
	jsOptions o;
	jsErrCode jerr = 0;
	natsStatus s;
	int rc;

	if (!kv || !key || !holder || rev == 0)
		return SV_ERR_RANGE;
	/* still ours (a renew by compare-and-set): then nobody can take it
	 * before the purge below, which leaves the key with no message at all,
	 * so the next acquire (create on revision 0) succeeds at once; a delete
	 * marker would be a message, and creates would wait for the TTL */
	if ((rc = kv_cas(kv, key, holder, strlen(holder), rev, NULL)) < 0)
		return rc;
	snprintf(stream, sizeof stream, "KV_%s", kv->bucket);
	if (snprintf(subj, sizeof subj, "$KV.%s.%s", kv->bucket, key) >= (int)sizeof subj)
		return SV_ERR_RANGE;
	jsOptions_Init(&o);
	o.Stream.Purge.Subject = subj;
	s = js_PurgeStream(kv->js->js, stream, &o, &jerr);
	return s == NATS_OK ? 0 : map(kv->js, s, jerr);
}

int sv_js_lease_holder(sv_js_kv *kv, const char *key, char *buf, size_t bufsz, uint64_t *rev)
{
	kvEntry *e = NULL;
	natsStatus s;
	size_t n;

	if (!kv || !key || !buf || bufsz == 0 || !rev)
		return SV_ERR_RANGE;
	s = kvStore_Get(&e, kv->kv, key);
	if (s == NATS_NOT_FOUND)
		return SV_ERR_NOTFOUND;
	if (s != NATS_OK)
		return map(kv->js, s, 0);
	n = (size_t)kvEntry_ValueLen(e);
	if (n >= bufsz) {
		kvEntry_Destroy(e);
		return SV_ERR_TOOBIG;
	}
	memcpy(buf, kvEntry_Value(e), n);
	buf[n] = '\0';
	*rev = kvEntry_Revision(e);
	kvEntry_Destroy(e);
	return 0;
}
