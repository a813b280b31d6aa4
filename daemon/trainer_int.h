/* trainer_int.h - what trainer.c (model, recovery, checkpoints, control,
 * the thread) and ingest.c (messages, validation, group commit, acks) share.
 * Private to those two files: everything here runs on the trainer thread.
 */
#ifndef SV_DAEMON_TRAINER_INT_H
#define SV_DAEMON_TRAINER_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "daemon.h"
#include "sv/batch.h"
#include "sv/proto.h"
#include "sv/store.h"
#include "sv/train.h"
#include "trainer.h"

#define MAX_PARTS 16      /* routing id, delimiter, SV_PROTO_MAX_FRAMES, spare */
#define CUT_ID "\0sv-cut" /* control record marker (no client id starts with NUL) */
#define CUT_ID_LEN 7
#define CTL_LEN 64       /* settings blob, see settings_enc */
#define INLINE_ID_LEN 34 /* "~v" + 32 hex digits */

/* One item put or delete of the group in hand (visible to later messages of
 * the same group before the commit). */
struct pend_item {
	uint8_t id[SV_STORE_ID_MAX];
	size_t len;
	long row;   /* row in pool, -1: deleted in this group */
	int stored; /* the put is in the group's transaction */
};

/* One pair staged for the batch, valid once the group commits. */
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
	size_t row0, nrows;    /* rows in t->ack_rows */
	size_t stage0, nstage; /* pairs it staged */
};

struct dtrainer {
	struct sv_daemon *d;
	sv_trainer *tr;
	sv_batch *batch; /* the batch being filled (trainer thread) */

	/* The step runner: trains a full batch (batch_run) while the trainer
	 * thread goes on reading, committing and filling the next one.  While
	 * run_busy, the runner owns tr, mg, scores, applied_seq, pairs_seen and
	 * last_loss; the trainer thread calls step_wait() before touching them. */
	sv_batch *batch_run;
	pthread_t run_th;
	int run_started, run_busy, run_quit;
	pthread_mutex_t run_mu;
	pthread_cond_t run_cv;

	size_t max_pairs;
	uint32_t B;                /* batch size in force */
	struct sv_optim_params op; /* optimizer parameters in force */
	uint32_t ckpt_steps;       /* live copies of the checkpoint intervals */
	uint64_t ckpt_ms;
	unsigned live_gen;
	uint64_t base_steps;  /* steps of the loaded checkpoint */
	uint64_t version;     /* active checkpoint version (0: none) */
	uint64_t applied_seq; /* last log record whose effect is in W */
	uint64_t pairs_seen;
	uint64_t batch_t0; /* monotonic ns of the batch's first pair */
	uint64_t rate_t, rate_pairs; /* pairs_per_second: last tick (ns), logged then */
	uint64_t last_ckpt_ns, ckpt_steps_at;
	double last_loss;
	float *scores;
	struct sv_metrics_glue *mg;

	void *pull, *router, *ctl;
	pthread_t th;
	int started;
	struct sv_proto_limits lim;
	struct sv_proto_msgbuf mb;

	/* the group in hand */
	sv_store_txn *txn;
	int group_failed;
	float *pool; /* rows of d_in floats */
	size_t pool_n, pool_cap;
	struct pend_item *pend;
	size_t pend_n, pend_cap;
	uint32_t *pidx; /* open-addressing index over pend: slot = index + 1, 0 empty */
	size_t pidx_cap; /* a power of two, >= 2 pend_n; 0 before the first add */
	struct stage_pair *stage;
	size_t stage_n, stage_cap;
	struct pend_ack *acks;
	size_t ack_n, ack_cap;
	struct sv_proto_ack_row *ack_rows;
	size_t ack_rows_n, ack_rows_cap;
	uint64_t group_msgs, group_pairs;
	uint64_t group_pair_outcome[SV_PAIR_OUTCOME_COUNT];
};

/* ---- ingest.c ---- */

/* Grow *p (cap elements of elem bytes) to hold need; 0 or -ENOMEM. */
int ingest_grow(void **p, size_t *cap, size_t need, size_t elem);
/* The 64-bit key of an item id (graph-mode labels). */
uint64_t ingest_id_key(const void *id, size_t len);
/* Read up to group_max messages from both ingest sockets, commit them as one
 * group, answer the acked ones, stage the logged pairs into the batch.
 * Returns the number of messages read. */
size_t ingest_group(struct dtrainer *t);
/* While paused: answer acked messages PAUSED, store nothing. */
void ingest_refuse_paused(struct dtrainer *t);
/* One multipart message into msgs: the part count, 0 when none is waiting,
 * -1 when it had more than cap parts (then dropped). */
int ingest_recv_parts(void *s, zmq_msg_t *msgs, int cap);
void ingest_close_parts(zmq_msg_t *msgs, int n);
void ingest_frames_of(zmq_msg_t *msgs, int n, struct sv_proto_frame *fr);
/* Free the group buffers (pool, pending items, staged pairs, acks). */
void ingest_free(struct dtrainer *t);

/* ---- trainer.c ---- */

/* Add a committed pair to the batch; a full batch (B pairs) trains at once.
 * replay: during recovery (no snapshot per step). */
int trainer_batch_add(struct dtrainer *t, const float *xa, uint64_t ka, const float *xb,
                      uint64_t kb, uint8_t y, uint64_t seq, int replay);

#endif
