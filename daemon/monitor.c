/* monitor.c - the prequential monitor: the window of pre-step scores,
 * AUC/EER and the threshold policy of the running daemon (see monitor.h).
 * Leaves out: the exact ROC (simverifyctl evaluate's job), plots. */
#include "monitor.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "history.h"
#include "sv/error.h"
#include "sv/journal.h"
#include "sv/metrics.h"
#include "util.h"

struct monitor {
	struct sv_metrics_window *w;
	struct sv_metrics_policy_cfg cfg;
	float threshold;
	uint64_t last_ns;
	int dirty;
};

int monitor_policy(const struct monitor *g)
{
	return (int)g->cfg.policy;
}

int monitor_set_policy(struct monitor *g, int policy, float initial,
                               double target_far, uint64_t min_pairs)
{
	if (policy < 0 || policy >= SV_METRICS_POLICY_COUNT || !isfinite(initial) ||
	    !(target_far >= 0.0 && target_far <= 1.0))
		return SV_ERR_RANGE;
	g->cfg.policy = (enum sv_metrics_policy)policy;
	g->cfg.initial = initial;
	g->cfg.target_far = target_far;
	g->cfg.min_pairs = min_pairs;
	if (policy == SV_METRICS_POLICY_FIXED) {
		g->threshold = initial;
	} else if (g->w != NULL) {
		/* a reload applies at once, not at the next step */
		struct sv_metrics_op op;

		if (sv_metrics_window_threshold(g->w, &g->cfg, &op, NULL) == 0 &&
		    isfinite(op.threshold))
			g->threshold = op.threshold;
	}
	g->dirty = 1;
	g->last_ns = 0;
	return 0;
}

int monitor_set_window(struct monitor *g, uint32_t pairs)
{
	int rc = sv_metrics_window_resize(g->w, pairs);

	if (rc == 0)
		g->dirty = 1;
	return rc;
}

int monitor_new(struct monitor **out, const struct sv_dconf *c)
{
	struct monitor *g = calloc(1, sizeof(*g));
	int rc;

	if (g == NULL)
		return -ENOMEM;
	rc = sv_metrics_window_new(&g->w, c->live.window_pairs, SV_METRICS_DEFAULT_BINS, 0.01);
	if (rc == 0)
		rc = monitor_set_policy(g, c->live.threshold_policy, c->live.threshold,
		                        c->live.target_far, c->live.min_pairs);
	if (rc < 0) {
		monitor_free(g);
		return rc;
	}
	g->threshold = c->live.threshold;
	*out = g;
	return 0;
}

void monitor_free(struct monitor *g)
{
	if (g == NULL)
		return;
	sv_metrics_window_free(g->w);
	free(g);
}

/* The window's ROC for the status page, after every refresh (the histogram
 * ROC is O(bins): microseconds beside a step). */
static void publish_roc(struct monitor *g, struct sv_daemon *d, const struct sv_metrics_op *op)
{
	struct sv_metrics_roc *roc = NULL;

	if (d->hist != NULL && sv_metrics_window_roc(g->w, 0, &roc) == 0)
		history_set_roc(d->hist, roc, op);
	sv_metrics_roc_free(roc);
}

static void refresh(struct monitor *g, struct sv_daemon *d)
{
	struct sv_metrics_summary s;
	struct sv_metrics_op op;

	if (sv_metrics_window_summary(g->w, &s) == 0) {
		atomic_store(&d->prog.auc, s.auc);
		atomic_store(&d->prog.eer, s.eer);
		atomic_store(&d->prog.tar_far_1e2, s.far_1e2.tar);
		atomic_store(&d->prog.tar_far_1e3, s.far_1e3.tar);
	}
	if (sv_metrics_window_threshold(g->w, &g->cfg, &op, NULL) == 0 && isfinite(op.threshold))
		g->threshold = op.threshold;
	atomic_store(&d->prog.threshold, g->threshold);
	{
		uint64_t n = 0, n_pos = 0;

		sv_metrics_window_counts(g->w, &n, &n_pos);
		atomic_store(&d->prog.window_pairs, n);
	}
	g->dirty = 0;
	publish_roc(g, d, &op);
}

void monitor_add(struct monitor *g, struct sv_daemon *d, const float *scores,
                         const uint8_t *labels, size_t n, double loss)
{
	uint64_t now;

	for (size_t i = 0; i < n; i++)
		if (isfinite(scores[i]))
			sv_metrics_window_push(g->w, scores[i], labels[i]);
	if (isfinite(loss))
		sv_metrics_window_push_loss(g->w, loss);
	g->dirty = 1;
	now = now_mono_ns();
	/* after every step, so each snapshot carries the window's threshold:
	 * the histogram ROC is O(bins), a few microseconds */
	if (d != NULL) {
		g->last_ns = now;
		refresh(g, d);
	}
}

float monitor_threshold(const struct monitor *g)
{
	return g->threshold;
}

size_t monitor_calib_size(const struct monitor *g)
{
	return sv_journal_calib_size(g->w);
}

long monitor_calib_save(const struct monitor *g, void *buf, size_t cap)
{
	return sv_journal_calib_encode(buf, cap, g->threshold, g->w);
}

int monitor_calib_load(struct monitor *g, struct sv_daemon *d, const void *buf, size_t len)
{
	struct sv_metrics_window *w = NULL;
	float th;
	int rc = sv_journal_calib_decode(buf, len, &th, &w);

	if (rc < 0)
		return rc;
	if (w != NULL) {
		sv_metrics_window_free(g->w);
		g->w = w;
	}
	if (isfinite(th) && g->cfg.policy != SV_METRICS_POLICY_FIXED)
		g->threshold = th;
	if (d != NULL)
		refresh(g, d);
	return 0;
}
