/* ctl_evaluate.c - evaluate VECFILE PAIRFILE: ROC metrics of the live model.
 *
 * Every pair of PAIRFILE goes to the daemon's query endpoint as inline
 * vectors in SCORE_BATCH requests of --batch rows, WINDOW requests in
 * flight.  The scores and the files' labels give the exact ROC
 * (sv/metrics.h, the evaluation protocol of shared/data/README.md): AUC,
 * EER and TAR at FAR 1e-2 and 1e-3, each with the threshold it implies.
 * The daemon's own decisions (each score row's match flag, against the
 * threshold in force) give the accuracy at the daemon's current threshold.
 * --roc FILE.svg draws the curve (sv/svg.h) with that operating point.
 * --scores FILE writes the scores as text ("# model vN" line, then one
 * score a line, in pair-file order); --baseline FILE reads such a file of
 * the same pairs (e.g. written before training) and draws its curve too.
 *
 * Nothing is stored or trained: SCORE_BATCH is a pure query.  A pair file
 * holding a single class is an error (no ROC without both).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "sv/error.h"
#include "sv/metrics.h"
#include "sv/pairfile.h"
#include "sv/svg.h"

#define WINDOW 8
#define RID_STRIDE 4

struct eval {
	const struct ctl_opts *o;
	struct sv_vecfile *vf;
	struct sv_pairfile *pf;
	const struct sv_pair_rec *rec;
	uint64_t n;
	uint32_t dim, B;
	float *scores;
	uint8_t *labels, *match, *got;
	float threshold; /* of the last row answered */
	uint8_t policy;
	uint64_t v_min, v_max; /* model versions seen */
	struct ctl_conn cn;
	struct sv_proto_msgbuf mb;
	struct sv_proto_pair *pairs;
	uint64_t rid_base;
};

static const char *policy_name(unsigned p)
{
	static const char *const names[] = {"fixed", "target_far", "eer", "max_accuracy"};

	return p < 4 ? names[p] : "unknown";
}

static int send_batch(struct eval *e, uint64_t k)
{
	uint64_t first = k * e->B, end = first + e->B < e->n ? first + e->B : e->n;
	size_t m = (size_t)(end - first);

	for (size_t i = 0; i < m; i++) {
		memset(&e->pairs[i], 0, sizeof(e->pairs[i]));
		e->pairs[i].a.vec = sv_vecfile_row(e->vf, e->rec[first + i].a);
		e->pairs[i].b.vec = sv_vecfile_row(e->vf, e->rec[first + i].b);
	}
	if (sv_proto_encode_pairs(&e->mb, m == 1 ? SV_PROTO_VERB_SCORE : SV_PROTO_VERB_SCORE_BATCH,
	                          e->rid_base + k * RID_STRIDE, e->pairs, m, e->dim, NULL) != 0) {
		ctl_err("evaluate: cannot encode pairs %llu..%llu", (unsigned long long)first,
		        (unsigned long long)(end - 1));
		return CTL_EXIT_FAIL;
	}
	return ctl_conn_send(&e->cn, &e->mb);
}

/* Take the score rows of the reply to batch k. */
static int take_reply(struct eval *e, uint64_t k, const struct ctl_reply *r)
{
	uint64_t first = k * e->B, m = first + e->B < e->n ? e->B : e->n - first;
	int rc = ctl_reply_check(r, "evaluate", 1);

	if (rc)
		return rc;
	if (r->rep.n != m) {
		ctl_err("evaluate: the daemon answered %zu scores for %llu pairs", r->rep.n,
		        (unsigned long long)m);
		return CTL_EXIT_DAEMON;
	}
	for (uint64_t i = 0; i < m; i++) {
		struct sv_proto_score s;

		if (sv_proto_reply_score(&r->rep, (size_t)i, &s) != 0)
			return CTL_EXIT_DAEMON;
		if (s.status != SV_PROTO_STATUS_OK) {
			ctl_err("evaluate: pair %llu: daemon refused: %s",
			        (unsigned long long)(first + i), sv_proto_status_name(s.status));
			return s.status == SV_PROTO_STATUS_INTERNAL ? CTL_EXIT_DAEMON
			                                            : CTL_EXIT_REFUSED;
		}
		e->scores[first + i] = s.score;
		e->match[first + i] = s.match;
		e->got[first + i] = 1;
		e->threshold = s.threshold;
		e->policy = s.policy;
		if (s.model_version < e->v_min)
			e->v_min = s.model_version;
		if (s.model_version > e->v_max)
			e->v_max = s.model_version;
	}
	return CTL_EXIT_OK;
}

static int score_all(struct eval *e)
{
	uint64_t nb = (e->n + e->B - 1) / e->B, next = 0, done = 0;
	uint64_t inflight[WINDOW];
	int n_in = 0;

	while (done < nb) {
		struct ctl_reply r;
		uint64_t k;
		int rc, i;

		while (n_in < WINDOW && next < nb) {
			rc = send_batch(e, next);
			if (rc)
				return rc;
			inflight[n_in++] = next++;
		}
		/* wait for the oldest request's reply; others may come first */
		ctl_reply_init(&r);
		rc = ctl_conn_recv_any(&e->cn, &r);
		if (rc) {
			ctl_reply_close(&r);
			return rc;
		}
		k = (r.rep.hdr.request_id - e->rid_base) / RID_STRIDE;
		for (i = 0; i < n_in; i++)
			if (inflight[i] == k && r.rep.hdr.request_id >= e->rid_base)
				break;
		if (i == n_in) { /* not ours */
			ctl_reply_close(&r);
			continue;
		}
		rc = take_reply(e, k, &r);
		ctl_reply_close(&r);
		if (rc)
			return rc;
		inflight[i] = inflight[--n_in];
		done++;
	}
	return CTL_EXIT_OK;
}

static void print_json(const struct eval *e, const struct sv_metrics_summary *s,
                       const struct sv_metrics_op *at, double acc)
{
	printf("{\"n_pairs\": %llu, \"n_pos\": %llu, \"n_neg\": %llu, \"model_version\": %llu, "
	       "\"model_version_min\": %llu, ",
	       (unsigned long long)e->n, (unsigned long long)s->n_pos, (unsigned long long)s->n_neg,
	       (unsigned long long)e->v_max, (unsigned long long)e->v_min);
	printf("\"auc\": %.9g, \"eer\": %.9g, \"eer_threshold\": %.9g, ", s->auc, s->eer,
	       s->eer_threshold);
	printf("\"tar_at_far\": {\"0.01\": {\"tar\": %.9g, \"far\": %.9g, \"threshold\": %.9g}, "
	       "\"0.001\": {\"tar\": %.9g, \"far\": %.9g, \"threshold\": %.9g}}, ",
	       s->far_1e2.tar, s->far_1e2.far, s->far_1e2.threshold, s->far_1e3.tar, s->far_1e3.far,
	       s->far_1e3.threshold);
	printf("\"threshold\": %.9g, \"policy\": \"%s\", \"accuracy\": %.9g, \"tar\": %.9g, "
	       "\"far\": %.9g}\n",
	       e->threshold, policy_name(e->policy), acc, at->tar, at->far);
}

static void print_human(const struct eval *e, const struct sv_metrics_summary *s,
                        const struct sv_metrics_op *at, double acc)
{
	printf("pairs            %llu (%llu positive, %llu negative)\n", (unsigned long long)e->n,
	       (unsigned long long)s->n_pos, (unsigned long long)s->n_neg);
	if (e->v_min != e->v_max)
		printf("model            v%llu..v%llu (the model changed during the run)\n",
		       (unsigned long long)e->v_min, (unsigned long long)e->v_max);
	else
		printf("model            v%llu\n", (unsigned long long)e->v_max);
	printf("AUC              %.4f\n", s->auc);
	printf("EER              %.4f   threshold %.4f\n", s->eer, s->eer_threshold);
	printf("TAR@FAR=1e-2     %.4f   threshold %.4f\n", s->far_1e2.tar, s->far_1e2.threshold);
	printf("TAR@FAR=1e-3     %.4f   threshold %.4f\n", s->far_1e3.tar, s->far_1e3.threshold);
	printf("daemon threshold %.4f (%s): accuracy %.4f, TAR %.4f, FAR %.4f\n", e->threshold,
	       policy_name(e->policy), acc, at->tar, at->far);
}

static int write_scores(const struct eval *e)
{
	FILE *f = fopen(e->o->scores, "w");
	int bad;

	if (!f) {
		ctl_err("evaluate: cannot write %s: %s", e->o->scores, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	fprintf(f, "# model v%llu\n", (unsigned long long)e->v_max);
	for (uint64_t i = 0; i < e->n; i++)
		fprintf(f, "%.9g\n", (double)e->scores[i]);
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		ctl_err("evaluate: cannot write %s", e->o->scores);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

/* Read a --scores file of exactly e->n scores into base (e->n floats); its
 * model version goes to *version (UINT64_MAX if the line is missing). */
static int read_baseline(const struct eval *e, float *base, uint64_t *version)
{
	FILE *f = fopen(e->o->baseline, "r");
	unsigned long long v;
	uint64_t n = 0;
	char line[128];
	int rc = CTL_EXIT_OK;

	if (!f) {
		ctl_err("evaluate: cannot read %s: %s", e->o->baseline, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	*version = UINT64_MAX;
	while (fgets(line, sizeof(line), f)) {
		char *end;
		double x;

		if (line[0] == '#') {
			if (sscanf(line, "# model v%llu", &v) == 1)
				*version = v;
			continue;
		}
		x = strtod(line, &end);
		if (end == line || !isfinite(x) || n == e->n) {
			ctl_err("evaluate: %s: line %llu: %s", e->o->baseline,
			        (unsigned long long)n + 1,
			        n == e->n ? "more scores than pairs" : "not a score");
			rc = CTL_EXIT_FAIL;
			goto out;
		}
		base[n++] = (float)x;
	}
	if (n != e->n) {
		ctl_err("evaluate: %s holds %llu scores, the pair file %llu pairs", e->o->baseline,
		        (unsigned long long)n, (unsigned long long)e->n);
		rc = CTL_EXIT_FAIL;
	}
out:
	fclose(f);
	return rc;
}

static int write_roc(const struct eval *e, const struct sv_metrics_roc *roc,
                     const struct sv_metrics_op *at)
{
	struct sv_metrics_roc *broc = NULL;
	struct sv_svg_roc_opts so;
	char label[64], blabel[64], title[256];
	const char *slash = strrchr(e->o->args[1], '/');
	uint64_t bv = UINT64_MAX;
	float *base = NULL;
	FILE *f;
	int rc;

	memset(&so, 0, sizeof(so));
	snprintf(label, sizeof(label), "model v%llu", (unsigned long long)e->v_max);
	snprintf(title, sizeof(title), "ROC of %s (%llu pairs)", slash ? slash + 1 : e->o->args[1],
	         (unsigned long long)e->n);
	so.title = title;
	so.curves[0].label = label;
	so.curves[0].roc = roc;
	so.n_curves = 1;
	if (e->o->baseline) {
		base = malloc(e->n * sizeof(*base));
		if (!base) {
			ctl_err("evaluate: out of memory");
			return CTL_EXIT_FAIL;
		}
		rc = read_baseline(e, base, &bv);
		if (!rc && sv_metrics_roc_new(&broc, base, e->labels, e->n) != 0) {
			ctl_err("evaluate: cannot compute the ROC of %s", e->o->baseline);
			rc = CTL_EXIT_FAIL;
		}
		free(base);
		if (rc)
			return rc;
		if (bv != UINT64_MAX)
			snprintf(blabel, sizeof(blabel), "baseline model v%llu",
			         (unsigned long long)bv);
		else
			snprintf(blabel, sizeof(blabel), "baseline");
		so.curves[1].label = blabel;
		so.curves[1].roc = broc;
		so.n_curves = 2;
	}
	so.mark_op = isfinite(at->threshold) && isfinite(at->far) && isfinite(at->tar);
	so.op = *at;
	f = fopen(e->o->roc, "w");
	if (!f) {
		ctl_err("evaluate: cannot write %s: %s", e->o->roc, strerror(errno));
		sv_metrics_roc_free(broc);
		return CTL_EXIT_FAIL;
	}
	rc = sv_svg_roc_write(&so, f);
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	sv_metrics_roc_free(broc);
	if (rc) {
		ctl_err("evaluate: cannot write %s: %s", e->o->roc, sv_strerror(rc));
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

int ctl_evaluate_run(struct ctl_ctx *c)
{
	struct eval e;
	struct sv_metrics_roc *roc = NULL;
	struct sv_metrics_summary s;
	struct sv_metrics_op at;
	char err[SV_PAIRFILE_ERRLEN];
	uint64_t n_pos = 0, right = 0;
	double acc;
	int rc;

	memset(&e, 0, sizeof(e));
	e.o = c->o;
	e.B = c->o->batch;
	e.v_min = UINT64_MAX;
	sv_proto_msgbuf_init(&e.mb);
	rc = sv_vecfile_open(&e.vf, e.o->args[0], err, sizeof(err));
	if (!rc)
		rc = sv_pairfile_open(&e.pf, e.o->args[1], err, sizeof(err));
	if (!rc)
		rc = sv_pairfile_check_vec(e.pf, e.vf, err, sizeof(err));
	if (rc) {
		ctl_err("%s", err);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	e.dim = sv_vecfile_header(e.vf)->dim;
	e.rec = sv_pairfile_records(e.pf);
	e.n = sv_pairfile_header(e.pf)->n_pairs;
	if (e.o->limit && e.o->limit < e.n)
		e.n = e.o->limit;
	for (uint64_t i = 0; i < e.n; i++)
		n_pos += e.rec[i].label;
	if (n_pos == 0 || n_pos == e.n) {
		ctl_err("evaluate: %s: all %llu pairs%s are %s; AUC, EER and TAR@FAR need both "
		        "positive and negative pairs",
		        e.o->args[1], (unsigned long long)e.n,
		        e.o->limit ? " (within --limit)" : "", n_pos ? "positive" : "negative");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	e.scores = calloc(e.n, sizeof(float));
	e.labels = calloc(e.n, 1);
	e.match = calloc(e.n, 1);
	e.got = calloc(e.n, 1);
	e.pairs = calloc(e.B, sizeof(*e.pairs));
	if (!e.scores || !e.labels || !e.match || !e.got || !e.pairs) {
		ctl_err("evaluate: out of memory");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	for (uint64_t i = 0; i < e.n; i++)
		e.labels[i] = e.rec[i].label;

	rc = ctl_conn_open(&e.cn, c, ZMQ_DEALER, c->query, "query");
	if (rc)
		goto out;
	e.rid_base = ctl_conn_next_id(&e.cn) & ~0xffffffffull;
	rc = score_all(&e);
	if (rc)
		goto out;

	rc = sv_metrics_roc_new(&roc, e.scores, e.labels, e.n);
	if (!rc)
		rc = sv_metrics_roc_summary(roc, &s);
	if (!rc)
		rc = sv_metrics_roc_at(roc, e.threshold, &at);
	if (rc) {
		ctl_err("evaluate: cannot compute the ROC: %s", sv_strerror(rc));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	for (uint64_t i = 0; i < e.n; i++)
		right += e.match[i] == e.labels[i];
	acc = (double)right / (double)e.n;
	if (e.o->json)
		print_json(&e, &s, &at, acc);
	else
		print_human(&e, &s, &at, acc);
	if (e.o->scores)
		rc = write_scores(&e);
	if (!rc && e.o->roc)
		rc = write_roc(&e, roc, &at);
out:
	sv_metrics_roc_free(roc);
	ctl_conn_close(&e.cn);
	sv_proto_msgbuf_free(&e.mb);
	free(e.scores);
	free(e.labels);
	free(e.match);
	free(e.got);
	free(e.pairs);
	sv_pairfile_close(e.pf);
	sv_vecfile_close(e.vf);
	return rc;
}
