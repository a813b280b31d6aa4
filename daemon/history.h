/* history.h - what the status page draws: recent numbers over time, and
 * the ROC of the current prequential window.
 *
 * The main loop samples the daemon once a second (history_tick) into a
 * ring of HISTORY_SAMPLES samples, one kept every HISTORY_EVERY_S seconds
 * (so the page shows the last HISTORY_SAMPLES * HISTORY_EVERY_S seconds).
 * The trainer's monitor publishes the window's ROC and the operating point
 * after every step (history_set_roc).  The HTTP thread copies both out
 * (history_copy, history_roc).  One mutex guards it all; every call holds
 * it for a copy, never for I/O.
 */
#ifndef SV_DAEMON_HISTORY_H
#define SV_DAEMON_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "sv/metrics.h"

#define HISTORY_SAMPLES 360
#define HISTORY_EVERY_S 10
#define HISTORY_ROC_POINTS 256

struct sv_daemon;
struct history;

struct history_sample {
	double t;           /* seconds since the daemon started */
	double auc, eer;    /* prequential, NaN before both classes were seen */
	double pairs_per_s; /* ingest rate */
	double backlog;     /* pairs logged, not yet trained */
	double store_bytes; /* data.mdb on disk */
	uint64_t version;   /* live model version */
};

int history_new(struct history **out);
void history_free(struct history *h);

/* Main loop, once a second: keeps a sample every HISTORY_EVERY_S seconds
 * (the first one at once). */
void history_tick(struct history *h, struct sv_daemon *d);

/* Copy the samples, oldest first, into out (cap entries); returns how many. */
size_t history_copy(struct history *h, struct history_sample *out, size_t cap);

/* Trainer (monitor): publish the window's ROC (copied, thinned to at most
 * HISTORY_ROC_POINTS points) and the operating point. */
void history_set_roc(struct history *h, const struct sv_metrics_roc *roc,
                     const struct sv_metrics_op *op);

/* The last published ROC: fills *roc (points malloc'd, free with free()) and
 * *op; returns 0, SV_ERR_NOTFOUND (nothing published yet) or -ENOMEM. */
int history_roc(struct history *h, struct sv_metrics_roc *roc, struct sv_metrics_op *op);

#endif
