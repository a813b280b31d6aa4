/* snapshot.c - reference-counted immutable model snapshots (see snapshot.h). */
#include "snapshot.h"

#include <stdlib.h>
#include <string.h>

struct sv_snap *snap_new(uint32_t d_in, uint32_t d_out, const float *W)
{
	size_t n = (size_t)d_in * d_out;
	struct sv_snap *s = malloc(sizeof(*s) + n * sizeof(float));

	if (s == NULL)
		return NULL;
	atomic_init(&s->refs, 1);
	s->version = 0;
	s->steps = 0;
	s->applied_seq = 0;
	s->d_in = d_in;
	s->d_out = d_out;
	s->threshold = 0.5f;
	s->policy = 0;
	if (W != NULL)
		memcpy(s->W, W, n * sizeof(float));
	return s;
}

void snap_unref(struct sv_snap *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		free(s);
}

int snap_slot_init(struct sv_snap_slot *slot)
{
	slot->cur = NULL;
	return -pthread_mutex_init(&slot->mu, NULL);
}

void snap_slot_destroy(struct sv_snap_slot *slot)
{
	snap_unref(slot->cur);
	slot->cur = NULL;
	pthread_mutex_destroy(&slot->mu);
}

void snap_publish(struct sv_snap_slot *slot, struct sv_snap *s)
{
	struct sv_snap *old;

	pthread_mutex_lock(&slot->mu);
	old = slot->cur;
	slot->cur = s;
	pthread_mutex_unlock(&slot->mu);
	snap_unref(old);
}

struct sv_snap *snap_get(struct sv_snap_slot *slot)
{
	struct sv_snap *s;

	pthread_mutex_lock(&slot->mu);
	s = slot->cur;
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&slot->mu);
	return s;
}
