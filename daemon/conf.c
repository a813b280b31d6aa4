/* conf.c - simverifyd's command line and settings (see conf.h).
 *
 * One table row per key the daemon reads (name, type, where it goes,
 * default, whether a reload may change it live).  Leaves out: YAML parsing
 * (the config module's job, sv/config.h, wired in when it lands; until then
 * -c is refused and settings come from defaults and -o).
 */
#include "conf.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics_glue.h"
#include "sv/error.h"

enum ktype { K_STR, K_U32, K_U64, K_SIZE, K_F32, K_F64, K_MODE, K_LOSS, K_OPTIM, K_LABELMODE,
	     K_LOGLEVEL, K_SYNC, K_POLICY };

struct key {
	const char *name;
	enum ktype type;
	size_t off;
	size_t len;          /* K_STR buffer size */
	const char *def;
	int live;
	const char *help;
};

#define O(f) offsetof(struct sv_dconf, f)
#define S(f) O(f), sizeof(((struct sv_dconf *)0)->f)

static const struct key keys[] = {
	{ "state_dir", K_STR, S(state_dir), "/var/lib/simverify", 0, "store and default ipc:// sockets" },
	{ "store.path", K_STR, S(store_path), "", 0, "LMDB directory (default STATE_DIR/store)" },
	{ "store.sync", K_SYNC, O(store.sync), 0, "full", 0, "full, meta or none" },
	{ "store.map_size", K_SIZE, O(store.map_size), 0, "67108864", 0, "initial LMDB map bytes" },
	{ "store.max_map_size", K_SIZE, O(store.max_map_size), 0, "68719476736", 0, "map growth limit" },
	{ "store.keep_versions", K_U32, O(store.keep_versions), 0, "5", 0, "checkpoints kept" },
	{ "endpoints.ingest", K_STR, S(ep_ingest), "", 0, "PULL (default ipc://STATE_DIR/ingest.sock)" },
	{ "endpoints.ingest_ack", K_STR, S(ep_ingest_ack), "", 0, "ROUTER (default ipc://STATE_DIR/ingest-ack.sock)" },
	{ "endpoints.query", K_STR, S(ep_query), "", 0, "ROUTER (default ipc://STATE_DIR/query.sock)" },
	{ "endpoints.admin", K_STR, S(ep_admin), "", 0, "ROUTER (default ipc://STATE_DIR/admin.sock)" },
	{ "endpoints.admin_mode", K_MODE, O(admin_mode), 0, "0600", 0, "file mode of an ipc:// admin socket" },
	{ "ingest.hwm", K_U32, O(ingest_hwm), 0, "10000", 0, "ZeroMQ high-water mark (backpressure)" },
	{ "ingest.group_max", K_U32, O(group_max), 0, "1024", 0, "messages per group commit" },
	{ "model.d_in", K_U32, O(d_in), 0, "784", 0, "input vector dim" },
	{ "model.d_out", K_U32, O(d_out), 0, "64", 0, "embedding dim" },
	{ "model.seed", K_U64, O(seed), 0, "1", 0, "initial W seed" },
	{ "train.batch_size", K_U32, O(batch_size), 0, "256", 1, "pairs per step (live)" },
	{ "train.max_batch", K_U32, O(batch_max), 0, "1024", 0, "largest batch a reload may set" },
	{ "train.max_wait_ms", K_U32, O(max_wait_ms), 0, "200", 0, "a partial batch trains after this" },
	{ "train.loss", K_LOSS, O(loss.kind), 0, "ntxent", 0, "contrastive or ntxent" },
	{ "train.label_mode", K_LABELMODE, O(loss.mode), 0, "batch", 0, "batch, pairs or graph" },
	{ "train.pos_margin", K_F32, O(loss.pos_margin), 0, "0", 0, "contrastive" },
	{ "train.neg_margin", K_F32, O(loss.neg_margin), 0, "1", 0, "contrastive" },
	{ "train.temperature", K_F32, O(loss.temperature), 0, "0.07", 0, "ntxent" },
	{ "train.optimizer", K_OPTIM, O(optim.kind), 0, "adam", 0, "sgd, adam or adamw" },
	{ "train.lr", K_F64, O(optim.lr), 0, "0.001", 1, "learning rate (live)" },
	{ "train.momentum", K_F64, O(optim.momentum), 0, "0", 0, "sgd" },
	{ "train.weight_decay", K_F64, O(optim.weight_decay), 0, "0", 0, "" },
	{ "train.beta1", K_F64, O(optim.beta1), 0, "0.9", 0, "adam" },
	{ "train.beta2", K_F64, O(optim.beta2), 0, "0.999", 0, "adam" },
	{ "train.eps", K_F64, O(optim.eps), 0, "1e-8", 0, "adam" },
	{ "checkpoint.every_steps", K_U32, O(ckpt_steps), 0, "1000", 0, "0: never" },
	{ "checkpoint.every_seconds", K_U32, O(ckpt_secs), 0, "300", 0, "0: never" },
	{ "query.threads", K_U32, O(query_threads), 0, "2", 0, "query workers" },
	{ "threshold.policy", K_POLICY, S(threshold_policy), "fixed", 1, "fixed, eer, target_far, max_accuracy (live)" },
	{ "threshold.initial", K_F32, O(threshold), 0, "0.5", 1, "fixed threshold, and until the window is ready (live)" },
	{ "threshold.target_far", K_F64, O(target_far), 0, "0.001", 1, "target_far policy (live)" },
	{ "threshold.min_pairs", K_U64, O(threshold_min_pairs), 0, "1000", 0, "window pairs before a policy applies" },
	{ "metrics.window", K_U32, O(metrics_window), 0, "20000", 0, "pairs in the prequential window" },
	{ "log.level", K_LOGLEVEL, O(log_level), 0, "info", 1, "err, warning, notice, info, debug (live)" },
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const loss_names[] = { "contrastive", "ntxent" };
static const char *const mode_names[] = { "batch", "pairs", "graph" };
static const char *const optim_names[] = { "sgd", "adam", "adamw" };
static const char *const sync_names[] = { "full", "meta", "none" };

static int name_index(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	return -1;
}

static void err(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err(const char *where, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "simverifyd: %s: ", where);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int set_key(struct sv_dconf *c, const struct key *k, const char *v, const char *where)
{
	char *base = (char *)c + k->off, *end = NULL;
	unsigned long long u;
	double f;
	int i;

	errno = 0;
	switch (k->type) {
	case K_STR:
	case K_POLICY:
		if (strlen(v) >= k->len) {
			err(where, "key '%s': value longer than %zu bytes", k->name, k->len - 1);
			return -1;
		}
		if (k->type == K_POLICY && sv_metrics_policy_parse(v) < 0) {
			err(where, "key '%s': '%s' is not fixed, eer, target_far or max_accuracy", k->name, v);
			return -1;
		}
		memcpy(base, v, strlen(v) + 1);
		return 0;
	case K_U32:
	case K_U64:
	case K_SIZE:
	case K_MODE:
		u = strtoull(v, &end, k->type == K_MODE ? 8 : 0);
		if (errno || end == v || *end || v[0] == '-' ||
		    (k->type == K_U32 && u > UINT32_MAX) || (k->type == K_MODE && u > 0777)) {
			err(where, "key '%s': '%s' is not a valid %s", k->name, v,
			    k->type == K_MODE ? "octal file mode" : "unsigned integer");
			return -1;
		}
		if (k->type == K_U32)
			*(uint32_t *)(void *)base = (uint32_t)u;
		else if (k->type == K_U64)
			*(uint64_t *)(void *)base = u;
		else if (k->type == K_SIZE)
			*(size_t *)(void *)base = (size_t)u;
		else
			*(unsigned *)(void *)base = (unsigned)u;
		return 0;
	case K_F32:
	case K_F64:
		f = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(f)) {
			err(where, "key '%s': '%s' is not a finite number", k->name, v);
			return -1;
		}
		if (k->type == K_F32)
			*(float *)(void *)base = (float)f;
		else
			*(double *)(void *)base = f;
		return 0;
	case K_LOSS:
		i = name_index(v, loss_names, 2);
		break;
	case K_LABELMODE:
		i = name_index(v, mode_names, 3);
		break;
	case K_OPTIM:
		i = name_index(v, optim_names, 3);
		break;
	case K_SYNC:
		i = name_index(v, sync_names, 3);
		break;
	case K_LOGLEVEL:
		i = sv_log_level_parse(v);
		break;
	default:
		i = -1;
		break;
	}
	if (i < 0) {
		err(where, "key '%s': '%s' is not one of its values", k->name, v);
		return -1;
	}
	*(int *)(void *)base = i;
	return 0;
}

static const struct key *find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strlen(keys[i].name) == len && strncmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

int conf_parse_args(int argc, char **argv, struct conf_cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "option", required_argument, NULL, 'o' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "allow-root", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(cli, 0, sizeof(*cli));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cli->config_file = optarg;
			break;
		case 'o':
			if (cli->n_overrides == CONF_MAX_OVERRIDES) {
				fprintf(stderr, "simverifyd: more than %d -o options\n", CONF_MAX_OVERRIDES);
				return 2;
			}
			cli->overrides[cli->n_overrides++] = optarg;
			break;
		case 'S':
			cli->state_dir = optarg;
			break;
		case 'C':
			cli->check_only = 1;
			break;
		case 'R':
			cli->allow_root = 1;
			break;
		case 'h':
			printf("usage: simverifyd [--state-dir DIR] [-c FILE] [-o key=value]... "
			       "[--check-config] [--allow-root]\n\nkeys (-o key=value):\n");
			for (size_t i = 0; i < N_KEYS; i++)
				printf("  %-26s %-12s %s%s\n", keys[i].name,
				       keys[i].def[0] ? keys[i].def : "\"\"", keys[i].help,
				       keys[i].live ? "" : "");
			return 1;
		case 'V':
			printf("simverifyd 0.1.0\n");
			return 1;
		default:
			fprintf(stderr, "usage: simverifyd [--state-dir DIR] [-c FILE] [-o key=value]... "
					"[--check-config] [--allow-root]\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "simverifyd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

int conf_build(struct sv_dconf *out, const struct conf_cli *cli)
{
	struct sv_dconf c;
	int bad = 0;

	memset(&c, 0, sizeof(c));
	sv_store_opts_default(&c.store);
	sv_optim_params_default(&c.optim, SV_OPTIM_KIND_ADAM);
	for (size_t i = 0; i < N_KEYS; i++)
		if (set_key(&c, &keys[i], keys[i].def, "default") < 0)
			bad++;
	if (cli->config_file != NULL) {
		err(cli->config_file, "configuration files need the config module (sv/config.h), "
				      "not in this build; use --state-dir and -o key=value");
		bad++;
	}
	for (int i = 0; i < cli->n_overrides; i++) {
		const char *o = cli->overrides[i], *eq = strchr(o, '=');
		const struct key *k = eq ? find_key(o, (size_t)(eq - o)) : NULL;
		char where[64];

		snprintf(where, sizeof(where), "-o #%d", i + 1);
		if (eq == NULL) {
			err(where, "'%s' is not key=value", o);
			bad++;
		} else if (k == NULL) {
			err(where, "unknown key '%.*s' (simverifyd --help lists them)", (int)(eq - o), o);
			bad++;
		} else if (set_key(&c, k, eq + 1, where) < 0) {
			bad++;
		}
	}
	if (cli->state_dir != NULL)
		snprintf(c.state_dir, sizeof(c.state_dir), "%s", cli->state_dir);
	if (c.store_path[0] == '\0')
		snprintf(c.store_path, sizeof(c.store_path), "%s/store", c.state_dir);
#define DEF_EP(f, name)                                                                      \
	if (c.f[0] == '\0' &&                                                                 \
	    (size_t)snprintf(c.f, sizeof(c.f), "ipc://%s/%s", c.state_dir, name) >= sizeof(c.f)) { \
		err("state_dir", "'%s' is too long for an ipc:// endpoint", c.state_dir);        \
		bad++;                                                                            \
	}
	DEF_EP(ep_ingest, "ingest.sock")
	DEF_EP(ep_ingest_ack, "ingest-ack.sock")
	DEF_EP(ep_query, "query.sock")
	DEF_EP(ep_admin, "admin.sock")
#undef DEF_EP
	if (c.d_in == 0 || c.d_out == 0) {
		err("model", "d_in and d_out must be > 0");
		bad++;
	}
	if (c.batch_size == 0 || c.batch_size > c.batch_max) {
		err("train.batch_size", "%u outside 1..train.max_batch (%u)", c.batch_size, c.batch_max);
		bad++;
	}
	if (sv_optim_params_check(&c.optim) < 0) {
		err("train", "optimizer parameters out of range (lr > 0, betas in [0,1), eps > 0)");
		bad++;
	}
	if (c.group_max == 0)
		c.group_max = 1;
	c.store.path = NULL; /* set by main from store_path */
	c.store.d_in = c.d_in;
	c.store.d_out = c.d_out;
	if (bad)
		return SV_ERR_CONFIG;
	*out = c;
	return 0;
}

void conf_live(const struct sv_dconf *c, struct sv_live *out)
{
	memset(out, 0, sizeof(*out));
	out->batch_size = c->batch_size;
	out->lr = c->optim.lr;
	memcpy(out->threshold_policy, c->threshold_policy, sizeof(out->threshold_policy));
	out->threshold = c->threshold;
	out->target_far = c->target_far;
}

static void show_value(const struct sv_dconf *c, const struct key *k, char *v, size_t cap)
{
	const char *base = (const char *)c + k->off;

	switch (k->type) {
	case K_STR:
	case K_POLICY: snprintf(v, cap, "\"%s\"", base); break;
	case K_U32: snprintf(v, cap, "%u", *(const uint32_t *)(const void *)base); break;
	case K_U64: snprintf(v, cap, "%llu", (unsigned long long)*(const uint64_t *)(const void *)base); break;
	case K_SIZE: snprintf(v, cap, "%zu", *(const size_t *)(const void *)base); break;
	case K_MODE: snprintf(v, cap, "\"%04o\"", *(const unsigned *)(const void *)base); break;
	case K_F32: snprintf(v, cap, "%.9g", (double)*(const float *)(const void *)base); break;
	case K_F64: snprintf(v, cap, "%.17g", *(const double *)(const void *)base); break;
	case K_LOSS: snprintf(v, cap, "\"%s\"", loss_names[*(const int *)(const void *)base]); break;
	case K_LABELMODE: snprintf(v, cap, "\"%s\"", mode_names[*(const int *)(const void *)base]); break;
	case K_OPTIM: snprintf(v, cap, "\"%s\"", optim_names[*(const int *)(const void *)base]); break;
	case K_SYNC: snprintf(v, cap, "\"%s\"", sync_names[*(const int *)(const void *)base]); break;
	case K_LOGLEVEL: snprintf(v, cap, "\"%s\"", sv_log_level_name(*(const int *)(const void *)base)); break;
	}
}

size_t conf_show(const struct sv_dconf *c, char *buf, size_t cap)
{
	size_t n = 0;

	if (cap == 0)
		return 0;
	buf[0] = '\0';
	for (size_t i = 0; i < N_KEYS && n + 1 < cap; i++) {
		char v[SV_ENDPOINT_MAX + 8];
		int w;

		show_value(c, &keys[i], v, sizeof(v));
		w = snprintf(buf + n, cap - n, "%s\"%s\":%s", i ? "," : "{", keys[i].name, v);
		if (w > 0)
			n = n + (size_t)w < cap ? n + (size_t)w : cap - 1;
	}
	if (n + 1 < cap) {
		buf[n++] = '}';
		buf[n] = '\0';
	}
	return n;
}

int conf_reload(struct sv_daemon *d, const struct conf_cli *cli)
{
	struct sv_dconf nc;
	size_t refused = 0, changed = 0;

	if (conf_build(&nc, cli) < 0) {
		sv_log(LOG_ERR, "SV-RELOAD-INVALID", "new configuration has errors (on stderr above); nothing changed");
		return SV_ERR_CONFIG;
	}
	nc.store.path = d->conf.store.path;
	for (size_t i = 0; i < N_KEYS; i++) {
		char a[SV_ENDPOINT_MAX + 8], b[SV_ENDPOINT_MAX + 8];

		show_value(&d->conf, &keys[i], a, sizeof(a));
		show_value(&nc, &keys[i], b, sizeof(b));
		if (strcmp(a, b) == 0)
			continue;
		if (!keys[i].live) {
			sv_log(LOG_WARNING, "SV-RELOAD-REFUSED",
			       "key '%s' changed (%s -> %s) but needs a restart; keeping %s", keys[i].name,
			       a, b, a);
			refused++;
			continue;
		}
		sv_log(LOG_NOTICE, "SV-RELOAD-KEY", "key '%s': %s -> %s", keys[i].name, a, b);
		changed++;
	}
	/* Apply the live keys only. */
	d->conf.batch_size = nc.batch_size;
	d->conf.optim.lr = nc.optim.lr;
	memcpy(d->conf.threshold_policy, nc.threshold_policy, sizeof(nc.threshold_policy));
	d->conf.threshold = nc.threshold;
	d->conf.target_far = nc.target_far;
	d->conf.log_level = nc.log_level;
	sv_log_set_level(nc.log_level);
	pthread_mutex_lock(&d->live_mu);
	conf_live(&d->conf, &d->live);
	pthread_mutex_unlock(&d->live_mu);
	atomic_fetch_add(&d->live_gen, 1);
	sv_log(LOG_NOTICE, "SV-RELOAD-DONE", "reload: %zu live keys changed, %zu refused", changed,
	       refused);
	return 0;
}
