/* bench_growth.c - `sv-bench growth`: data.mdb over a long steady ingest of
 * unique inline pairs, with and without retention, beside the live data the
 * same store holds (STATUS store_used_bytes), measured in the same run.
 *
 * Runs simverifyd twice, each on a fresh state directory: once keeping every
 * log row (store.retain_pairs=0, store.retain_age=0: the reference), once
 * with store.retain_pairs = --retain.  Each run sends --pairs unique inline
 * pairs (d_in --d-in, acked PAIR_BATCH messages of 500 pairs with a client
 * id, 8 in flight), checkpoints every 10 steps (retention never deletes a row
 * the active checkpoint has not trained on), and every --every pairs samples
 * the size of data.mdb, store_used_bytes and log_pairs.
 *
 * Prints one line per sample, then the plateau: the largest file with
 * retention after 2 x --retain pairs against the file at 2 x --retain (the
 * ratio the retention test bounds at 1.25), against the live data, and
 * against the reference run's file at the end.  --svg FILE draws the three
 * curves (MB over pairs sent).
 *
 * Options: --daemon PATH, --dir DIR (default /tmp), --pairs N (default
 * 200000), --retain N (default 20000), --every N (default 10000), --d-in N
 * (default 64), --svg FILE, --json.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "sv/proto.h"
#include "sv/svg.h"

#define PER_MSG 500
#define WINDOW 8
#define MAX_SAMPLES 1024

struct cfg {
	char daemon[PATH_MAX];
	const char *dir, *svg;
	long pairs, retain, every, d_in;
	int json;
};

struct run {
	long n;                             /* samples */
	double x[MAX_SAMPLES];              /* pairs sent */
	double file[MAX_SAMPLES];           /* data.mdb, MB */
	double live[MAX_SAMPLES];           /* store_used_bytes, MB */
	long rows[MAX_SAMPLES];             /* log_pairs */
};

/* xorshift64*: fresh floats in [-1, 1), so every vector is unique. */
static float next_float(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (float)((*s * 0x2545F4914F6CDD1DULL) >> 40) / (float)(1 << 23) - 1.0f;
}

static int one_run(const struct cfg *c, long retain, struct run *out)
{
	char sd[PATH_MAX + 16], o1[64], o2[64], js[65536], file[PATH_MAX + 32];
	const char *const ovr[] = {o1, o2, "store.retain_age=0", "checkpoint.every_steps=10",
	                           "train.batch_pairs=256", "store.sync=none", "store.map_size=64MiB",
	                           "endpoints.http="};
	size_t nv = 2 * PER_MSG * (size_t)c->d_in;
	float *vec = malloc(nv * sizeof(float));
	struct sv_proto_pair *pr = calloc(PER_MSG, sizeof(*pr));
	struct sv_proto_msgbuf mb;
	uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)retain;
	long msgs = c->pairs / PER_MSG, sent = 0, got = 0;
	void *ctx = zmq_ctx_new(), *adm = NULL, *in = NULL;
	pid_t pid;
	int rc = -1;

	snprintf(sd, sizeof(sd), "%s/growth-%ld", c->dir, retain);
	snprintf(file, sizeof(file), "%s/store/data.mdb", sd);
	snprintf(o1, sizeof(o1), "model.d_in=%ld", c->d_in);
	snprintf(o2, sizeof(o2), "store.retain_pairs=%ld", retain);
	bench_rm_tree(sd);
	pid = bench_daemon_start(c->daemon, sd, ovr, sizeof(ovr) / sizeof(ovr[0]));
	sv_proto_msgbuf_init(&mb);
	out->n = 0;
	if (!vec || !pr || pid < 0)
		goto out;
	adm = bench_daemon_admin(ctx, sd, js, sizeof(js));
	if (adm == NULL) {
		fprintf(stderr, "sv-bench growth: the daemon at %s did not answer\n", sd);
		goto out;
	}
	in = bench_sock_at(ctx, ZMQ_DEALER, sd, "ingest-acked.sock");
	while (got < msgs) {
		if (sent < msgs && sent - got < WINDOW) {
			struct sv_proto_client cl = {"growth", 6, (uint64_t)sent * PER_MSG};

			for (size_t i = 0; i < nv; i++)
				vec[i] = next_float(&seed);
			for (int i = 0; i < PER_MSG; i++) {
				pr[i].label = (uint8_t)(i & 1);
				pr[i].a.vec = vec + (size_t)(2 * i) * c->d_in;
				pr[i].b.vec = vec + (size_t)(2 * i + 1) * c->d_in;
			}
			if (sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, (uint64_t)sent + 1, pr,
			                          PER_MSG, (uint32_t)c->d_in, &cl) < 0 ||
			    bench_send_mb(in, &mb) < 0)
				goto out;
			sent++;
			continue;
		}
		if (bench_recv_drop(in) < 0)
			goto out;
		got++;
		if ((got * PER_MSG) % c->every == 0 && out->n < MAX_SAMPLES) {
			struct stat sb;

			if (bench_status(adm, js, sizeof(js)) < 0)
				goto out;
			out->x[out->n] = (double)(got * PER_MSG);
			out->file[out->n] = stat(file, &sb) == 0 ? (double)sb.st_size / 1e6 : NAN;
			out->live[out->n] = (double)bench_json_u64(js, "store_used_bytes") / 1e6;
			out->rows[out->n] = bench_json_u64(js, "log_pairs");
			if (isatty(STDERR_FILENO))
				fprintf(stderr, "\rretain %ld: %ld of %ld pairs  ", retain, got * PER_MSG,
				        msgs * PER_MSG);
			out->n++;
		}
	}
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	rc = 0;
out:
	if (adm)
		zmq_close(adm);
	if (in)
		zmq_close(in);
	zmq_ctx_term(ctx);
	bench_daemon_stop(pid);
	bench_rm_tree(sd);
	sv_proto_msgbuf_free(&mb);
	free(vec);
	free(pr);
	return rc;
}

static int draw(const struct cfg *c, const struct run *ref, const struct run *ret)
{
	char title[128], *doc = NULL;
	size_t len = 0;
	struct sv_svg_lines_opts o = {.x_label = "pairs sent", .y_label = "MB", .n_series = 3,
	                              .y_min = NAN, .y_max = NAN};
	FILE *f;
	int rc;

	snprintf(title, sizeof(title), "data.mdb over a steady ingest of unique %ld-d inline pairs",
	         c->d_in);
	o.title = title;
	o.series[0] = (struct sv_svg_series){"no retention: data.mdb", ref->x, ref->file,
	                                     (size_t)ref->n};
	o.series[1] = (struct sv_svg_series){"store.retain_pairs: data.mdb", ret->x, ret->file,
	                                     (size_t)ret->n};
	o.series[2] = (struct sv_svg_series){"store.retain_pairs: live data", ret->x, ret->live,
	                                     (size_t)ret->n};
	rc = sv_svg_lines(&o, &doc, &len);
	if (rc < 0)
		return rc;
	f = fopen(c->svg, "w");
	rc = f != NULL && fwrite(doc, 1, len, f) == len ? 0 : -1;
	if (f != NULL && fclose(f) != 0)
		rc = -1;
	free(doc);
	if (rc < 0)
		fprintf(stderr, "sv-bench growth: cannot write %s\n", c->svg);
	return rc;
}

static int parse(int argc, char **argv, struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	bench_daemon_default_path(c->daemon, sizeof(c->daemon));
	c->dir = "/tmp";
	c->pairs = 200000;
	c->retain = 20000;
	c->every = 10000;
	c->d_in = 64;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long *num = strcmp(a, "--pairs") == 0    ? &c->pairs
		            : strcmp(a, "--retain") == 0 ? &c->retain
		            : strcmp(a, "--every") == 0  ? &c->every
		            : strcmp(a, "--d-in") == 0   ? &c->d_in
		                                         : NULL;

		if (strcmp(a, "--json") == 0) {
			c->json = 1;
		} else if (num != NULL && v != NULL) {
			if (bench_parse_long(v, 1, 1L << 40, num) < 0) {
				fprintf(stderr, "sv-bench growth: %s: '%s' is not a positive count\n", a, v);
				return -1;
			}
			i++;
		} else if ((strcmp(a, "--daemon") == 0 || strcmp(a, "--dir") == 0 ||
		            strcmp(a, "--svg") == 0) &&
		           v != NULL) {
			if (a[2] == 'd' && a[3] == 'a')
				snprintf(c->daemon, sizeof(c->daemon), "%s", v);
			else if (a[2] == 'd')
				c->dir = v;
			else
				c->svg = v;
			i++;
		} else {
			fprintf(stderr, "usage: sv-bench growth [--daemon PATH] [--dir DIR] [--pairs N] "
			                "[--retain N] [--every N] [--d-in N] [--svg FILE] [--json]\n");
			return -1;
		}
	}
	if (c->every % PER_MSG || c->pairs < 2 * c->retain || c->d_in > 4096) {
		fprintf(stderr, "sv-bench growth: --every must be a multiple of %d, --pairs at least "
		                "2 x --retain, --d-in at most 4096\n", PER_MSG);
		return -1;
	}
	return 0;
}

int bench_growth(int argc, char **argv)
{
	static struct run ref, ret;
	struct cfg c;
	double at2 = NAN, top = 0;
	long last;

	if (parse(argc, argv, &c) < 0)
		return 2;
	if (access(c.daemon, X_OK) != 0) {
		fprintf(stderr, "sv-bench growth: no simverifyd at %s (use --daemon PATH)\n",
		        c.daemon);
		return 1;
	}
	if (one_run(&c, 0, &ref) < 0 || one_run(&c, c.retain, &ret) < 0 || ret.n == 0 ||
	    ref.n == 0)
		return 1;
	for (long i = 0; i < ret.n; i++) {
		if (ret.x[i] == 2.0 * (double)c.retain)
			at2 = ret.file[i];
		if (ret.x[i] >= 2.0 * (double)c.retain && ret.file[i] > top)
			top = ret.file[i];
	}
	last = ret.n - 1;
	if (c.json) {
		struct bench_json j;

		bench_json_begin(&j);
		bench_json_int(&j, "pairs", c.pairs);
		bench_json_int(&j, "retain_pairs", c.retain);
		bench_json_num(&j, "file_mb_at_2x_retain", at2);
		bench_json_num(&j, "file_mb_max_after", top);
		bench_json_num(&j, "plateau_ratio", top / at2);
		bench_json_num(&j, "live_mb_end", ret.live[last]);
		bench_json_num(&j, "file_mb_end_no_retention", ref.file[ref.n - 1]);
		bench_json_end(&j);
	} else {
		printf("%10s  %14s  %14s  %14s  %10s\n", "pairs", "file MB (all)", "file MB (kept)",
		       "live MB (kept)", "log rows");
		for (long i = 0; i < ret.n && i < ref.n; i++)
			printf("%10.0f  %14.1f  %14.1f  %14.1f  %10ld\n", ret.x[i], ref.file[i],
			       ret.file[i], ret.live[i], ret.rows[i]);
		printf("plateau: with store.retain_pairs=%ld data.mdb is at most %.1f MB after %ld "
		       "pairs, %.2fx its %.1f MB at %ld pairs and %.2fx the live data (%.1f MB); "
		       "without retention it reached %.1f MB (%.1fx)\n",
		       c.retain, top, 2 * c.retain, top / at2, at2, 2 * c.retain,
		       top / ret.live[last], ret.live[last], ref.file[ref.n - 1],
		       ref.file[ref.n - 1] / top);
	}
	return c.svg != NULL && draw(&c, &ref, &ret) < 0 ? 1 : 0;
}
