/* snapshot.h - the immutable model that query threads read.
 *
 * The trainer is the only writer of W.  After each step it copies W into a
 * fresh snapshot and publishes it; readers take a reference, use it for as
 * long as one request lasts and drop it.  A snapshot never changes after
 * publication, so a reader never waits for a training step: the only lock is
 * a mutex held for the pointer swap / reference increment (a few
 * instructions), never across a step or a query.  The last reference frees.
 *
 * Leaves out: the projection cache of stored items (topk_cache.c rebuilds it
 * from snapshots in the background).
 */
#ifndef SV_DAEMON_SNAPSHOT_H
#define SV_DAEMON_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct sv_snap {
	atomic_uint refs;
	uint64_t version;     /* checkpoint version it descends from */
	uint64_t steps;       /* training steps taken (the trainer's counter) */
	uint64_t applied_seq; /* last pair-log sequence folded into W */
	uint32_t d_in, d_out;
	float threshold; /* decision threshold on cosine at publication */
	int policy;      /* enum sv_metrics_policy that chose it */
	float W[];       /* d_in x d_out, row-major */
};

struct sv_snap_slot {
	pthread_mutex_t mu;
	struct sv_snap *cur; /* owned: one reference */
};

/* A snapshot with refs = 1 and room for W (copied when W is not NULL).
 * Returns NULL on allocation failure. */
struct sv_snap *snap_new(uint32_t d_in, uint32_t d_out, const float *W);
void snap_unref(struct sv_snap *s);

int snap_slot_init(struct sv_snap_slot *slot);
void snap_slot_destroy(struct sv_snap_slot *slot);

/* Publish s (the slot takes over the caller's reference); the previous
 * snapshot loses the slot's reference. */
void snap_publish(struct sv_snap_slot *slot, struct sv_snap *s);

/* A new reference to the current snapshot (NULL before the first publish);
 * drop it with snap_unref. */
struct sv_snap *snap_get(struct sv_snap_slot *slot);

#endif
