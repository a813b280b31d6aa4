/* history.c - samples over time and the published ROC (see history.h). */
#include "history.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "expo.h"
#include "sv/error.h"

struct history {
	pthread_mutex_t mu;
	struct history_sample ring[HISTORY_SAMPLES];
	size_t head, n; /* next slot, samples held */
	double last_t;  /* when the last sample was kept (-inf: never) */

	struct sv_metrics_roc_point roc_pts[HISTORY_ROC_POINTS];
	struct sv_metrics_roc roc; /* points -> roc_pts; n_points 0: none yet */
	struct sv_metrics_op op;
};

int history_new(struct history **out)
{
	struct history *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return -ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	h->last_t = -INFINITY;
	h->roc.points = h->roc_pts;
	*out = h;
	return 0;
}

void history_free(struct history *h)
{
	if (h == NULL)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void history_tick(struct history *h, struct sv_daemon *d)
{
	struct history_sample s;

	s.t = expo_uptime_seconds();
	if (h == NULL || s.t - h->last_t < HISTORY_EVERY_S) /* main thread only writes last_t */
		return;
	s.auc = atomic_load(&d->prog.auc);
	s.eer = atomic_load(&d->prog.eer);
	s.pairs_per_s = atomic_load(&d->prog.pairs_per_second);
	s.backlog = (double)atomic_load(&d->prog.backlog);
	s.store_bytes = expo_store_file_bytes(d);
	s.version = atomic_load(&d->prog.model_version);
	pthread_mutex_lock(&h->mu);
	h->ring[h->head] = s;
	h->head = (h->head + 1) % HISTORY_SAMPLES;
	if (h->n < HISTORY_SAMPLES)
		h->n++;
	h->last_t = s.t;
	pthread_mutex_unlock(&h->mu);
}

size_t history_copy(struct history *h, struct history_sample *out, size_t cap)
{
	size_t n, first;

	if (h == NULL)
		return 0;
	pthread_mutex_lock(&h->mu);
	n = h->n < cap ? h->n : cap;
	first = (h->head + HISTORY_SAMPLES - h->n) % HISTORY_SAMPLES;
	first = (first + (h->n - n)) % HISTORY_SAMPLES; /* the newest n */
	for (size_t i = 0; i < n; i++)
		out[i] = h->ring[(first + i) % HISTORY_SAMPLES];
	pthread_mutex_unlock(&h->mu);
	return n;
}

void history_set_roc(struct history *h, const struct sv_metrics_roc *roc,
                     const struct sv_metrics_op *op)
{
	size_t n, keep;

	if (h == NULL || roc == NULL || roc->n_points == 0)
		return;
	n = roc->n_points;
	keep = n < HISTORY_ROC_POINTS ? n : HISTORY_ROC_POINTS;
	pthread_mutex_lock(&h->mu);
	/* evenly spaced points, the last one (FAR 1, TAR 1) always kept */
	for (size_t i = 0; i < keep; i++)
		h->roc_pts[i] = roc->points[keep == 1 ? n - 1 : i * (n - 1) / (keep - 1)];
	h->roc.n_points = keep;
	h->roc.n_pos = roc->n_pos;
	h->roc.n_neg = roc->n_neg;
	h->op = *op;
	pthread_mutex_unlock(&h->mu);
}

int history_roc(struct history *h, struct sv_metrics_roc *roc, struct sv_metrics_op *op)
{
	int rc = 0;

	if (h == NULL)
		return SV_ERR_NOTFOUND;
	pthread_mutex_lock(&h->mu);
	if (h->roc.n_points == 0) {
		rc = SV_ERR_NOTFOUND;
	} else {
		*roc = h->roc;
		roc->points = malloc(h->roc.n_points * sizeof(*roc->points));
		if (roc->points == NULL)
			rc = -ENOMEM;
		else
			memcpy(roc->points, h->roc_pts, h->roc.n_points * sizeof(*roc->points));
		*op = h->op;
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}
