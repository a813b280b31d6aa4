/* ingest.c - the ingest module (see ingest.h), a pipeline of two threads:
 * the decode stage (sv-ingest-dec) reads the PULL and the acked ROUTER,
 * decodes and checks each message and copies and hashes its vectors; the
 * writer (the trainer thread) takes the decoded messages in order,
 * resolves and applies them to ONE store group, commits, answers through
 * the stage, and hands the logged pairs back.
 * Leaves out: batching, training, checkpoints and recovery (trainer.c).
 */
#include "ingest.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zmq.h>

#include "cluster.h"
#include "curve.h"
#include "daemon.h"
#include "log.h"
#include "parts.h"
#include "reject.h"
#include "reply.h"
#include "sv/error.h"
#include "sv/journal.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "topk_cache.h"
#include "trainer.h" /* SV_STORE_ITEM_INLINE, until it moves to sv/store.h */
#include "util.h"


/* One message as the decode stage hands it to the writer.  The stage owns
 * it until it is queued, the writer from then on until it gives it back
 * (im_release): after the group whose pairs point into vecs was handed
 * back, or, held for a retry or over a pause, when it is done with. */
struct imsg {
	struct imsg *next;  /* in a queue, the free list or the writer's done list */
	struct parts p;     /* the frames, kept while anything points into them
	                     * (none for a malformed or over-long one, off the feed) */
	size_t bytes;       /* the message's bytes as received */
	size_t cost_pairs;  /* its pairs (1 for other verbs), for the queue's bound */
	size_t cost_bytes;  /* bytes + vecs, for the queue's bound */
	int over;           /* more parts than PARTS_MAX */
	int acked;          /* from the ROUTER: rid and delim say whom to answer */
	uint8_t rid[256];
	size_t rid_len;
	int delim;
	int rc;             /* the decode: 0, < 0 malformed (err), IM_UNDECODED */
	struct sv_proto_request rq; /* points into p's frames */
	struct sv_proto_error err;
	/* PAIR, PAIR_BATCH: row 2i + s is side s of pair i when it carries a
	 * vector, inl[2i + s] its content id when it has no id of its own;
	 * ITEM_PUT: row 0 */
	float *vecs;
	size_t vecs_cap; /* rows */
	char (*inl)[SV_STORE_INLINE_ID_LEN + 1];
	size_t inl_cap;
};

#define IM_UNDECODED 1 /* the stage left it to the writer (a feed marker, odd frames) */

/* One queue from the decode stage to the writer, under ingest.pmu. */
struct pipe_q {
	struct imsg *head, *tail;
	size_t n, pairs, bytes;
	int efd;     /* eventfd, readable exactly while n > 0 (the writer polls it) */
	int blocked; /* the stage stopped reading this queue's socket for room */
};

enum { Q_ACKED, Q_PULL };

/* One item of the group in hand as later messages of the same group see it
 * before the commit: put, deleted, or read from the store (so that an id
 * many pairs of the group name, a gallery item, is looked up and copied
 * once; a later put or delete of the id supersedes the read). */
struct pend_item {
	uint8_t id[SV_STORE_ID_MAX];
	size_t len;
	long row;   /* row in pool, -1: deleted in this group */
	int stored; /* a put, in the group's transaction (0: a read, or a put to come) */
};

/* One pair logged by the group in hand, handed back once it commits. */
struct stage_pair {
	size_t row_a, row_b; /* rows in pool */
	uint64_t key_a, key_b, seq;
	uint8_t label;
};

/* One reply owed once the group commits (acked ROUTER messages). */
struct pend_ack {
	uint8_t rid[256];
	size_t rid_len;
	int delim; /* the client sent an empty delimiter frame */
	uint8_t verb;
	uint64_t req_id;
	int status; /* reply status if not an ACK (item verbs) */
	struct sv_proto_ack ack;
	size_t row0, nrows;    /* rows in g->ack_rows */
	size_t stage0, nstage; /* pairs it staged */
};

struct ingest {
	struct sv_daemon *d;
	void *pull, *router; /* the decode stage's */
	struct sv_proto_limits lim;
	struct sv_proto_msgbuf mb;

	/* The pipeline.  pmu guards q, the free list and room_efd's meaning. */
	pthread_mutex_t pmu;
	struct pipe_q q[2];  /* Q_ACKED, Q_PULL */
	int room_efd;        /* the writer made room in a queue the stage waits on */
	struct imsg *free_im;
	size_t free_n;
	struct sv_proto_limits stage_lim; /* the stage's: the limits in force (live_limits) */
	unsigned stage_gen;
	void *rep_tx, *rep_rx; /* inproc PAIR: the writer's replies to the stage */
	pthread_t dec_th;
	int dec_started;
	struct imsg *done;     /* the writer's: messages of the group handed back */

	/* the group in hand */
	sv_store_txn *txn;
	int group_failed;
	float **rows;   /* pool_n rows of d_in floats: an imsg's vecs or the arena */
	size_t pool_n, pool_cap;
	float **arena;  /* blocks of ARENA_ROWS rows that never move: store reads */
	size_t arena_n, arena_blocks;
	struct pend_item *pend;
	size_t pend_n, pend_cap;
	uint32_t *pidx;  /* open-addressing index over pend: slot = index + 1, 0 empty */
	size_t pidx_cap; /* a power of two, >= 2 pend_n; 0 before the first add */
	struct stage_pair *stage;
	size_t stage_n, stage_cap;
	struct ingest_pair *out; /* stage, resolved to vectors, after the commit */
	size_t out_cap;
	struct pend_ack *acks;
	size_t ack_n, ack_cap;
	struct sv_proto_ack_row *ack_rows;
	size_t ack_rows_n, ack_rows_cap;
	uint64_t group_msgs, group_pairs;
	uint64_t group_pair_outcome[SV_PAIR_OUTCOME_COUNT];
	int group_freed; /* the group deleted something: room may be free */

	/* The store's bounds (store.retain_*, store.min_free, ingest.dedup_*). */
	uint64_t retain_pairs, retain_age_ns, min_free, dedup_window_ns;
	size_t max_map;       /* store.max_map_size */
	uint32_t dedup_depth; /* ingest.dedup_depth */
	uint64_t house_ns, expire_ns, disk_ns; /* when each check last ran */
	/* A full store: the fire-and-forget messages of the group in hand are
	 * held until it commits; when it fails for room they stay held (the
	 * group is stalled), the PULL socket is left unread, and the group is
	 * tried again every RETRY_NS or as soon as room may have been freed. */
	int full;            /* enum sv_full */
	int disk_low;        /* the last statvfs found less than min_free */
	dev_t store_dev;     /* data.mdb as opened: a different one (or none) later */
	ino_t store_ino;     /* means its files were removed under the daemon */
	struct imsg **held;  /* group_max of them */
	size_t held_n;
	int stalled;
	/* While paused: fire-and-forget messages read and checked for size at
	 * once (an oversize one is rejected then, not held), the rest kept in
	 * order, up to max_paused_bytes, for after RESUME. */
	struct imsg **pq;
	size_t pq_head, pq_n, pq_cap, pq_bytes, pq_max;
	int held_in_group; /* this group's fire-and-forget messages are the held ones */
	/* a cluster node: the PULL socket is cluster.c's feed, frame 0 of each
	 * message its stream and source sequences (cluster.h) */
	int feed;
	const char *mark; /* the store mark of the stream followed */
	uint64_t js_mark; /* the stream sequence the store's last commit holds */
	uint64_t js_seq;  /* the highest one of the group in hand */
	uint64_t js_src;  /* the highest source sequence of the group (replica) */
	int cut;          /* the group ended at a CUT message */
	int feed_gap;     /* a failed commit lost feed messages: skip until rewound */
	int probing;       /* this group tries a full map again */
	int kick;
	uint64_t retry_ns;
};

#define RETRY_NS 1000000000ULL  /* a stalled group is tried again after this */
#define HOUSE_NS 1000000000ULL  /* retention and the disk check when idle */
#define EXPIRE_NS 10000000000ULL /* idle clients' windows */
#define DISK_NS 100000000ULL    /* statvfs at most this often */
#define TRIM_MIN 4096           /* log rows a group may delete, at least */
#define EXPIRE_MAX 4096         /* window entries one group may delete */
#define ARENA_ROWS 256          /* rows per block of the store reads' arena */
/* Each queue from the decode stage holds at most one group's worth of pairs
 * (group_max) and PIPE_BYTES of messages and their vectors (one message
 * whatever its size): the stage prepares the next group while the writer
 * commits this one, and stops reading a socket whose queue is full, so
 * its publishers wait at the high-water mark. */
#define PIPE_BYTES (64u << 20)
#define PIPE_BURST 64  /* messages the stage reads before it looks at replies */
#define FREE_MAX 64    /* spent messages kept for reuse */

/* Client-caused log lines: at most LOG_BURST a second each (trainer
 * thread only, so plain statics). */
static struct sv_ratelimit rl_noitem, rl_unroutable, rl_malformed, rl_verb, rl_frames, rl_stale,
    rl_full, rl_commit;
static char sbuf[64];
static unsigned long long sup;

/* ---- the group ---------------------------------------------------------- */

/* The group's pending items (puts and deletes, last one wins) are found
 * through a hash index, so a group of many inline pairs costs O(1) per
 * lookup, not a scan of every item before it. */
static struct pend_item *pend_find(struct ingest *g, const void *id, size_t len)
{
	size_t mask = g->pidx_cap - 1, h;

	if (g->pidx_cap == 0)
		return NULL;
	for (h = (size_t)sv_journal_item_key(id, len) & mask; g->pidx[h] != 0; h = (h + 1) & mask) {
		struct pend_item *p = &g->pend[g->pidx[h] - 1];

		if (p->len == len && memcmp(p->id, id, len) == 0)
			return p;
	}
	return NULL;
}

/* Point the index at pend[i]: replaces an entry with the same id. */
static void pidx_put(struct ingest *g, size_t i)
{
	const struct pend_item *p = &g->pend[i];
	size_t mask = g->pidx_cap - 1, h;

	for (h = (size_t)sv_journal_item_key(p->id, p->len) & mask; g->pidx[h] != 0;
	     h = (h + 1) & mask) {
		const struct pend_item *q = &g->pend[g->pidx[h] - 1];

		if (q->len == p->len && memcmp(q->id, p->id, p->len) == 0)
			break;
	}
	g->pidx[h] = (uint32_t)i + 1;
}

static int pend_add(struct ingest *g, const void *id, size_t len, long row)
{
	struct pend_item *p;

	if (grow_array((void **)&g->pend, &g->pend_cap, g->pend_n + 1, sizeof(*g->pend)) < 0)
		return -ENOMEM;
	if (2 * (g->pend_n + 1) > g->pidx_cap) {
		size_t cap = g->pidx_cap ? 2 * g->pidx_cap : 1024;
		uint32_t *q = calloc(cap, sizeof(*q));

		if (q == NULL)
			return -ENOMEM;
		free(g->pidx);
		g->pidx = q;
		g->pidx_cap = cap;
		for (size_t i = 0; i < g->pend_n; i++) /* in order: the last one wins */
			pidx_put(g, i);
	}
	p = &g->pend[g->pend_n++];
	memcpy(p->id, id, len);
	p->len = len;
	p->row = row;
	p->stored = 0;
	pidx_put(g, g->pend_n - 1);
	return 0;
}

/* A row of the group pointing at x (a vector the decode stage copied). */
static long pool_ref(struct ingest *g, float *x)
{
	if (grow_array((void **)&g->rows, &g->pool_cap, g->pool_n + 1, sizeof(*g->rows)) < 0)
		return -ENOMEM;
	g->rows[g->pool_n] = x;
	return (long)g->pool_n++;
}

/* A row of the group in the arena, for a store read to fill. */
static long pool_row(struct ingest *g)
{
	size_t b = g->arena_n / ARENA_ROWS;
	long k;

	if (b == g->arena_blocks) {
		float **q = realloc(g->arena, (b + 1) * sizeof(*q));

		if (q == NULL)
			return -ENOMEM;
		g->arena = q;
		g->arena[b] = malloc((size_t)ARENA_ROWS * g->d->conf.d_in * sizeof(float));
		if (g->arena[b] == NULL)
			return -ENOMEM;
		g->arena_blocks++;
	}
	k = pool_ref(g, g->arena[b] + (g->arena_n % ARENA_ROWS) * g->d->conf.d_in);
	if (k >= 0)
		g->arena_n++;
	return k;
}

/* Undo the last pool_row (its read failed). */
static void pool_unrow(struct ingest *g)
{
	g->pool_n--;
	g->arena_n--;
}

static float *row_ptr(struct ingest *g, size_t row)
{
	return g->rows[row];
}

static int group_begin(struct ingest *g)
{
	int rc;

	if (g->txn != NULL || g->group_failed)
		return g->group_failed;
	rc = sv_store_txn_begin(g->d->store, &g->txn);
	if (rc < 0) {
		g->group_failed = rc;
		g->txn = NULL;
	}
	return rc;
}

/* Resolve one side into a pool row; *put tells whether an item put is
 * needed (for every side that carries a vector: vec, copied by the decode
 * stage, with inl its content id when the side names none).  Returns 0,
 * SV_ERR_NOTFOUND, or a negative code. */
static int side_resolve(struct ingest *g, sv_store_read **r, const struct sv_proto_side *s,
                        float *vec, const char *inl, const void **id, size_t *len, long *row,
                        int *put)
{
	struct pend_item *p;
	long k;
	int rc;

	*put = 0;
	if (s->vec != NULL) {
		k = pool_ref(g, vec);
		if (k < 0)
			return (int)k;
		if (s->id != NULL) {
			*id = s->id;
			*len = s->id_len;
		} else {
			/* content-addressed: item_put writes it only if the id is new */
			*id = inl;
			*len = SV_STORE_INLINE_ID_LEN;
		}
		*row = k;
		*put = 1;
		return 0;
	}
	*id = s->id;
	*len = s->id_len;
	*row = -1;
	p = pend_find(g, s->id, s->id_len);
	if (p != NULL) {
		if (p->row < 0)
			return SV_ERR_NOTFOUND;
		*row = p->row;
		return 0;
	}
	if (*r == NULL) {
		rc = sv_store_read_begin(g->d->store, r);
		if (rc < 0)
			return rc;
	}
	k = pool_row(g);
	if (k < 0)
		return (int)k;
	rc = sv_store_item_get(*r, s->id, s->id_len, row_ptr(g, (size_t)k));
	if (rc < 0) {
		pool_unrow(g);
		return rc;
	}
	pend_add(g, s->id, s->id_len, k); /* best effort: without memory it is read again */
	*row = k;
	return 0;
}

struct resolved {
	const void *id[2];
	size_t len[2];
	long row[2];
	int put[2];
	int rc[2]; /* each side's lookup: 0, SV_ERR_NOTFOUND, SV_ERR_RESERVED_ID, or fatal */
	const char *inl[2]; /* the side's content id (the decode stage's), if inline */
	uint8_t label;
};

#define SV_ERR_RESERVED_ID 1 /* local: a client wrote an id in the inline namespace */

/* Row i's sides as of now: an id-only side named by an upsert or delete of
 * an earlier row of this message that was logged (pend entries from pend0
 * on; the message's own store reads are among them and give the phase-1
 * rows again), or by the other side of the same row, takes that; otherwise
 * its phase-1 lookup stands.  Returns the row's code. */
static int row_resolve(struct ingest *g, struct resolved *x, size_t pend0)
{
	int rc = 0;

	for (int s = 0; s < 2; s++) {
		struct pend_item *p;

		if (x->put[s] || (x->rc[s] != 0 && x->rc[s] != SV_ERR_NOTFOUND))
			continue; /* an upsert, a reserved id, or a store failure */
		if (x->put[1 - s] && x->len[1 - s] == x->len[s] &&
		    memcmp(x->id[1 - s], x->id[s], x->len[s]) == 0) {
			x->row[s] = x->row[1 - s];
			x->rc[s] = 0;
			continue;
		}
		p = pend_find(g, x->id[s], x->len[s]);
		if (p != NULL && (size_t)(p - g->pend) >= pend0) {
			x->rc[s] = p->row < 0 ? SV_ERR_NOTFOUND : 0;
			x->row[s] = p->row;
		}
	}
	for (int s = 0; s < 2; s++)
		if (x->rc[s] < 0 && x->rc[s] != SV_ERR_NOTFOUND)
			return x->rc[s]; /* a store failure */
	for (int s = 0; s < 2; s++)
		if (x->rc[s] != 0)
			rc = x->rc[s];
	return rc;
}

/* Items: pend, then a store put (not for inline ones already pending). */
static int item_put(struct ingest *g, const void *id, size_t len, long row, uint16_t flags)
{
	struct pend_item *p = pend_find(g, id, len);
	int rc;

	/* content-addressed: one put per group is enough */
	if ((flags & SV_STORE_ITEM_INLINE) && p != NULL && p->row >= 0 && p->stored)
		return 0;
	rc = 0;
	if (p == NULL || p->row != row) {
		rc = pend_add(g, id, len, row);
		p = rc == 0 ? &g->pend[g->pend_n - 1] : NULL;
	}
	if (rc == 0) {
		p->stored = 1;
		rc = group_begin(g);
	}
	if (rc == 0 && (flags & SV_STORE_ITEM_INLINE)) {
		/* stored before (same id, so the same vector): nothing to write */
		rc = sv_store_item_put_new(g->txn, id, len, row_ptr(g, (size_t)row), flags);
		if (rc == SV_ERR_DUPLICATE)
			return 0;
	} else if (rc == 0) {
		rc = sv_store_item_put(g->txn, id, len, row_ptr(g, (size_t)row), flags);
	}
	if (rc < 0 && g->group_failed == 0)
		g->group_failed = rc;
	if (rc == 0)
		atomic_fetch_add(&g->d->cnt.items_put, 1);
	if (rc == 0 && !(flags & SV_STORE_ITEM_INLINE))
		topk_cache_note_put(g->d->topk, id, len, row_ptr(g, (size_t)row));
	return rc;
}

/* A PAIR / PAIR_BATCH request (im, decoded): resolve, log, stage.  rows
 * gets one ack row per pair. */
static void ingest_pairs(struct ingest *g, struct imsg *im, struct pend_ack *a,
                         struct sv_proto_ack_row *rows)
{
	const struct sv_proto_request *rq = &im->rq;
	struct sv_proto_iter it = {0};
	struct sv_proto_pair pr;
	sv_store_read *r = NULL;
	struct resolved *res = NULL;
	size_t i = 0, n = rq->n, pend0 = g->pend_n;

	res = calloc(n ? n : 1, sizeof(*res));
	if (res == NULL) {
		g->group_failed = -ENOMEM;
		return;
	}
	/* Phase 1: look every side up (reads only; no write call while r is
	 * open), as the store and the group's earlier messages have it.  This
	 * message's own upserts take effect in phase 2, row by row, and only
	 * for rows that are logged. */
	while (i < n && sv_proto_next_pair(rq, &it, &pr)) {
		const struct sv_proto_side *sd[2] = {&pr.a, &pr.b};

		for (int s = 0; s < 2; s++) {
			if (sd[s]->vec != NULL && sd[s]->id != NULL &&
			    sv_store_id_reserved(sd[s]->id, sd[s]->id_len)) {
				res[i].rc[s] = SV_ERR_RESERVED_ID;
				res[i].id[s] = sd[s]->id;
				res[i].len[s] = sd[s]->id_len;
				res[i].row[s] = -1;
				continue;
			}
			res[i].inl[s] = im->inl[2 * i + s];
			res[i].rc[s] = side_resolve(g, &r, sd[s], im->vecs + (2 * i + s) * g->d->conf.d_in,
			                            res[i].inl[s], &res[i].id[s], &res[i].len[s],
			                            &res[i].row[s], &res[i].put[s]);
		}
		rows[i].outcome = SV_PROTO_OUTCOME_COMMITTED;
		rows[i].reason = 0;
		rows[i].status = SV_PROTO_STATUS_OK;
		res[i].label = pr.label;
		i++;
	}
	sv_store_read_end(r);
	n = i;
	/* Phase 2: item puts and appends, in message order. */
	for (i = 0; i < n && g->group_failed == 0; i++) {
		struct sv_store_pair sp = {0};
		uint8_t label = res[i].label;
		uint64_t seq = 0;
		int rc = row_resolve(g, &res[i], pend0);

		if (rc == SV_ERR_NOTFOUND || rc == SV_ERR_RESERVED_ID) {
			int reserved = rc == SV_ERR_RESERVED_ID;

			rows[i].outcome = SV_PROTO_OUTCOME_REJECTED;
			rows[i].status = reserved ? SV_PROTO_STATUS_REFUSED : SV_PROTO_STATUS_NOT_FOUND;
			a->ack.n_rejected++;
			reject_count(g->d, reserved ? SV_REJECT_RESERVED_ID : SV_REJECT_NOITEM);
			g->group_pair_outcome[SV_PAIR_OUTCOME_REJECTED]++;
			if (log_ratelimit(&rl_noitem, LOG_BURST, &sup))
				log_msg(LOG_WARNING, reserved ? "SV-INGEST-RESERVED" : "SV-INGEST-NOITEM",
				       "pair %zu of request %llu %s; dropping pair%s", i,
				       (unsigned long long)rq->hdr.request_id,
				       reserved ? "upserts an id in the reserved inline namespace (~v...)"
				                : "names an unknown item",
				       log_suppressed(sup, sbuf, sizeof(sbuf)));
			continue;
		}
		if (rc < 0) {
			g->group_failed = rc;
			break;
		}
		if (group_begin(g) < 0)
			break;
		sp.id_a = res[i].id[0];
		sp.len_a = res[i].len[0];
		sp.id_b = res[i].id[1];
		sp.len_b = res[i].len[1];
		sp.label = label;
		if (rq->has_client) {
			/* Row i is keyed (client id, seq + i): a pair sent again, in
			 * any batching, is a duplicate on its own. */
			sp.client = rq->client.id;
			sp.client_len = rq->client.id_len;
			sp.client_seq = rq->client.seq + i;
		}
		/* The log record first: a row sent again (same client id and
		 * seq) is found duplicate before its item upserts, which are then
		 * not applied again.  Both land in the same group commit. */
		rc = sv_store_pair_append(g->txn, &sp, &seq);
		if (rc == SV_ERR_STALE) {
			rows[i].outcome = SV_PROTO_OUTCOME_REJECTED;
			rows[i].status = SV_PROTO_STATUS_REFUSED;
			rows[i].reason = SV_PROTO_REASON_SEQ_STALE;
			a->ack.n_rejected++;
			reject_count(g->d, SV_PROTO_REASON_SEQ_STALE);
			g->group_pair_outcome[SV_PAIR_OUTCOME_REJECTED]++;
			if (log_ratelimit(&rl_stale, LOG_BURST, &sup))
				log_msg(LOG_WARNING, "SV-INGEST-STALE",
				       "pair %zu of request %llu: client seq %llu is at or below the "
				       "client's highest seq %llu less ingest.dedup_depth; not logged, "
				       "as nothing tells whether it was%s",
				       i, (unsigned long long)rq->hdr.request_id,
				       (unsigned long long)sp.client_seq, (unsigned long long)seq,
				       log_suppressed(sup, sbuf, sizeof(sbuf)));
			continue;
		}
		if (rc == SV_ERR_DUPLICATE) {
			rows[i].outcome = SV_PROTO_OUTCOME_DUPLICATE;
			rows[i].status = SV_PROTO_STATUS_DUPLICATE;
			a->ack.n_duplicate++;
			g->group_pair_outcome[SV_PAIR_OUTCOME_DUPLICATE]++;
			continue;
		}
		if (rc < 0) {
			g->group_failed = rc;
			break;
		}
		for (int s = 0; s < 2; s++)
			if (res[i].put[s] &&
			    item_put(g, res[i].id[s], res[i].len[s], res[i].row[s],
			             res[i].id[s] == res[i].inl[s] ? SV_STORE_ITEM_INLINE : 0) < 0)
				break;
		if (g->group_failed)
			break;
		if (grow_array((void **)&g->stage, &g->stage_cap, g->stage_n + 1,
		               sizeof(*g->stage)) < 0 ||
		    grow_array((void **)&g->out, &g->out_cap, g->stage_n + 1,
		               sizeof(*g->out)) < 0) {
			g->group_failed = -ENOMEM;
			break;
		}
		g->stage[g->stage_n++] = (struct stage_pair){
		    .row_a = (size_t)res[i].row[0],
		    .row_b = (size_t)res[i].row[1],
		    .key_a = sv_journal_item_key(sp.id_a, sp.len_a),
		    .key_b = sv_journal_item_key(sp.id_b, sp.len_b),
		    .seq = seq,
		    .label = label,
		};
		a->nstage++;
		a->ack.n_committed++;
		g->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED]++;
		atomic_store(&g->d->prog.last_seq, seq);
	}
	free(res);
}

/* A stable message id per reject reason: SV-INGEST-BADDIM for wrong_dim,
 * else SV-INGEST- and the reason's name in capitals without underscores
 * (SV-INGEST-NONFINITE, SV-INGEST-BADMAGIC, ...). */
static const char *malformed_id(int reason)
{
	static const char *ids[SV_PROTO_REASON_COUNT_];
	static char buf[SV_PROTO_REASON_COUNT_][40];
	const char *name;
	size_t n = 0;

	if (reason <= 0 || reason >= SV_PROTO_REASON_COUNT_)
		return "SV-INGEST-MALFORMED";
	if (reason == SV_PROTO_REASON_WRONG_DIM)
		return "SV-INGEST-BADDIM";
	if (ids[reason] != NULL) /* trainer thread only: no race */
		return ids[reason];
	name = sv_proto_reason_name(reason);
	n = (size_t)snprintf(buf[reason], sizeof(buf[reason]), "SV-INGEST-");
	for (; *name && n + 1 < sizeof(buf[reason]); name++)
		if (*name != '_')
			buf[reason][n++] =
			    (char)(*name >= 'a' && *name <= 'z' ? *name - 32 : *name);
	buf[reason][n] = '\0';
	ids[reason] = buf[reason];
	return ids[reason];
}

/* Reply frames out of g->mb, after the envelope, to the decode stage,
 * which sends them on the ROUTER it owns (stage_forward).  The inproc
 * socket has no high-water mark: this does not fail but without memory. */
static void send_reply(struct ingest *g, const uint8_t *rid, size_t rid_len, int delim)
{
	if (parts_send_routed(g->rep_tx, rid, rid_len, delim, &g->mb) == 0)
		return;
	atomic_fetch_add(&g->d->cnt.unroutable, 1);
	if (log_ratelimit(&rl_unroutable, LOG_BURST, &sup))
		log_msg(LOG_INFO, "SV-INGEST-UNROUTABLE", "cannot queue an ack (%s)%s",
		       zmq_strerror(zmq_errno()), log_suppressed(sup, sbuf, sizeof(sbuf)));
}

static struct pend_ack *ack_new(struct ingest *g, const uint8_t *rid, size_t rid_len, int delim)
{
	struct pend_ack *a;

	if (grow_array((void **)&g->acks, &g->ack_cap, g->ack_n + 1, sizeof(*g->acks)) < 0)
		return NULL;
	a = &g->acks[g->ack_n++];
	memset(a, 0, sizeof(*a));
	if (rid_len > sizeof(a->rid))
		rid_len = sizeof(a->rid);
	memcpy(a->rid, rid, rid_len);
	a->rid_len = rid_len;
	a->delim = delim;
	a->row0 = g->ack_rows_n;
	a->stage0 = g->stage_n;
	return a;
}

/* ITEM_PUT / ITEM_DEL of an id in the inline namespace: refused, answered
 * at once (a != NULL), nothing stored.  Returns whether it was. */
static int refuse_reserved(struct ingest *g, const struct sv_proto_request *rq, struct pend_ack *a,
                           const char *where)
{
	if (!sv_store_id_reserved(rq->item.id, rq->item.id_len))
		return 0;
	reject_count(g->d, SV_REJECT_RESERVED_ID);
	if (log_ratelimit(&rl_verb, LOG_BURST, &sup))
		log_msg(LOG_WARNING, "SV-INGEST-RESERVED",
		       "%s: %s of an id in the reserved inline namespace (~v...); refused%s", where,
		       sv_proto_verb_name(rq->hdr.verb), log_suppressed(sup, sbuf, sizeof(sbuf)));
	if (a != NULL) {
		reply_error(&g->mb, rq->hdr.verb, rq->hdr.request_id, SV_PROTO_STATUS_REFUSED, 0,
		            "ids starting with ~v are reserved for inline pair vectors");
		send_reply(g, a->rid, a->rid_len, a->delim);
		g->ack_n--;
	}
	return 1;
}

/* While the store is full: a request that would add data is answered
 * STORE_FULL at once (a != NULL), nothing stored.  Returns whether it was. */
static int refuse_full(struct ingest *g, const struct sv_proto_request *rq, struct pend_ack *a)
{
	char msg[256];

	if (!g->full || a == NULL)
		return 0;
	reject_count(g->d, SV_REJECT_STORE_FULL);
	if (g->full == SV_FULL_GONE)
		snprintf(msg, sizeof(msg),
		         "the store's data.mdb was removed or replaced while the daemon ran; nothing "
		         "stored; restart the daemon (it cannot tell what it would write into)");
	else if (g->full == SV_FULL_DISK)
		snprintf(msg, sizeof(msg),
		         "store full: its file system has less free space than store.min_free "
		         "(%llu bytes); nothing stored, retry after freeing disk space",
		         (unsigned long long)g->min_free);
	else
		snprintf(msg, sizeof(msg),
		         "store full: the map reached store.max_map_size; nothing stored, retry "
		         "after raising store.max_map_size or freeing room (retention, item delete)");
	reply_error(&g->mb, rq->hdr.verb, rq->hdr.request_id, SV_PROTO_STATUS_STORE_FULL, 0, msg);
	send_reply(g, a->rid, a->rid_len, a->delim);
	g->ack_n--;
	return 1;
}

/* CLIENT_STATE: the client's committed high-water mark and window, as JSON,
 * answered at once to routing id rid; an unknown (or expired) client is
 * "none", not an error.  (A read: answered while paused too.) */
void ingest_client_state(struct sv_daemon *d, const struct sv_proto_request *rq,
                         struct sv_proto_msgbuf *mb, char json[INGEST_STATE_JSON_MAX])
{
	struct sv_store_producer pr;
	sv_store_read *r = NULL;
	uint64_t window_s;
	uint32_t depth;
	int rc;

	pthread_mutex_lock(&d->live_mu); /* the values in force (a reload moves them) */
	window_s = d->live.dedup_window_ms / 1000;
	depth = d->live.dedup_depth;
	pthread_mutex_unlock(&d->live_mu);
	rc = sv_store_read_begin(d->store, &r);
	if (rc == 0)
		rc = sv_store_producer_get(r, rq->item.id, rq->item.id_len, &pr);
	sv_store_read_end(r);
	if (rc == 0)
		snprintf(json, INGEST_STATE_JSON_MAX,
		         "{\"state\":\"known\",\"hwm\":%llu,\"next_seq\":%llu,\"depth\":%u,"
		         "\"window_s\":%llu,\"last_unix_ns\":%llu}",
		         (unsigned long long)pr.hwm, (unsigned long long)pr.hwm + 1, pr.depth,
		         (unsigned long long)window_s, (unsigned long long)pr.last_ns);
	else if (rc == SV_ERR_NOTFOUND)
		snprintf(json, INGEST_STATE_JSON_MAX,
		         "{\"state\":\"none\",\"next_seq\":0,\"depth\":%u,\"window_s\":%llu}",
		         (unsigned)depth, (unsigned long long)window_s);
	if (rc == 0 || rc == SV_ERR_NOTFOUND)
		sv_proto_encode_reply_admin(mb, SV_PROTO_VERB_CLIENT_STATE, rq->hdr.request_id,
		                            SV_PROTO_STATUS_OK, NULL, json, strlen(json));
	else
		reply_error(mb, SV_PROTO_VERB_CLIENT_STATE, rq->hdr.request_id,
		            SV_PROTO_STATUS_INTERNAL, 0, sv_strerror(rc));
}

static void client_state(struct ingest *g, const struct sv_proto_request *rq, const uint8_t *rid,
                         size_t rid_len, int delim)
{
	char json[INGEST_STATE_JSON_MAX];

	ingest_client_state(g->d, rq, &g->mb, json);
	send_reply(g, rid, rid_len, delim);
}

enum feed_kind { FEED_SKIP, FEED_MSG, FEED_CUT };

/* The frames of a PULL message to ingest (*fr, *n), and what it is.  On a
 * cluster node the PULL socket is the stream feed: frame 0 is the stream
 * sequence, recorded for the group's commit; a message at or below the
 * store's mark was applied before (a consumer that delivered again) and is
 * skipped; a CUT ends the group. */
static enum feed_kind feed_frames(struct ingest *g, const struct parts *p)
{
	uint64_t pos[2]; /* stream sequence, source sequence */

	if (!g->feed)
		return FEED_MSG;
	if (p->n < 2 || p->fr[0].len != sizeof pos)
		return FEED_SKIP; /* cluster.c sends none such */
	if (p->n == 2 && p->fr[1].len == CLUSTER_CUT_LEN &&
	    memcmp(p->fr[1].data, CLUSTER_REWOUND, CLUSTER_CUT_LEN) == 0) {
		g->feed_gap = 0; /* the messages after the mark come next */
		return FEED_SKIP;
	}
	if (g->feed_gap)
		return FEED_SKIP; /* queued before the rewind: they come again */
	memcpy(pos, p->fr[0].data, sizeof pos);
	if (pos[0] <= g->js_mark || group_begin(g) < 0)
		return FEED_SKIP;
	if (pos[0] > g->js_seq)
		g->js_seq = pos[0];
	if (pos[1] > g->js_src)
		g->js_src = pos[1];
	if (p->n == 2 && p->fr[1].len == CLUSTER_CUT_LEN &&
	    memcmp(p->fr[1].data, CLUSTER_CUT, CLUSTER_CUT_LEN) == 0) {
		g->cut = 1;
		return FEED_CUT;
	}
	return FEED_MSG;
}

static int ingest_one(struct ingest *g, struct imsg *im, struct pend_ack *a, const char *where);
static void done_add(struct ingest *g, struct imsg *im);

/* A fire-and-forget message (PULL, or what a pause kept): ingested, and
 * held until the group commits when it went in (a CUT is held too, so a
 * group retried after a full store meets it again); else done with. */
static void pull_one(struct ingest *g, struct imsg *im, const char *where)
{
	enum feed_kind k = feed_frames(g, &im->p);

	if (k == FEED_CUT || (k == FEED_MSG && ingest_one(g, im, NULL, where)))
		g->held[g->held_n++] = im;
	else
		done_add(g, im);
}

/* What the decode stage left undecoded (IM_UNDECODED), decoded now. */
static void im_decode(struct ingest *g, struct imsg *im);

/* One ingest message, decoded by the stage.  acked: a reply is owed
 * (a != NULL).  Malformed messages change nothing and are answered at once.
 * Returns 1 when the message went into the group (a fire-and-forget one is
 * then held until the group commits), else 0. */
static int ingest_one(struct ingest *g, struct imsg *im, struct pend_ack *a, const char *where)
{
	const struct sv_proto_error *e = &im->err;
	struct sv_proto_error err;
	struct sv_proto_request rq;
	int rc;

	if (im->rc == IM_UNDECODED)
		im_decode(g, im);
	rq = im->rq;
	err = *e;
	rc = im->rc;
	if (rc < 0) {
		reject_count(g->d, (int)err.reason);
		atomic_fetch_add(&g->d->cnt.pairs[SV_PAIR_OUTCOME_REJECTED], 1);
		if (log_ratelimit(&rl_malformed, LOG_BURST, &sup))
			log_msg(LOG_WARNING, malformed_id((int)err.reason),
			       "%s: %s (%s); dropping message%s", where, err.msg,
			       sv_proto_reason_name((int)err.reason),
			       log_suppressed(sup, sbuf, sizeof(sbuf)));
		if (a != NULL) {
			a->status = SV_PROTO_STATUS_MALFORMED;
			a->verb = err.have_header ? err.header.verb : 0;
			a->req_id = err.have_header ? err.header.request_id : 0;
			reply_error(&g->mb, a->verb, a->req_id, SV_PROTO_STATUS_MALFORMED,
			            (int)err.reason, err.msg);
			send_reply(g, a->rid, a->rid_len, a->delim);
			g->ack_n--; /* answered */
		}
		return 0;
	}
	if (a != NULL) {
		a->verb = rq.hdr.verb;
		a->req_id = rq.hdr.request_id;
	}
	switch (rq.hdr.verb) {
	case SV_PROTO_VERB_PAIR:
	case SV_PROTO_VERB_PAIR_BATCH: {
		struct sv_proto_ack_row *rows;

		if (refuse_full(g, &rq, a))
			return 0;
		if (grow_array((void **)&g->ack_rows, &g->ack_rows_cap, g->ack_rows_n + rq.n,
		               sizeof(*g->ack_rows)) < 0) {
			g->group_failed = -ENOMEM;
			return 0;
		}
		rows = g->ack_rows + g->ack_rows_n;
		g->ack_rows_n += rq.n;
		if (a == NULL) {
			struct pend_ack tmp = {0};

			ingest_pairs(g, im, &tmp, rows);
			g->ack_rows_n -= rq.n;
		} else {
			a->nrows = rq.n;
			a->ack.n = (uint32_t)rq.n;
			a->ack.client_seq = rq.has_client ? rq.client.seq : 0;
			ingest_pairs(g, im, a, rows);
		}
		g->group_pairs += rq.n;
		break;
	}
	case SV_PROTO_VERB_ITEM_PUT: {
		long row;

		if (refuse_reserved(g, &rq, a, where) || refuse_full(g, &rq, a))
			return 0;
		row = pool_ref(g, im->vecs);
		if (row < 0) {
			g->group_failed = (int)row;
			return 0;
		}
		item_put(g, rq.item.id, rq.item.id_len, row, 0);
		if (a != NULL)
			a->status = SV_PROTO_STATUS_OK;
		break;
	}
	case SV_PROTO_VERB_ITEM_DEL:
		if (refuse_reserved(g, &rq, a, where) || group_begin(g) < 0)
			return 0;
		rc = sv_store_item_del(g->txn, rq.item.id, rq.item.id_len);
		if (rc == 0 || rc == SV_ERR_NOTFOUND) {
			pend_add(g, rq.item.id, rq.item.id_len, -1);
			if (rc == 0) {
				g->group_freed = 1;
				atomic_fetch_add(&g->d->cnt.items_del, 1);
				topk_cache_note_del(g->d->topk, rq.item.id, rq.item.id_len);
			}
		} else {
			g->group_failed = rc;
		}
		if (a != NULL)
			a->status = rc == 0 ? SV_PROTO_STATUS_OK : SV_PROTO_STATUS_NOT_FOUND;
		break;
	case SV_PROTO_VERB_CLIENT_STATE:
		if (a != NULL) { /* nobody to tell on the PULL socket */
			client_state(g, &rq, a->rid, a->rid_len, a->delim);
			g->ack_n--;
		}
		return 0;
	default:
		reject_count(g->d, SV_REJECT_REFUSED);
		if (log_ratelimit(&rl_verb, LOG_BURST, &sup))
			log_msg(LOG_WARNING, "SV-INGEST-VERB",
			       "%s: verb %s is not an ingest verb; refused%s", where,
			       sv_proto_verb_name(rq.hdr.verb) ? sv_proto_verb_name(rq.hdr.verb)
			                                       : "?",
			       log_suppressed(sup, sbuf, sizeof(sbuf)));
		if (a != NULL) {
			reply_error(&g->mb, rq.hdr.verb, rq.hdr.request_id, SV_PROTO_STATUS_REFUSED,
			            0, "not an ingest verb: send it to the query or admin socket");
			send_reply(g, a->rid, a->rid_len, a->delim);
			g->ack_n--;
		}
		return 0;
	}
	return 1;
}

static void group_reset(struct ingest *g)
{
	g->txn = NULL;
	g->group_failed = 0;
	g->pool_n = g->arena_n = 0;
	if (g->pend_n > 0)
		memset(g->pidx, 0, g->pidx_cap * sizeof(*g->pidx));
	g->pend_n = g->stage_n = g->ack_n = g->ack_rows_n = 0;
	g->group_msgs = g->group_pairs = 0;
	memset(g->group_pair_outcome, 0, sizeof(g->group_pair_outcome));
	g->group_freed = 0;
	g->js_seq = g->js_src = 0;
	g->cut = 0;
}

/* A full store, or a failed commit, makes the daemon not ready (GET
 * /readyz) until room is back, or a commit succeeds again. */
static void store_readiness(struct ingest *g, int rc)
{
	struct sv_daemon *d = g->d;
	int now = atomic_load(&d->prog.not_ready), want = now;

	if (now == SV_READY_OK || now == SV_READY_STORE_FULL || now == SV_READY_STORE_FAILED)
		want = g->full == SV_FULL_GONE ? SV_READY_STORE_FAILED
		       : g->full               ? SV_READY_STORE_FULL
		       : rc < 0                ? SV_READY_STORE_FAILED
		                               : SV_READY_OK;
	if (want != now)
		atomic_compare_exchange_strong(&d->prog.not_ready, &now, want);
}

static void set_full(struct ingest *g, int why)
{
	if (why == g->full)
		return;
	if (why == SV_FULL_MAP)
		log_msg(LOG_ERR, "SV-STORE-FULL",
		       "the store map reached store.max_map_size (%zu bytes); ingest refused until "
		       "retention, an item delete or a larger store.max_map_size frees room: acked "
		       "requests get STORE_FULL, fire-and-forget publishers wait at the high-water "
		       "mark, nothing is dropped",
		       g->max_map);
	else if (why == SV_FULL_GONE)
		log_msg(LOG_CRIT, "SV-STORE-GONE",
		       "%s/data.mdb was removed or replaced while the daemon ran; ingest refused, "
		       "not ready; restart the daemon", g->d->conf.store_path);
	else if (why == SV_FULL_DISK)
		log_msg(LOG_ERR, "SV-STORE-FULL",
		       "the store's file system has less free space than store.min_free (%llu "
		       "bytes); ingest refused until there is room: acked requests get STORE_FULL, "
		       "fire-and-forget publishers wait, nothing is dropped",
		       (unsigned long long)g->min_free);
	else
		log_msg(LOG_NOTICE, "SV-STORE-ROOM", "room in the store again; ingest resumed");
	g->full = why;
	atomic_store(&g->d->prog.store_full, why);
}

/* A probe of a full map that brought nothing to write: is there room now
 * (a raised store.max_map_size, or pages freed by retention or deletes)? */
static int map_has_room(struct ingest *g)
{
	struct sv_store_stat st;
	sv_store_read *r = NULL;
	int room = 0;

	if (sv_store_read_begin(g->d->store, &r) == 0 && sv_store_stat(r, &st) == 0)
		room = st.map_used + ((size_t)1 << 20) < g->max_map ||
		       st.free_pages * st.page_size >= ((size_t)1 << 20);
	sv_store_read_end(r);
	return room;
}

static int refusing(const struct ingest *g)
{
	return g->full && !g->probing;
}

/* Retention inside txn: at most max rows (store.retain_pairs counted back
 * from the last logged seq, store.retain_age back from now).  *n gets the
 * rows deleted. */
static int retain(struct ingest *g, sv_store_txn *txn, size_t max, size_t *n)
{
	uint64_t last = atomic_load(&g->d->prog.last_seq), keep_from = 0, before = 0;
	int rc;

	*n = 0;
	if (g->retain_pairs && last >= g->retain_pairs)
		keep_from = last - g->retain_pairs + 1;
	if (g->retain_age_ns)
		before = now_real_ns() - g->retain_age_ns;
	if (keep_from == 0 && before == 0)
		return 0;
	rc = sv_store_log_trim(txn, keep_from, before, max, n);
	if (rc == 0 && *n > 0)
		atomic_fetch_add(&g->d->cnt.pairs_trimmed, *n);
	return rc;
}

static void held_close(struct ingest *g)
{
	for (size_t i = 0; i < g->held_n; i++)
		done_add(g, g->held[i]);
	g->held_n = 0;
}

/* The file system's free space against store.min_free, and the store's
 * file still being the one opened, at most every DISK_NS. */
static void disk_check(struct ingest *g, uint64_t now)
{
	char path[SV_ENDPOINT_MAX + 16];
	struct statvfs vs;
	struct stat sb;

	if (now - g->disk_ns < DISK_NS || g->full == SV_FULL_GONE)
		return;
	g->disk_ns = now;
	snprintf(path, sizeof(path), "%s/data.mdb", g->d->conf.store_path);
	if (g->store_ino != 0 &&
	    (stat(path, &sb) < 0 || sb.st_ino != g->store_ino || sb.st_dev != g->store_dev)) {
		set_full(g, SV_FULL_GONE); /* for good: a restart decides */
		store_readiness(g, SV_ERR_STATE);
		return;
	}
	g->disk_low = g->min_free > 0 && statvfs(g->d->conf.store_path, &vs) == 0 &&
	              (uint64_t)vs.f_bavail * vs.f_frsize < g->min_free;
	if (g->disk_low && g->full == SV_FULL_NO)
		set_full(g, SV_FULL_DISK);
	else if (!g->disk_low && g->full == SV_FULL_DISK)
		set_full(g, SV_FULL_NO);
	else
		return;
	store_readiness(g, 0);
}

/* Idle upkeep, every HOUSE_NS: retention in groups of their own (a few
 * bounded ones per turn, so a lowered store.retain_pairs drains), and idle
 * clients' windows every EXPIRE_NS.  These groups only delete: they may
 * use the store's reserve, so they run on a full store too. */
static void housekeep(struct ingest *g, uint64_t now)
{
	size_t n = TRIM_MIN;
	int rc = 0;

	g->house_ns = now;
	for (int k = 0; k < 16 && n == TRIM_MIN && rc == 0; k++) {
		sv_store_txn *t;
		size_t x = 0;

		if (sv_store_txn_begin(g->d->store, &t) < 0)
			return;
		rc = retain(g, t, TRIM_MIN, &n);
		if (rc == 0 && k == 0 && now - g->expire_ns >= EXPIRE_NS) {
			g->expire_ns = now;
			rc = sv_store_dedup_expire(t, now_real_ns() - g->dedup_window_ns, EXPIRE_MAX, &x);
			if (rc == 0 && x > 0)
				atomic_fetch_add(&g->d->cnt.clients_expired, x);
		}
		if (rc == 0)
			rc = sv_store_txn_commit(t);
		else
			sv_store_txn_abort(t);
		if (rc == 0 && n > 0 && g->full == SV_FULL_MAP)
			g->kick = 1;
	}
	if (rc < 0 && log_ratelimit(&rl_full, LOG_BURST, &sup))
		log_msg(LOG_ERR, "SV-STORE-RETAIN", "retention or window expiry failed: %s%s",
		       sv_store_errmsg(g->d->store), log_suppressed(sup, sbuf, sizeof(sbuf)));
}

/* Commit the group, answer the acked messages, stage pairs into batches. */
static void group_finish(struct ingest *g)
{
	struct sv_daemon *d = g->d;
	int rc = g->group_failed, wrote = g->txn != NULL;

	if (g->txn != NULL) {
		size_t n = 0, max = 2 * g->group_pairs > TRIM_MIN ? 2 * g->group_pairs : TRIM_MIN;

		if (rc == 0)
			rc = retain(g, g->txn, max, &n);
		if (rc == 0 && g->js_seq > g->js_mark)
			rc = sv_store_mark_put(g->txn, g->mark, g->js_seq);
		if (rc == 0 && g->js_src > 0)
			rc = sv_store_mark_put(g->txn, CLUSTER_MARK_SRC, g->js_src);
		if (rc == 0)
			rc = sv_store_txn_commit(g->txn);
		else
			sv_store_txn_abort(g->txn);
		g->txn = NULL;
		if (rc == 0)
			atomic_fetch_add(&d->cnt.commits, 1);
		if (n > 0)
			g->group_freed = 1;
	}
	topk_cache_commit(d->topk, rc == 0); /* before any ack: visible to the next query */
	if (rc == 0 && g->js_seq > g->js_mark) {
		g->js_mark = g->js_seq;
		cluster_note_commit(atomic_load(&d->cluster), g->js_mark, g->js_src);
	} else if (rc < 0) {
		g->cut = 0; /* met again when the group is retried, or fed again */
		if (g->feed && rc != SV_ERR_STORE_FULL && g->js_seq > g->js_mark) {
			g->feed_gap = 1;
			cluster_note_failed(atomic_load(&d->cluster));
		}
	}
	/* the held fire-and-forget messages: stored, or kept for a retry */
	if (g->held_in_group && rc == SV_ERR_STORE_FULL && g->held_n > 0) {
		g->stalled = 1;
	} else if (g->held_in_group) {
		held_close(g);
		g->stalled = 0;
	}
	if (rc == SV_ERR_STORE_FULL)
		set_full(g, SV_FULL_MAP);
	else if (rc == 0 && g->full == SV_FULL_MAP && !g->stalled && g->held_in_group &&
	         (wrote || map_has_room(g)))
		set_full(g, g->disk_low ? SV_FULL_DISK : SV_FULL_NO);
	if (rc == 0 && g->group_freed && g->full == SV_FULL_MAP)
		g->kick = 1;
	store_readiness(g, rc);
	if (rc == SV_ERR_STORE_FULL) {
		uint64_t kept = g->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED];

		atomic_fetch_add(&d->cnt.store_full_groups, 1);
		if (log_ratelimit(&rl_full, LOG_BURST, &sup))
			log_msg(LOG_WARNING, "SV-STORE-COMMIT",
			       "group of %llu messages (%llu pairs) does not fit: %s; acked clients "
			       "get STORE_FULL, %zu fire-and-forget messages are held for a retry%s",
			       (unsigned long long)g->group_msgs, (unsigned long long)kept,
			       sv_store_errmsg(d->store), g->held_n,
			       log_suppressed(sup, sbuf, sizeof(sbuf)));
		g->stage_n = 0;
		g->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED] = 0;
		g->group_pair_outcome[SV_PAIR_OUTCOME_DUPLICATE] = 0;
	} else if (rc < 0) {
		uint64_t lost = g->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED];

		reject_count(d, SV_REJECT_STORE);
		atomic_fetch_add(&d->cnt.pairs[SV_PAIR_OUTCOME_FAILED], lost);
		if (log_ratelimit(&rl_commit, LOG_BURST, &sup))
			log_msg(LOG_ERR, "SV-STORE-COMMIT",
			       "group of %llu messages (%llu pairs) not stored: %s%s; acked clients "
			       "get INTERNAL, fire-and-forget pairs are lost%s",
			       (unsigned long long)g->group_msgs, (unsigned long long)lost,
			       d->store ? sv_store_errmsg(d->store) : sv_strerror(rc),
			       rc == -EIO || rc == -ENOSPC || rc == -EDQUOT
			           ? " (the disk full? store.min_free refuses ingest before that)"
			           : "",
			       log_suppressed(sup, sbuf, sizeof(sbuf)));
		g->stage_n = 0;
		g->group_pair_outcome[SV_PAIR_OUTCOME_LOGGED] = 0;
		g->group_pair_outcome[SV_PAIR_OUTCOME_DUPLICATE] = 0;
	}
	for (int o = 0; o < SV_PAIR_OUTCOME_COUNT; o++)
		if (g->group_pair_outcome[o])
			atomic_fetch_add(&d->cnt.pairs[o], g->group_pair_outcome[o]);
	for (size_t i = 0; i < g->ack_n; i++) {
		struct pend_ack *a = &g->acks[i];

		if (rc == SV_ERR_STORE_FULL) {
			reply_error(&g->mb, a->verb, a->req_id, SV_PROTO_STATUS_STORE_FULL, 0,
			            "store full: the map reached store.max_map_size; nothing of this "
			            "message was stored, retry after raising store.max_map_size or "
			            "freeing room (retention, item delete)");
		} else if (rc < 0) {
			reply_error(&g->mb, a->verb, a->req_id, SV_PROTO_STATUS_INTERNAL, 0,
			            "store commit failed; nothing of this message was stored");
		} else if (a->verb == SV_PROTO_VERB_PAIR || a->verb == SV_PROTO_VERB_PAIR_BATCH) {
			int st = SV_PROTO_STATUS_OK;

			if (a->ack.n_rejected)
				st = SV_PROTO_STATUS_PARTIAL;
			if (a->ack.n_duplicate == a->ack.n && a->ack.n > 0)
				reply_error(
				    &g->mb, a->verb, a->req_id, SV_PROTO_STATUS_DUPLICATE, 0,
				    "already committed: every (client id, seq + row) was logged before");
			else if (sv_proto_encode_reply_ack(&g->mb, a->verb, a->req_id, st, NULL,
			                                   &a->ack, g->ack_rows + a->row0) < 0)
				reply_error(&g->mb, a->verb, a->req_id, SV_PROTO_STATUS_INTERNAL, 0,
				            "cannot encode the ack");
		} else {
			reply_error(&g->mb, a->verb, a->req_id, a->status, 0,
			            a->status == SV_PROTO_STATUS_NOT_FOUND ? "no such item" : NULL);
		}
		send_reply(g, a->rid, a->rid_len, a->delim);
	}
}

/* The staged pairs of a committed group as vectors (pool rows stay put
 * until the next group_reset; out grew with stage, so this cannot fail). */
static size_t hand_back(struct ingest *g)
{
	for (size_t i = 0; i < g->stage_n; i++) {
		const struct stage_pair *s = &g->stage[i];

		g->out[i] = (struct ingest_pair){
		    .xa = row_ptr(g, s->row_a),
		    .xb = row_ptr(g, s->row_b),
		    .key_a = s->key_a,
		    .key_b = s->key_b,
		    .seq = s->seq,
		    .label = s->label,
		};
	}
	return g->stage_n;
}

/* A message with more parts than any request has: counted and logged; an
 * acked one is answered MALFORMED. */
static void too_many_parts(struct ingest *g, const struct imsg *im, const char *where)
{
	reject_count(g->d, SV_REJECT_TOOMANY_PARTS);
	if (log_ratelimit(&rl_frames, LOG_BURST, &sup))
		log_msg(LOG_WARNING, "SV-INGEST-FRAMES",
		       "%s: message with more than %d frames; dropping message%s", where, PARTS_MAX,
		       log_suppressed(sup, sbuf, sizeof(sbuf)));
	if (im->acked) {
		reply_error(&g->mb, 0, 0, SV_PROTO_STATUS_MALFORMED, SV_PROTO_REASON_FRAME_COUNT,
		            "too many frames");
		send_reply(g, im->rid, im->rid_len, im->delim);
	}
}

/* The oldest message a pause kept; NULL when none. */
static struct imsg *pq_take(struct ingest *g)
{
	struct imsg *im;

	if (g->pq_head == g->pq_n)
		return NULL;
	im = g->pq[g->pq_head++];
	g->pq_bytes -= im->bytes;
	if (g->pq_head == g->pq_n)
		g->pq_head = g->pq_n = 0;
	return im;
}

int ingest_hold_room(const struct ingest *g)
{
	return g->pq_bytes < g->pq_max;
}

static struct imsg *pop(struct ingest *g, int q);
static void unpop(struct ingest *g, int q, struct imsg *im);
static void im_release(struct ingest *g, struct imsg *im);

void ingest_hold_paused(struct ingest *g)
{
	struct imsg *im;

	while (g->pq_bytes < g->pq_max && (im = pop(g, Q_PULL)) != NULL) {
		if (im->over) {
			too_many_parts(g, im, "ingest");
		} else if (im->bytes > g->lim.max_msg_bytes) {
			reject_count(g->d, SV_PROTO_REASON_OVERSIZE);
			atomic_fetch_add(&g->d->cnt.pairs[SV_PAIR_OUTCOME_REJECTED], 1);
			if (log_ratelimit(&rl_malformed, LOG_BURST, &sup))
				log_msg(LOG_WARNING, malformed_id(SV_PROTO_REASON_OVERSIZE),
				       "ingest: message of %zu bytes, over limits.max_msg_bytes %zu "
				       "(oversize); dropping message%s",
				       im->bytes, g->lim.max_msg_bytes, log_suppressed(sup, sbuf, sizeof(sbuf)));
		} else if (grow_array((void **)&g->pq, &g->pq_cap, g->pq_n + 1,
		                      sizeof(*g->pq)) == 0) {
			g->pq_bytes += im->bytes;
			g->pq[g->pq_n++] = im;
			continue;
		} else {
			unpop(g, Q_PULL, im); /* no memory: it waits in the queue */
			break;
		}
		im_release(g, im);
	}
}

int ingest_due(const struct ingest *g)
{
	uint64_t now = now_mono_ns();

	return now - g->house_ns >= HOUSE_NS ||
	       (g->full == SV_FULL_MAP && (g->kick || now - g->retry_ns >= RETRY_NS));
}

int ingest_pull_open(const struct ingest *g)
{
	return !g->full;
}

/* A stalled group again, from its held messages alone. */
static size_t retry_stalled(struct ingest *g)
{
	size_t n = g->held_n;

	group_reset(g);
	g->held_in_group = 1;
	for (size_t i = 0; i < n; i++) {
		g->group_msgs++;
		if (feed_frames(g, &g->held[i]->p) == FEED_MSG)
			ingest_one(g, g->held[i], NULL, "ingest");
	}
	group_finish(g);
	return n;
}

static void done_release(struct ingest *g);

size_t ingest_group(struct ingest *g, const struct ingest_pair **pairs, size_t *npairs)
{
	struct imsg *im;
	size_t got = 0, limit = g->d->conf.group_max;
	uint64_t now = now_mono_ns();
	int idle[2] = {0, 0};

	done_release(g); /* the last group's pairs were taken */
	*pairs = g->out;
	*npairs = 0;
	disk_check(g, now);
	if (now - g->house_ns >= HOUSE_NS)
		housekeep(g, now);
	if (g->full == SV_FULL_MAP && (g->kick || now - g->retry_ns >= RETRY_NS)) {
		g->kick = 0;
		g->retry_ns = now;
		g->probing = 1;
		if (g->stalled) {
			got = retry_stalled(g);
			g->probing = 0;
			*npairs = hand_back(g);
			*pairs = g->out; /* out may have grown */
			return got;
		}
	}
	if (g->held == NULL && (g->held = calloc(limit, sizeof(*g->held))) == NULL)
		return 0;
	group_reset(g);
	g->held_in_group = !g->stalled;
	idle[0] = refusing(g); /* a full store: the PULL socket stays unread */
	while (got < limit && g->group_pairs < limit && !(idle[0] && idle[1]) &&
	       g->group_failed == 0 && !g->cut) {
		/* fire and forget (what a pause kept first): held until the group commits */
		if (!idle[0] && ((im = pq_take(g)) != NULL || (im = pop(g, Q_PULL)) != NULL)) {
			if (im->over) {
				too_many_parts(g, im, "ingest");
				done_add(g, im);
			} else {
				pull_one(g, im, "ingest");
			}
			got++;
			g->group_msgs++;
		} else {
			idle[0] = 1;
		}
		/* acked: answered through the stage, which owns the ROUTER */
		if (!idle[1] && (im = pop(g, Q_ACKED)) != NULL) {
			struct pend_ack *a;

			if (im->over) {
				too_many_parts(g, im, "ingest-ack");
			} else if ((a = ack_new(g, im->rid, im->rid_len, im->delim)) == NULL) {
				g->group_failed = -ENOMEM;
			} else {
				ingest_one(g, im, a, "ingest-ack");
			}
			done_add(g, im);
			got++;
			g->group_msgs++;
		} else {
			idle[1] = 1;
		}
	}
	group_finish(g);
	g->probing = 0;
	*npairs = hand_back(g);
	*pairs = g->out;
	return got;
}

int ingest_cut_taken(struct ingest *g)
{
	int cut = g->cut;

	g->cut = 0;
	return cut;
}

void ingest_refuse_paused(struct ingest *g)
{
	struct imsg *im;

	while ((im = pop(g, Q_ACKED)) != NULL) {
		const struct sv_proto_request *rq = &im->rq;
		const struct sv_proto_error *err = &im->err;

		if (im->over) {
			too_many_parts(g, im, "ingest-ack");
			im_release(g, im);
			continue;
		}
		if (im->rc == IM_UNDECODED)
			im_decode(g, im);
		if (im->rc < 0) {
			reject_count(g->d, (int)err->reason);
			reply_error(&g->mb, err->have_header ? err->header.verb : 0,
			            err->have_header ? err->header.request_id : 0,
			            SV_PROTO_STATUS_MALFORMED, (int)err->reason, err->msg);
		} else if (rq->hdr.verb == SV_PROTO_VERB_CLIENT_STATE) {
			client_state(g, rq, im->rid, im->rid_len, im->delim);
			im_release(g, im);
			continue;
		} else {
			reply_error(
			    &g->mb, rq->hdr.verb, rq->hdr.request_id, SV_PROTO_STATUS_PAUSED, 0,
			    "training is paused (admin PAUSE); nothing stored, retry after RESUME");
		}
		send_reply(g, im->rid, im->rid_len, im->delim);
		im_release(g, im);
	}
}


/* ---- the pipeline: the decode stage and its queues ----------------------
 *
 * The stage thread owns the PULL and the ROUTER: it reads each message
 * whole, decodes and checks it (sv_proto_decode_request: frame sizes,
 * dims, every float finite), copies the vectors of a PAIR, PAIR_BATCH or
 * ITEM_PUT out of the frames and hashes each inline side's content id, and
 * queues it, in the order read, on its socket's queue.  It sends every
 * reply on the ROUTER: the writer hands them over an inproc PAIR socket,
 * in the order it makes them, already framed for the ROUTER.  Verdicts on
 * a message (malformed, refused, counted, logged) stay the writer's, in
 * order, exactly as if it had decoded the message itself. */

static void q_push(struct pipe_q *q, struct imsg *im)
{
	uint64_t one = 1;

	im->next = NULL;
	if (q->tail != NULL)
		q->tail->next = im;
	else
		q->head = im;
	q->tail = im;
	q->pairs += im->cost_pairs;
	q->bytes += im->cost_bytes;
	if (q->n++ == 0 && write(q->efd, &one, sizeof(one)) < 0)
		(void)0; /* an eventfd write fails only on overflow */
}

static int q_room(const struct ingest *g, const struct pipe_q *q)
{
	return q->n == 0 || (q->pairs < g->d->conf.group_max && q->bytes < PIPE_BYTES);
}

static void q_took(struct ingest *g, struct pipe_q *q, struct imsg *im)
{
	uint64_t v;

	q->pairs -= im->cost_pairs;
	q->bytes -= im->cost_bytes;
	if (--q->n == 0 && read(q->efd, &v, sizeof(v)) < 0)
		(void)0; /* it was readable: n was 1 */
	if (q->blocked && q_room(g, q)) {
		v = 1;
		q->blocked = 0;
		if (write(g->room_efd, &v, sizeof(v)) < 0)
			(void)0;
	}
}

/* The writer: the oldest message of queue q, or NULL. */
static struct imsg *pop(struct ingest *g, int q)
{
	struct pipe_q *pq = &g->q[q];
	struct imsg *im;

	pthread_mutex_lock(&g->pmu);
	im = pq->head;
	if (im != NULL) {
		pq->head = im->next;
		if (pq->head == NULL)
			pq->tail = NULL;
		q_took(g, pq, im);
	}
	pthread_mutex_unlock(&g->pmu);
	return im;
}

/* The writer: im back at the head of queue q. */
static void unpop(struct ingest *g, int q, struct imsg *im)
{
	struct pipe_q *pq = &g->q[q];
	uint64_t one = 1;

	pthread_mutex_lock(&g->pmu);
	im->next = pq->head;
	pq->head = im;
	if (pq->tail == NULL)
		pq->tail = im;
	pq->pairs += im->cost_pairs;
	pq->bytes += im->cost_bytes;
	if (pq->n++ == 0 && write(pq->efd, &one, sizeof(one)) < 0)
		(void)0;
	pthread_mutex_unlock(&g->pmu);
}

static void im_free(struct imsg *im)
{
	parts_close(&im->p);
	free(im->vecs);
	free(im->inl);
	free(im);
}

/* A spent message back to the free list (its frames closed). */
static void im_release(struct ingest *g, struct imsg *im)
{
	parts_close(&im->p);
	pthread_mutex_lock(&g->pmu);
	if (g->free_n < FREE_MAX) {
		im->next = g->free_im;
		g->free_im = im;
		g->free_n++;
		im = NULL;
	}
	pthread_mutex_unlock(&g->pmu);
	if (im != NULL)
		im_free(im);
}

/* The writer: im is spent once the pairs of the group in hand are taken. */
static void done_add(struct ingest *g, struct imsg *im)
{
	im->next = g->done;
	g->done = im;
}

static void done_release(struct ingest *g)
{
	while (g->done != NULL) {
		struct imsg *im = g->done;

		g->done = im->next;
		im_release(g, im);
	}
}

/* Room for rows vectors and ids in im; 0 or -ENOMEM. */
static int im_room(struct ingest *g, struct imsg *im, size_t rows)
{
	if (rows > im->vecs_cap) {
		float *v = realloc(im->vecs, rows * g->d->conf.d_in * sizeof(float));

		if (v == NULL)
			return -ENOMEM;
		im->vecs = v;
		im->vecs_cap = rows;
	}
	if (rows > im->inl_cap) {
		void *q = realloc(im->inl, rows * sizeof(*im->inl));

		if (q == NULL)
			return -ENOMEM;
		im->inl = q;
		im->inl_cap = rows;
	}
	return 0;
}

/* The vectors of a decoded message copied out of its frames (aligned, as
 * the store and the batch take them), and each inline side's content id.
 * Without memory the message goes to the writer undecoded. */
static void im_vectors(struct ingest *g, struct imsg *im)
{
	uint32_t d = g->d->conf.d_in;
	const struct sv_proto_request *rq = &im->rq;

	if (rq->hdr.verb == SV_PROTO_VERB_ITEM_PUT) {
		if (im_room(g, im, 1) < 0) {
			im->rc = IM_UNDECODED;
			return;
		}
		sv_proto_vec_copy(im->vecs, rq->item.vec, d);
		im->cost_bytes += (size_t)d * sizeof(float);
	} else if (rq->hdr.verb == SV_PROTO_VERB_PAIR || rq->hdr.verb == SV_PROTO_VERB_PAIR_BATCH) {
		struct sv_proto_iter it = {0};
		struct sv_proto_pair pr;
		size_t i = 0;
		int any = 0;

		im->cost_pairs = rq->n ? rq->n : 1;
		for (i = 0; !any && i < rq->n && sv_proto_next_pair(rq, &it, &pr); i++)
			any = pr.a.vec != NULL || pr.b.vec != NULL;
		if (!any)
			return; /* ids only: nothing to copy */
		if (im_room(g, im, 2 * rq->n) < 0) {
			im->rc = IM_UNDECODED;
			return;
		}
		memset(&it, 0, sizeof(it));
		i = 0;
		while (i < rq->n && sv_proto_next_pair(rq, &it, &pr)) {
			const struct sv_proto_side *sd[2] = {&pr.a, &pr.b};

			for (int s = 0; s < 2; s++) {
				float *x = im->vecs + (2 * i + s) * d;

				if (sd[s]->vec == NULL)
					continue;
				sv_proto_vec_copy(x, sd[s]->vec, d);
				if (sd[s]->id == NULL)
					sv_store_inline_id(x, d, im->inl[2 * i + s]);
				im->cost_bytes += (size_t)d * sizeof(float);
			}
			i++;
		}
	}
}

static void im_decode(struct ingest *g, struct imsg *im)
{
	int off = im->acked ? parts_envelope(&im->p) : g->feed;

	memset(&im->err, 0, sizeof(im->err));
	im->rc = sv_proto_decode_request(im->p.fr + off, (size_t)(im->p.n - off), &g->lim, &im->rq,
	                                 &im->err);
	if (im->rc == 0)
		im_vectors(g, im);
	if (im->rc == IM_UNDECODED) { /* no memory for the vectors */
		im->rc = -ENOMEM;
		snprintf(im->err.msg, sizeof(im->err.msg), "no memory for the message's vectors");
	}
}

/* The stage: what the writer needs of the message just read into im. */
static void stage_prepare(struct ingest *g, struct imsg *im, int acked,
                          const struct sv_proto_limits *lim)
{
	struct parts *p = &im->p;
	int off = 0;

	im->bytes = p->bytes;
	im->cost_bytes = p->bytes;
	im->cost_pairs = 1;
	im->over = p->over;
	im->acked = acked;
	im->rc = IM_UNDECODED;
	if (acked) {
		im->delim = parts_envelope(p) == 2;
		im->rid_len = p->fr[0].len < sizeof(im->rid) ? p->fr[0].len : sizeof(im->rid);
		memcpy(im->rid, p->fr[0].data, im->rid_len);
		off = parts_envelope(p);
	} else if (g->feed) {
		/* the feed's frame 0 and its CUT and REWOUND are the writer's */
		if (p->n < 2 || p->fr[0].len != 2 * sizeof(uint64_t) ||
		    (p->n == 2 && p->fr[1].len == CLUSTER_CUT_LEN))
			return;
		off = 1;
	}
	if (p->over) {
		parts_close(p);
		return;
	}
	memset(&im->err, 0, sizeof(im->err));
	im->rc = sv_proto_decode_request(p->fr + off, (size_t)(p->n - off), lim, &im->rq, &im->err);
	if (im->rc == 0)
		im_vectors(g, im);
	else if (im->rc < 0 && !g->feed)
		parts_close(p); /* the verdict is all the writer needs */
	if (im->rc != 0)
		im->cost_bytes = im->p.n ? p->bytes : 0;
}

/* The stage: read one message from queue q's socket and queue it.  1 when
 * one was queued, 0 when none waits, -1 when the socket failed (ETERM). */
static int stage_read(struct ingest *g, int q)
{
	struct imsg *im;
	int rc;

	pthread_mutex_lock(&g->pmu);
	im = g->free_im;
	if (im != NULL) {
		g->free_im = im->next;
		g->free_n--;
	}
	pthread_mutex_unlock(&g->pmu);
	if (im == NULL && (im = calloc(1, sizeof(*im))) == NULL)
		return 0; /* without memory the message stays in ZeroMQ's queue */
	rc = parts_recv(q == Q_ACKED ? g->router : g->pull, &im->p, ZMQ_DONTWAIT);
	if (rc <= 0) {
		im_release(g, im);
		return rc < 0 ? -1 : 0;
	}
	live_limits(g->d, &g->stage_gen, &g->stage_lim); /* a reload applies to the next message */
	stage_prepare(g, im, q == Q_ACKED, &g->stage_lim);
	pthread_mutex_lock(&g->pmu);
	q_push(&g->q[q], im);
	pthread_mutex_unlock(&g->pmu);
	return 1;
}

/* Client-caused log lines of the stage's own (its thread only). */
static struct sv_ratelimit rl_stage_unroutable;
static char stage_sbuf[64];
static unsigned long long stage_sup;

/* The stage: send the writer's replies on the ROUTER.  Returns 1 when the
 * writer said stop (an empty one-part message), -1 when the socket failed,
 * else 0. */
static int stage_forward(struct ingest *g)
{
	struct parts p;
	int n;

	while ((n = parts_recv(g->rep_rx, &p, ZMQ_DONTWAIT)) > 0) {
		int i;

		if (n == 1 && p.fr[0].len == 0) {
			parts_close(&p);
			return 1;
		}
		for (i = 0; i < n; i++)
			if (zmq_msg_send(&p.m[i], g->router,
			                 (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
				break;
		if (i < n) {
			atomic_fetch_add(&g->d->cnt.unroutable, 1);
			if (log_ratelimit(&rl_stage_unroutable, LOG_BURST, &stage_sup))
				log_msg(LOG_INFO, "SV-INGEST-UNROUTABLE",
				       "cannot send an ack (%s); client gone?%s", zmq_strerror(zmq_errno()),
				       log_suppressed(stage_sup, stage_sbuf, sizeof(stage_sbuf)));
		}
		parts_close(&p);
	}
	return n < 0 ? -1 : 0;
}

static void *stage_main(void *arg)
{
	struct ingest *g = arg;

	pthread_setname_np(pthread_self(), "sv-ingest-dec");
	for (;;) {
		zmq_pollitem_t it[4] = {{g->rep_rx, 0, ZMQ_POLLIN, 0}, {NULL, g->room_efd, ZMQ_POLLIN, 0}};
		int room[2], n = 2, rc = 0;

		pthread_mutex_lock(&g->pmu);
		for (int q = 0; q < 2; q++) {
			room[q] = q_room(g, &g->q[q]);
			g->q[q].blocked = !room[q];
		}
		pthread_mutex_unlock(&g->pmu);
		if (room[Q_ACKED])
			it[n++] = (zmq_pollitem_t){g->router, 0, ZMQ_POLLIN, 0};
		if (room[Q_PULL])
			it[n++] = (zmq_pollitem_t){g->pull, 0, ZMQ_POLLIN, 0};
		if (zmq_poll(it, n, -1) < 0) {
			if (zmq_errno() == ETERM)
				break;
			continue;
		}
		if (it[1].revents & ZMQ_POLLIN) {
			uint64_t v;

			if (read(g->room_efd, &v, sizeof(v)) < 0)
				(void)0;
		}
		rc = stage_forward(g);
		if (rc != 0)
			break;
		/* a burst from both sockets, in turn, while their queues have room;
		 * the writer's replies go out between messages (an ack waits for
		 * one message's decode at most) */
		for (int k = 0; k < PIPE_BURST && rc >= 0; k++) {
			int got = 0;

			for (int q = 0; q < 2 && rc >= 0; q++) {
				pthread_mutex_lock(&g->pmu);
				room[q] = q_room(g, &g->q[q]);
				pthread_mutex_unlock(&g->pmu);
				if (room[q] && (rc = stage_read(g, q)) > 0)
					got = 1;
				if (rc >= 0 && (rc = stage_forward(g)) != 0)
					rc = -1;
			}
			if (!got)
				break;
		}
		if (rc < 0)
			break;
	}
	return NULL;
}

int ingest_start(struct ingest *g)
{
	if (pthread_create(&g->dec_th, NULL, stage_main, g) != 0)
		return -EAGAIN;
	g->dec_started = 1;
	return 0;
}

void ingest_stop(struct ingest *g)
{
	if (g == NULL || !g->dec_started)
		return;
	zmq_send(g->rep_tx, "", 0, 0); /* after the writer's last reply */
	pthread_join(g->dec_th, NULL);
	g->dec_started = 0;
}

int ingest_new(struct ingest **out, struct sv_daemon *d)
{
	struct ingest *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return -ENOMEM;
	g->d = d;
	g->lim = d->conf.live.lim;
	g->retain_pairs = d->conf.live.retain_pairs;
	g->retain_age_ns = d->conf.live.retain_age_ms * 1000000ULL;
	g->min_free = d->conf.live.min_free;
	g->max_map = d->conf.live.max_map_size;
	g->dedup_depth = d->conf.live.dedup_depth;
	g->dedup_window_ns = d->conf.live.dedup_window_ms * 1000000ULL;
	g->pq_max = (size_t)d->conf.cfg.limits_max_paused_bytes;
	g->stage_lim = g->lim;
	g->stage_gen = UINT_MAX;
	g->room_efd = g->q[0].efd = g->q[1].efd = -1;
	pthread_mutex_init(&g->pmu, NULL);
	for (int q = 0; q < 2; q++)
		if ((g->q[q].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			goto fail;
	if ((g->room_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto fail;
	{
		char path[SV_ENDPOINT_MAX + 16];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/data.mdb", d->conf.store_path);
		if (stat(path, &sb) == 0) {
			g->store_dev = sb.st_dev;
			g->store_ino = sb.st_ino;
		}
	}
	if (d->conf.cfg.cluster_role != SV_CONFIG_ROLE_OFF) {
		sv_store_read *r = NULL;

		g->feed = 1;
		g->mark = d->conf.cfg.cluster_role == SV_CONFIG_ROLE_REPLICA ? CLUSTER_MARK_ITEMS
		                                                              : CLUSTER_MARK;
		if (sv_store_read_begin(d->store, &r) == 0 &&
		    sv_store_mark_get(r, g->mark, &g->js_mark) < 0)
			g->js_mark = 0;
		sv_store_read_end(r);
	}
	sv_proto_msgbuf_init(&g->mb);
	*out = g;
	return 0;
fail:
	ingest_free(g);
	return -ENOMEM;
}


int ingest_bind(struct ingest *g)
{
	struct sv_daemon *d = g->d;
	int hwm = d->conf.ingest_hwm, one = 1, rc;

	g->pull = parts_socket(d->zctx, ZMQ_PULL);
	g->router = parts_socket(d->zctx, ZMQ_ROUTER);
	g->rep_rx = parts_socket(d->zctx, ZMQ_PAIR);
	g->rep_tx = parts_socket(d->zctx, ZMQ_PAIR);
	if (g->pull == NULL || g->router == NULL || g->rep_rx == NULL || g->rep_tx == NULL)
		return -zmq_errno();
	{
		int zero = 0; /* the writer never waits to hand a reply over */
		char ep[64];

		zmq_setsockopt(g->rep_tx, ZMQ_SNDHWM, &zero, sizeof(zero));
		zmq_setsockopt(g->rep_rx, ZMQ_RCVHWM, &zero, sizeof(zero));
		snprintf(ep, sizeof(ep), "inproc://sv-ingest-replies-%p", (void *)g);
		if (zmq_bind(g->rep_rx, ep) < 0 || zmq_connect(g->rep_tx, ep) < 0)
			return -zmq_errno();
	}
	zmq_setsockopt(g->pull, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(g->router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(g->router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(g->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	if (g->feed) { /* the endpoints are the cluster gateway's; the stream comes here */
		if (zmq_bind(g->pull, CLUSTER_FEED_ENDPOINT) < 0 ||
		    zmq_bind(g->router, CLUSTER_FEED_ENDPOINT "-idle") < 0)
			return -zmq_errno();
		return 0;
	}
	rc = curve_bind(g->pull, d->conf.ep_ingest, "ingest (PULL)");
	if (rc == 0)
		rc = curve_bind(g->router, d->conf.ep_ingest_ack, "ingest-ack (ROUTER)");
	return rc;
}

void ingest_set_live(struct ingest *g, const struct sv_live *lv)
{
	g->lim = lv->lim; /* the writer's (hold_paused); the stage reads its own */
	g->retain_pairs = lv->retain_pairs;
	g->retain_age_ns = lv->retain_age_ms * 1000000ULL;
	g->min_free = lv->min_free;
	g->max_map = lv->max_map_size;
	g->dedup_depth = lv->dedup_depth;
	g->dedup_window_ns = lv->dedup_window_ms * 1000000ULL;
	sv_store_set_max_map_size(g->d->store, lv->max_map_size);
	sv_store_set_dedup_depth(g->d->store, lv->dedup_depth);
	g->disk_ns = 0; /* look again now */
	g->kick = 1;
}

void ingest_pollitems(struct ingest *g, zmq_pollitem_t it[2])
{
	it[0] = (zmq_pollitem_t){NULL, g->q[Q_ACKED].efd, ZMQ_POLLIN, 0};
	it[1] = (zmq_pollitem_t){NULL, g->q[Q_PULL].efd, ZMQ_POLLIN, 0};
}

void ingest_free(struct ingest *g)
{
	int zero = 0;

	if (g == NULL)
		return;
	ingest_stop(g);
	{
		void *socks[] = {g->pull, g->router, g->rep_rx, g->rep_tx};

		for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
			if (socks[i] != NULL)
				zmq_setsockopt(socks[i], ZMQ_LINGER, &zero, sizeof(zero));
			zmq_close(socks[i]);
		}
	}
	sv_store_txn_abort(g->txn);
	if (g->held != NULL)
		held_close(g);
	for (size_t i = g->pq_head; i < g->pq_n; i++)
		done_add(g, g->pq[i]);
	for (int q = 0; q < 2; q++) {
		struct imsg *im;

		while ((im = pop(g, q)) != NULL)
			done_add(g, im);
		if (g->q[q].efd >= 0)
			close(g->q[q].efd);
	}
	while (g->done != NULL) {
		struct imsg *im = g->done;

		g->done = im->next;
		im_free(im);
	}
	while (g->free_im != NULL) {
		struct imsg *im = g->free_im;

		g->free_im = im->next;
		im_free(im);
	}
	if (g->room_efd >= 0)
		close(g->room_efd);
	pthread_mutex_destroy(&g->pmu);
	sv_proto_msgbuf_free(&g->mb);
	for (size_t i = 0; i < g->arena_blocks; i++)
		free(g->arena[i]);
	{
		void *bufs[] = {g->rows, g->arena, g->pend, g->pidx, g->stage, g->out,
		                g->acks, g->ack_rows, g->held, g->pq, g};

		for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
			free(bufs[i]);
	}
}
