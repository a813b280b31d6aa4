/* settings.c - simverifyd's command line and settings (see settings.h).
 *
 * The keys, their types, bounds, defaults and how each one changes live are
 * the config module's table (sv/config.h); this file parses argv, runs the
 * module's load / override / resolve / check sequence, prints its
 * diagnostics once, and maps struct sv_config onto the daemon's struct
 * sv_dconf.  On SIGHUP it takes the keys the table marks live from the new
 * configuration, refuses the others by name, and publishes the live
 * settings (settings_live, the one mapping of them) to their consumers.
 * Leaves out: YAML itself and the key table (lib/config.c).
 */
#include "settings.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sv/config.h"
#include "sv/error.h"

static int is_live(const struct sv_config_key *k)
{
	return (k->flags & SV_CONFIG_KEY_LIVE) != 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: simverifyd [--state-dir DIR] [-c FILE] [-o key=value]... "
	           "[--check-config] [--allow-root]\n"
	           "       simverifyd --restore BACKUP_DIR [--force] [--state-dir DIR] [-c FILE] "
	           "[-o key=value]...\n");
}

int settings_parse_args(int argc, char **argv, struct settings_cli *cli)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},    {"option", required_argument, NULL, 'o'},
	    {"state-dir", required_argument, NULL, 'S'}, {"check-config", no_argument, NULL, 'C'},
	    {"allow-root", no_argument, NULL, 'R'},      {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},         {"restore", required_argument, NULL, 'r'},
	    {"force", no_argument, NULL, 'F'},           {NULL, 0, NULL, 0},
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
			if (cli->n_overrides == SETTINGS_MAX_OVERRIDES) {
				fprintf(stderr, "simverifyd: more than %d -o options\n",
				        SETTINGS_MAX_OVERRIDES);
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
		case 'r':
			cli->restore = optarg;
			break;
		case 'F':
			cli->force = 1;
			break;
		case 'h': {
			size_t n;
			const struct sv_config_key *k = sv_config_keys(&n);

			usage(stdout);
			printf("\nkeys (-o key=value; conf/simverifyd.yaml documents each):\n");
			for (size_t i = 0; i < n; i++)
				printf("  %-28s %-22s %s%s\n", k[i].name, k[i].def, k[i].help,
				       is_live(&k[i]) ? " [live]" : "");
			return 1;
		}
		case 'V':
			printf("simverifyd 0.1.0\n");
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "simverifyd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

static int map_level(int config_level)
{
	return 7 - config_level; /* debug 0 -> LOG_DEBUG 7 ... err 4 -> LOG_ERR 3 */
}

/* struct sv_config -> struct sv_dconf. */
static void map(const struct sv_config *c, struct sv_dconf *d)
{
	memset(d, 0, sizeof(*d));
	d->cfg = *c;
	snprintf(d->state_dir, sizeof(d->state_dir), "%s", c->state_dir);
	snprintf(d->store_path, sizeof(d->store_path), "%s", c->store_path);
	snprintf(d->ep_ingest, sizeof(d->ep_ingest), "%s", c->endpoints_ingest);
	snprintf(d->ep_ingest_ack, sizeof(d->ep_ingest_ack), "%s", c->endpoints_ingest_acked);
	snprintf(d->ep_query, sizeof(d->ep_query), "%s", c->endpoints_query);
	snprintf(d->ep_admin, sizeof(d->ep_admin), "%s", c->endpoints_admin);
	snprintf(d->ep_http, sizeof(d->ep_http), "%s", c->endpoints_http);
	d->admin_mode = (unsigned)c->endpoints_admin_mode;
	/* ZeroMQ counts messages, the key counts pairs: assume batches of about
	 * 64 pairs, so a queue of single pairs still holds a fair backlog. */
	d->ingest_hwm =
	    (int)(c->limits_max_pending_pairs / 64 < 100       ? 100
	          : c->limits_max_pending_pairs / 64 > 1000000 ? 1000000
	                                                       : c->limits_max_pending_pairs / 64);
	d->d_in = (uint32_t)c->model_d_in;
	d->d_out = (uint32_t)c->model_d_out;
	d->seed = c->model_seed;
	settings_live(c, &d->live);
	d->batch_max = d->live.batch_size > 1024 ? d->live.batch_size : 1024;
	if (d->batch_max > c->limits_max_batch_pairs && c->limits_max_batch_pairs >= d->live.batch_size)
		d->batch_max = (uint32_t)c->limits_max_batch_pairs;
	d->group_max = 1024;
	d->query_threads = (uint32_t)c->query_threads;
	sv_config_loss_params(c, &d->loss);
	d->optim_kind = (enum sv_optim_kind)c->train_optimizer;
	sv_store_opts_default(&d->store);
	d->store.path = NULL; /* main points it at store_path */
	d->store.d_in = d->d_in;
	d->store.d_out = d->d_out;
	d->store.sync = (enum sv_store_sync)c->store_sync;
	d->store.map_size = (size_t)c->store_map_size;
	d->store.max_map_size = (size_t)c->store_max_map_size;
	d->store.keep_versions = d->live.keep_versions;
	/* The settings a store's history depends on: changing them needs a new store. */
	d->store.settings_fp = sv_store_settings_fp((int)d->loss.kind, (int)d->loss.mode,
	                                            (int)d->optim_kind);
	d->store.dedup_depth = d->live.dedup_depth;
}

void settings_live(const struct sv_config *c, struct sv_live *out)
{
	memset(out, 0, sizeof(*out));
	out->batch_size = (uint32_t)c->train_batch_pairs;
	sv_config_optim_params(c, &out->optim);
	out->max_wait_ms = (uint32_t)c->train_max_wait_ms;
	out->ckpt_steps = (uint32_t)c->checkpoint_every_steps;
	out->ckpt_ms = c->checkpoint_every_ms;
	out->keep_versions = (uint32_t)c->store_keep_versions;
	out->threshold = (float)c->query_threshold;
	out->threshold_policy = c->query_threshold_policy;
	out->target_far = c->query_target_far;
	out->min_pairs = c->query_min_window_pairs;
	out->window_pairs = (uint32_t)c->query_window_pairs;
	sv_config_proto_limits(c, &out->lim);
	out->log_level = map_level(c->log_level);
	out->max_map_size = (size_t)c->store_max_map_size;
	out->retain_pairs = c->store_retain_pairs;
	out->retain_age_ms = c->store_retain_age_ms;
	out->min_free = c->store_min_free;
	out->dedup_window_ms = c->ingest_dedup_window_ms;
	out->dedup_depth = (uint32_t)c->ingest_dedup_depth;
	out->topk_refresh_ms = c->query_topk_refresh_ms;
}

/* The whole sequence; every diagnostic printed once to stderr. */
static int build(struct sv_config *c, const struct settings_cli *cli)
{
	struct sv_config_errors errs;
	char eb[512];
	int bad = 0;

	sv_config_errors_init(&errs);
	sv_config_defaults(c);
	if (cli->config_file != NULL && sv_config_load_file(c, cli->config_file, &errs) < 0)
		bad++;
	for (int i = 0; i < cli->n_overrides; i++) {
		char kv[SV_CONFIG_STR_MAX + 128], *eq;

		snprintf(kv, sizeof(kv), "%s", cli->overrides[i]);
		eq = strchr(kv, '=');
		if (eq == NULL) {
			fprintf(stderr, "simverifyd: -o '%s': expected key=value\n",
			        cli->overrides[i]);
			bad++;
			continue;
		}
		*eq = '\0';
		eb[0] = '\0';
		if (sv_config_set(c, kv, eq + 1, eb, sizeof(eb)) < 0) {
			fprintf(stderr, "simverifyd: -o %s: %s\n", cli->overrides[i], eb);
			bad++;
		}
	}
	eb[0] = '\0';
	if (sv_config_resolve(c, cli->state_dir, eb, sizeof(eb)) < 0) {
		fprintf(stderr, "simverifyd: %s\n", eb);
		bad++;
	}
	if (sv_config_check(c, &errs) < 0)
		bad++;
	if (errs.text != NULL && errs.len > 0)
		fprintf(stderr, "%s%s", errs.text, errs.text[errs.len - 1] == '\n' ? "" : "\n");
	sv_config_errors_free(&errs);
	return bad ? SV_ERR_CONFIG : 0;
}

int settings_build(struct sv_dconf *out, const struct settings_cli *cli)
{
	static struct sv_config c; /* large (strings); main thread only */
	int rc = build(&c, cli);

	if (rc < 0)
		return rc;
	map(&c, out);
	return 0;
}

size_t settings_show(const struct sv_dconf *c, char *buf, size_t cap)
{
	size_t n = sv_config_show(&c->cfg, buf, cap);

	return n < cap ? n : (cap ? cap - 1 : 0);
}

int settings_reload(struct sv_daemon *d, const struct settings_cli *cli)
{
	static struct sv_config nc; /* large (strings); main thread only */
	const struct sv_config_key *diff[128];
	size_t n, changed = 0, refused = 0;

	if (build(&nc, cli) < 0) {
		log_msg(LOG_ERR, "SV-RELOAD-INVALID",
		       "the configuration has errors (printed above); nothing changed");
		return SV_ERR_CONFIG;
	}
	n = sv_config_diff(&d->conf.cfg, &nc, diff, sizeof(diff) / sizeof(diff[0]));
	if (n > sizeof(diff) / sizeof(diff[0]))
		n = sizeof(diff) / sizeof(diff[0]);
	pthread_mutex_lock(&d->live_mu); /* CONFIG (show) reads cfg under it */
	for (size_t i = 0; i < n; i++) {
		char a[SV_CONFIG_STR_MAX + 64], b[SV_CONFIG_STR_MAX + 64];

		sv_config_get(&d->conf.cfg, diff[i]->name, a, sizeof(a));
		sv_config_get(&nc, diff[i]->name, b, sizeof(b));
		if (!is_live(diff[i])) {
			log_msg(LOG_WARNING, "SV-RELOAD-REFUSED",
			       "key '%s' changed (%s -> %s) but cannot change while running; "
			       "keeping %s until restart",
			       diff[i]->name, a, b, a);
			refused++;
			continue;
		}
		sv_config_set(&d->conf.cfg, diff[i]->name, b, NULL, 0);
		log_msg(LOG_NOTICE, "SV-RELOAD-KEY", "key '%s': %s -> %s", diff[i]->name, a, b);
		changed++;
	}
	settings_live(&d->conf.cfg, &d->live);
	pthread_mutex_unlock(&d->live_mu);
	log_set_level(d->live.log_level); /* SV_CONFIG_KEY_LIVE_LOG: at once */
	atomic_fetch_add(&d->live_gen, 1);   /* the other consumers: at their next look */
	log_msg(LOG_NOTICE, "SV-RELOAD-DONE", "reload: %zu keys changed live, %zu refused", changed,
	       refused);
	return 0;
}
