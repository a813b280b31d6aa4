/* monitor.h - the prequential monitor of the trainer: every trained pair's
 * pre-step score and label go into a sliding window (sv/metrics.h); AUC, EER,
 * TAR at FAR 1e-2 / 1e-3 and the decision threshold of the configured policy
 * are recomputed after every step and published in d->prog.  The calibration blob saved with a
 * checkpoint (sv/journal.h) holds the threshold and the window image.
 * Owned and called by the trainer thread only.
 */
#ifndef SV_DAEMON_MONITOR_H
#define SV_DAEMON_MONITOR_H

#include <stddef.h>
#include <stdint.h>

struct sv_dconf;
struct sv_daemon;
struct monitor;

int monitor_new(struct monitor **out, const struct sv_dconf *c);
void monitor_free(struct monitor *g);

/* Push n pre-step scores and labels; refresh AUC/EER/threshold into d->prog
 * when due. */
void monitor_add(struct monitor *g, struct sv_daemon *d, const float *scores,
                         const uint8_t *labels, size_t n, double loss);

/* The threshold decisions use now. */
float monitor_threshold(const struct monitor *g);

/* Change the policy live (SIGHUP): policy is enum sv_metrics_policy.  Returns 0 or SV_ERR_RANGE. */
int monitor_set_policy(struct monitor *g, int policy, float initial,
                               double target_far, uint64_t min_pairs);
int monitor_policy(const struct monitor *g);
/* Resize the window (query.window_pairs reloaded), keeping the newest
 * pairs.  Returns 0 or -ENOMEM (the old window stays). */
int monitor_set_window(struct monitor *g, uint32_t pairs);

/* Calibration blob: size, save (returns bytes written or negative), load. */
size_t monitor_calib_size(const struct monitor *g);
long monitor_calib_save(const struct monitor *g, void *buf, size_t cap);
int monitor_calib_load(struct monitor *g, struct sv_daemon *d, const void *buf,
                               size_t len);

#endif
