/* ctl_publish.c - publish VECFILE PAIRFILE: stream a pair file to the daemon.
 *
 * Files: the .vec / .pairs formats of shared/data/README.md, read and
 * validated by sv/pairfile.h.  Messages: PAIR_BATCH (PAIR for a batch of
 * one) of --batch records each.  Every pair is keyed (client id, record
 * index): a message carries the CLIENT frame with seq = index of its first
 * record, and the daemon keys row i as seq + i.  So the same files published
 * again, with any --batch or --limit, never store a pair twice (the daemon
 * acks those rows as duplicates).  The client id is derived from the two
 * files' contents ("pub-" + 16 hex digits of a 64-bit FNV-1a hash), so
 * renaming or copying the files does not change it.
 *
 * An explicit --client-id names a publisher, not a file: its records then
 * go on from the daemon's next seq for that id (the CLIENT_STATE verb, seq 0
 * for an id it does not know), so a restarted publisher that reuses its id
 * never sends a seq the daemon already logged, and its new labels are kept.
 *
 * Sides: by default both vectors travel inline (anonymous vectors).  With
 * --items-first every row a record refers to is first upserted as item
 * "<global id>" (ITEM_PUT), then the pairs go as id-only sides.
 *
 * Without --acked the messages go to the fire-and-forget ingest endpoint
 * (PUSH; delivery in order, nothing confirmed).  With --acked they go to the
 * acked endpoint (DEALER, up to WINDOW messages in flight); a message with
 * no ack within --timeout, or answered BUSY / PAUSED, is sent again (safe:
 * same client id and seq) up to MAX_TRIES times.
 *
 * Output: a progress bar on stderr when it is a terminal (not with -q), a
 * summary line on stdout.  Exit: 0; CTL_EXIT_REFUSED when the daemon
 * rejected any pair or refused a message (a full store among them: the
 * message names the limit to raise); CTL_EXIT_CONNECT when it stopped
 * answering.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_json.h"
#include "sv/error.h"
#include "sv/pairfile.h"

#define WINDOW 16
#define MAX_TRIES 6
#define RID_STRIDE 64 /* request id = base + batch * RID_STRIDE + try */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- progress ---- */

struct progress {
	int on;
	double t0, last;
	uint64_t total;
	const char *what;
};

static void fmt_eta(double s, char *buf, size_t cap)
{
	if (!isfinite(s) || s < 0 || s > 359999)
		snprintf(buf, cap, "--:--");
	else if (s >= 3600)
		snprintf(buf, cap, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
	else
		snprintf(buf, cap, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void progress_show(struct progress *p, uint64_t done, int final)
{
	double t = now_s(), el = t - p->t0, rate = el > 0 ? (double)done / el : 0;
	char bar[31], eta[16];
	int fill;

	if (!p->on || (!final && t - p->last < 0.1))
		return;
	p->last = t;
	fill = p->total ? (int)(30.0 * (double)done / (double)p->total) : 30;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[30] = '\0';
	fmt_eta(rate > 0 ? (double)(p->total - done) / rate : NAN, eta, sizeof(eta));
	fprintf(stderr, "\r%s [%s] %5.1f%% %llu/%llu  %.0f pairs/s  ETA %s ", p->what, bar,
	        p->total ? 100.0 * (double)done / (double)p->total : 100.0,
	        (unsigned long long)done, (unsigned long long)p->total, rate, eta);
	if (final)
		fputc('\n', stderr);
}

/* ---- the run ---- */

struct pub {
	struct ctl_ctx *c;
	const struct ctl_opts *o;
	struct sv_vecfile *vf;
	struct sv_pairfile *pf;
	const struct sv_pair_rec *rec;
	uint32_t dim;
	uint64_t n; /* records to send */
	uint32_t B;
	char client[80];
	uint64_t seq0; /* the client seq of record 0 */
	struct ctl_conn cn;
	struct sv_proto_msgbuf mb;
	struct sv_proto_pair *pairs; /* B rows */
	char (*ids)[12];             /* 2B decimal ids */
	uint64_t rid_base;
	struct progress prog;
	/* outcomes */
	uint64_t sent, committed, duplicate, rejected;
	uint16_t first_reject_status;
	uint8_t first_reject_reason;
	uint64_t first_reject_rec;
};

/* Encode batch k (records [k*B, min((k+1)*B, n))) into p->mb. */
static int encode_batch(struct pub *p, uint64_t k, uint64_t rid, size_t *rows)
{
	uint64_t first = k * p->B, end = first + p->B < p->n ? first + p->B : p->n;
	size_t m = (size_t)(end - first);
	struct sv_proto_client cl = {p->client, strlen(p->client), p->seq0 + first};

	for (size_t i = 0; i < m; i++) {
		const struct sv_pair_rec *r = &p->rec[first + i];
		struct sv_proto_pair *q = &p->pairs[i];

		memset(q, 0, sizeof(*q));
		q->label = r->label;
		if (p->o->items_first) {
			int la = snprintf(p->ids[2 * i], 12, "%u", r->a);
			int lb = snprintf(p->ids[2 * i + 1], 12, "%u", r->b);

			q->a.id = p->ids[2 * i];
			q->a.id_len = (size_t)la;
			q->b.id = p->ids[2 * i + 1];
			q->b.id_len = (size_t)lb;
		} else {
			q->a.vec = sv_vecfile_row(p->vf, r->a);
			q->b.vec = sv_vecfile_row(p->vf, r->b);
		}
	}
	*rows = m;
	if (sv_proto_encode_pairs(&p->mb, m == 1 ? SV_PROTO_VERB_PAIR : SV_PROTO_VERB_PAIR_BATCH,
	                          rid, p->pairs, m, p->o->items_first ? 0 : p->dim, &cl) != 0) {
		ctl_err("publish: cannot encode records %llu..%llu", (unsigned long long)first,
		        (unsigned long long)(end - 1));
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

/* Keep to --rate: wait until `done` pairs are due. */
static void throttle(struct pub *p, uint64_t done)
{
	if (p->o->rate > 0)
		sleep_s(p->prog.t0 + (double)done / p->o->rate - now_s());
}

/* Fire and forget over PUSH. */
static int run_push(struct pub *p)
{
	uint64_t nb = (p->n + p->B - 1) / p->B;

	for (uint64_t k = 0; k < nb; k++) {
		size_t rows;
		int rc = encode_batch(p, k, p->rid_base + k * RID_STRIDE, &rows);

		if (!rc)
			rc = ctl_conn_send(&p->cn, &p->mb);
		if (rc)
			return rc;
		p->sent += rows;
		progress_show(&p->prog, p->sent, 0);
		throttle(p, p->sent);
	}
	return CTL_EXIT_OK;
}

struct flight {
	uint64_t batch;
	int tries;
	double deadline; /* resend after this */
	int active;
};

static void record_rejects(struct pub *p, const struct ctl_reply *r, uint64_t first)
{
	for (size_t i = 0; i < r->rep.n; i++) {
		struct sv_proto_ack_row a;

		if (sv_proto_reply_ack_row(&r->rep, i, &a) == 0 &&
		    a.outcome == SV_PROTO_OUTCOME_REJECTED && p->first_reject_status == 0) {
			p->first_reject_status = a.status ? a.status : SV_PROTO_STATUS_MALFORMED;
			p->first_reject_reason = a.reason;
			p->first_reject_rec = first + i;
		}
	}
}

/* Acked: a window of messages in flight over DEALER. */
static int run_acked(struct pub *p)
{
	uint64_t nb = (p->n + p->B - 1) / p->B, next = 0, done_batches = 0;
	struct flight fl[WINDOW] = {{0}};
	double tmo = p->o->timeout_ms / 1000.0;

	while (done_batches < nb) {
		double t = now_s(), wait;
		zmq_pollitem_t pi = {p->cn.sock, 0, ZMQ_POLLIN, 0};
		int rc;

		/* (re)send what is due */
		for (int w = 0; w < WINDOW; w++) {
			size_t rows;

			if (!fl[w].active) {
				if (next >= nb)
					continue;
				fl[w] = (struct flight){next++, 0, 0, 1};
				throttle(p, fl[w].batch * p->B);
				t = now_s();
			} else if (fl[w].deadline > t) {
				continue;
			}
			if (fl[w].tries == MAX_TRIES) {
				ctl_err(
				    "publish: cannot reach daemon at %s: no ack for records "
				    "%llu.. after %d tries (timeout %gs each; paused or stopped?)",
				    p->cn.endpoint, (unsigned long long)(fl[w].batch * p->B),
				    MAX_TRIES, tmo);
				return CTL_EXIT_CONNECT;
			}
			rc = encode_batch(
			    p, fl[w].batch,
			    p->rid_base + fl[w].batch * RID_STRIDE + (uint64_t)fl[w].tries, &rows);
			if (!rc)
				rc = ctl_conn_send(&p->cn, &p->mb);
			if (rc)
				return rc;
			if (fl[w].tries == 0)
				p->sent += rows;
			fl[w].tries++;
			fl[w].deadline = now_s() + tmo;
		}
		/* wait for the earliest deadline or a reply */
		wait = 1e9;
		for (int w = 0; w < WINDOW; w++)
			if (fl[w].active && fl[w].deadline - now_s() < wait)
				wait = fl[w].deadline - now_s();
		if (wait < 0)
			wait = 0;
		rc = zmq_poll(&pi, 1, (long)(wait * 1000) + 1);
		if (rc < 0 && zmq_errno() != EINTR) {
			ctl_err("publish: poll: %s", zmq_strerror(zmq_errno()));
			return CTL_EXIT_FAIL;
		}
		while (rc > 0) {
			struct ctl_reply r;
			uint64_t rid, batch;
			int w, got, st;

			ctl_reply_init(&r);
			got = ctl_conn_recv_within(&p->cn, &r, 0);
			if (got != CTL_EXIT_OK) {
				ctl_reply_close(&r);
				if (got == -1)
					break; /* nothing more waiting */
				return got;
			}
			rid = r.rep.hdr.request_id;
			batch = (rid - p->rid_base) / RID_STRIDE;
			for (w = 0; w < WINDOW; w++)
				if (fl[w].active && fl[w].batch == batch && rid >= p->rid_base)
					break;
			if (w == WINDOW) { /* a late reply for a batch already done */
				ctl_reply_close(&r);
				continue;
			}
			st = r.rep.status;
			if (st == SV_PROTO_STATUS_BUSY || st == SV_PROTO_STATUS_PAUSED) {
				fl[w].deadline = now_s() + 0.05 * (1 << fl[w].tries);
				if (fl[w].tries == MAX_TRIES) {
					rc = ctl_reply_check(&r, "publish", 0);
					ctl_reply_close(&r);
					return rc;
				}
			} else if (st == SV_PROTO_STATUS_OK || st == SV_PROTO_STATUS_PARTIAL ||
			           st == SV_PROTO_STATUS_DUPLICATE) {
				if (r.rep.has_ack) {
					p->committed += r.rep.ack.n_committed;
					p->duplicate += r.rep.ack.n_duplicate;
					p->rejected += r.rep.ack.n_rejected;
					if (r.rep.ack.n_rejected)
						record_rejects(p, &r, batch * p->B);
				} else {
					uint64_t first = batch * p->B;
					uint64_t m = first + p->B < p->n ? p->B : p->n - first;

					p->duplicate += m;
				}
				fl[w].active = 0;
				done_batches++;
				progress_show(&p->prog, p->committed + p->duplicate + p->rejected,
				              0);
			} else {
				char what[96];

				snprintf(what, sizeof(what), "publish (records %llu..)",
				         (unsigned long long)(batch * p->B));
				rc = ctl_reply_check(&r, what, 0);
				ctl_reply_close(&r);
				return rc;
			}
			ctl_reply_close(&r);
			rc = zmq_poll(&pi, 1, 0);
		}
	}
	return CTL_EXIT_OK;
}

/* --items-first: upsert every row the records refer to, once. */
static int upsert_items(struct pub *p, int acked)
{
	const struct sv_pair_header *ph = sv_pairfile_header(p->pf);
	uint32_t lo = ph->id_lo, span = ph->id_hi - ph->id_lo;
	unsigned char *seen = calloc(span, 1);
	uint64_t n_items = 0, done = 0;
	struct progress pr = p->prog;
	int rc = CTL_EXIT_OK;

	if (!seen) {
		ctl_err("publish: out of memory");
		return CTL_EXIT_FAIL;
	}
	for (uint64_t i = 0; i < p->n; i++) {
		n_items += !seen[p->rec[i].a - lo];
		seen[p->rec[i].a - lo] = 1;
		n_items += !seen[p->rec[i].b - lo];
		seen[p->rec[i].b - lo] = 1;
	}
	pr.what = "items  ";
	pr.total = n_items;
	pr.t0 = now_s();
	for (uint32_t g = 0; g < span && !rc; g++) {
		char id[12];
		uint64_t rid;
		int len;

		if (!seen[g])
			continue;
		len = snprintf(id, sizeof(id), "%u", lo + g);
		rid = ctl_conn_next_id(&p->cn);
		if (sv_proto_encode_item_put(&p->mb, rid, id, (size_t)len,
		                             sv_vecfile_row(p->vf, lo + g), p->dim) != 0) {
			ctl_err("publish: cannot encode item %s", id);
			rc = CTL_EXIT_FAIL;
			break;
		}
		if (acked) {
			struct ctl_reply r;
			char what[64];

			ctl_reply_init(&r);
			snprintf(what, sizeof(what), "publish: item put %s", id);
			rc = ctl_conn_call(&p->cn, &p->mb, rid, &r);
			if (!rc)
				rc = ctl_reply_check(&r, what, 0);
			ctl_reply_close(&r);
		} else {
			rc = ctl_conn_send(&p->cn, &p->mb);
		}
		progress_show(&pr, ++done, 0);
	}
	if (!rc)
		progress_show(&pr, done, 1);
	free(seen);
	return rc;
}

static int open_files(struct pub *p)
{
	char err[SV_PAIRFILE_ERRLEN];
	int rc;

	rc = sv_vecfile_open(&p->vf, p->o->args[0], err, sizeof(err));
	if (!rc)
		rc = sv_pairfile_open(&p->pf, p->o->args[1], err, sizeof(err));
	if (!rc)
		rc = sv_pairfile_check_vec(p->pf, p->vf, err, sizeof(err));
	if (rc) {
		ctl_err("%s", err);
		return CTL_EXIT_FAIL;
	}
	p->dim = sv_vecfile_header(p->vf)->dim;
	p->rec = sv_pairfile_records(p->pf);
	p->n = sv_pairfile_header(p->pf)->n_pairs;
	if (p->n == 0) {
		ctl_err("%s: holds no pairs", p->o->args[1]);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

static void derive_client_id(struct pub *p)
{
	if (p->o->client_id) {
		snprintf(p->client, sizeof(p->client), "%s", p->o->client_id);
		return;
	}
	snprintf(p->client, sizeof(p->client), "pub-%016llx",
	         (unsigned long long)sv_pairfile_fingerprint(p->pf, p->vf));
}

/* --client-id: go on from the daemon's next seq for this client. */
static int resume_seq(struct pub *p)
{
	struct ctl_conn cn;
	struct ctl_reply r;
	struct ctl_json *j = NULL;
	char err[128];
	uint64_t rid;
	int rc = ctl_conn_open(&cn, p->c, ZMQ_DEALER, p->c->acked, "acked ingest");

	if (rc)
		return rc;
	ctl_reply_init(&r);
	rid = ctl_conn_next_id(&cn);
	if (sv_proto_encode_item(&p->mb, SV_PROTO_VERB_CLIENT_STATE, rid, p->client,
	                         strlen(p->client)) != 0) {
		ctl_err("publish: client id '%s' cannot be sent (1..255 bytes)", p->client);
		rc = CTL_EXIT_FAIL;
	}
	if (!rc)
		rc = ctl_conn_call(&cn, &p->mb, rid, &r);
	if (!rc)
		rc = ctl_reply_check(&r, "publish: client state", 0);
	if (!rc && ctl_json_parse(r.rep.payload, r.rep.payload_len, &j, err, sizeof(err)) != 0) {
		ctl_err("publish: client state: %s", err);
		rc = CTL_EXIT_DAEMON;
	}
	if (!rc) {
		p->seq0 = (uint64_t)ctl_json_num(j, "next_seq", 0);
		if (p->seq0 && !p->o->quiet)
			fprintf(stderr, "publish: client '%s' goes on from seq %llu\n", p->client,
			        (unsigned long long)p->seq0);
	}
	ctl_json_free(j);
	ctl_reply_close(&r);
	ctl_conn_close(&cn);
	return rc;
}

int ctl_publish_run(struct ctl_ctx *c)
{
	struct pub p;
	double t;
	int rc;

	memset(&p, 0, sizeof(p));
	p.c = c;
	p.o = c->o;
	p.B = c->o->batch;
	sv_proto_msgbuf_init(&p.mb);
	rc = open_files(&p);
	if (rc)
		goto out;
	derive_client_id(&p);
	if (p.o->limit && p.o->limit < p.n)
		p.n = p.o->limit;
	p.pairs = calloc(p.B, sizeof(*p.pairs));
	p.ids = calloc(2 * (size_t)p.B, sizeof(*p.ids));
	if (!p.pairs || !p.ids) {
		ctl_err("publish: out of memory");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (p.o->client_id && (rc = resume_seq(&p)) != 0)
		goto out;
	if (p.o->ack)
		rc = ctl_conn_open(&p.cn, c, ZMQ_DEALER, c->acked, "acked ingest");
	else
		rc = ctl_conn_open(&p.cn, c, ZMQ_PUSH, c->ingest, "ingest");
	if (rc)
		goto out;
	if (!p.o->ack) {
		/* let queued messages drain on close, up to the timeout */
		int linger = p.o->timeout_ms;

		zmq_setsockopt(p.cn.sock, ZMQ_LINGER, &linger, sizeof(linger));
	}
	p.rid_base = ctl_conn_next_id(&p.cn) & ~0xffffffffull;
	p.prog.on = !p.o->quiet && isatty(STDERR_FILENO);
	p.prog.what = "publish";
	p.prog.total = p.n;
	p.prog.t0 = now_s();
	if (p.o->items_first) {
		rc = upsert_items(&p, p.o->ack);
		if (rc)
			goto out;
		p.prog.t0 = now_s();
	}
	rc = p.o->ack ? run_acked(&p) : run_push(&p);
	t = now_s() - p.prog.t0;
	if (p.prog.on)
		progress_show(&p.prog, rc ? p.sent : p.n, 1);
	if (rc)
		goto out;
	if (p.o->ack) {
		printf("published %llu pairs as client '%s': %llu committed, %llu duplicate, %llu "
		       "rejected in %.2f s (%.0f pairs/s)\n",
		       (unsigned long long)p.n, p.client, (unsigned long long)p.committed,
		       (unsigned long long)p.duplicate, (unsigned long long)p.rejected, t,
		       t > 0 ? (double)p.n / t : 0.0);
		if (p.rejected) {
			ctl_err("publish: the daemon rejected %llu pairs; the first, record %llu: "
			        "%s%s%s",
			        (unsigned long long)p.rejected,
			        (unsigned long long)p.first_reject_rec,
			        sv_proto_status_name(p.first_reject_status),
			        p.first_reject_reason ? " " : "",
			        p.first_reject_reason ? sv_proto_reason_name(p.first_reject_reason)
			                              : "");
			rc = CTL_EXIT_REFUSED;
		}
	} else {
		printf(
		    "sent %llu pairs as client '%s' in %.2f s (%.0f pairs/s), not acknowledged\n",
		    (unsigned long long)p.n, p.client, t, t > 0 ? (double)p.n / t : 0.0);
	}
out:
	ctl_conn_close(&p.cn);
	sv_proto_msgbuf_free(&p.mb);
	free(p.pairs);
	free(p.ids);
	sv_pairfile_close(p.pf);
	sv_vecfile_close(p.vf);
	return rc;
}
