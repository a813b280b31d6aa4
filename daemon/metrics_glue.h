/* metrics_glue.h - the trainer's prequential metrics: every trained pair's
 * pre-step score and label go into a sliding window (sv/metrics.h); AUC, EER,
 * TAR at FAR 1e-2 / 1e-3 and the decision threshold of the configured policy
 * are recomputed after every step and published in d->prog.  The calibration blob saved with a
 * checkpoint is the window image after a 4-byte float threshold.
 * Owned and called by the trainer thread only.
 */
#ifndef SV_DAEMON_METRICS_GLUE_H
#define SV_DAEMON_METRICS_GLUE_H

#include <stddef.h>
#include <stdint.h>

struct sv_dconf;
struct sv_daemon;
struct sv_metrics_glue;

int sv_metrics_glue_new(struct sv_metrics_glue **out, const struct sv_dconf *c);
void sv_metrics_glue_free(struct sv_metrics_glue *g);

/* Push n pre-step scores and labels; refresh AUC/EER/threshold into d->prog
 * when due. */
void sv_metrics_glue_add(struct sv_metrics_glue *g, struct sv_daemon *d, const float *scores,
                         const uint8_t *labels, size_t n, double loss);

/* The threshold decisions use now. */
float sv_metrics_glue_threshold(const struct sv_metrics_glue *g);

/* Change the policy live (SIGHUP): policy is enum sv_config_policy (the
 * same codes as enum sv_metrics_policy).  Returns 0 or SV_ERR_RANGE. */
int sv_metrics_glue_set_policy(struct sv_metrics_glue *g, int policy, float initial,
                               double target_far, uint64_t min_pairs);
int sv_metrics_glue_policy(const struct sv_metrics_glue *g);
/* "fixed", "target_far", "eer", "max_accuracy". */
const char *sv_metrics_policy_name(int policy);

/* Calibration blob: size, save (returns bytes written or negative), load. */
size_t sv_metrics_glue_calib_size(const struct sv_metrics_glue *g);
long sv_metrics_glue_calib_save(const struct sv_metrics_glue *g, void *buf, size_t cap);
int sv_metrics_glue_calib_load(struct sv_metrics_glue *g, struct sv_daemon *d, const void *buf,
                               size_t len);

#endif
