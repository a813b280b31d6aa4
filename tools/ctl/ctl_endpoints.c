/* ctl_endpoints.c - find the daemon: explicit endpoints, --state-dir, or the
 * daemon's own config file; and `config check FILE`.
 *
 * Order, per endpoint: --admin / --query / --ingest / --acked-endpoint;
 * then --state-dir DIR (the ipc:// sockets a daemon started with
 * --state-dir DIR binds when its config names none); then the config file
 * given by -c, else $SIMVERIFY_CONFIG, else CTL_DEFAULT_CONFIG.  The config
 * file is read only when some endpoint is still unknown, and a missing
 * default config is not an error until an endpoint is needed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_json.h"
#include "sv/error.h"

#if __has_include("sv/config.h")
#include "sv/config.h"
#define HAVE_CONFIG 1
#else
#define HAVE_CONFIG 0
#endif

/* The socket names a daemon uses under --state-dir DIR when its config
 * names none (the built-in endpoint defaults, without sv/config.h). */
#define SOCK_ADMIN "admin.sock"
#define SOCK_QUERY "query.sock"
#define SOCK_INGEST "ingest.sock"
#define SOCK_ACKED "ingest-acked.sock"
#define SOCK_ACKED_ALT "ingest-ack.sock"

static void set_if_empty(char *dst, const char *val)
{
	if (!*dst && val && *val)
		snprintf(dst, CTL_ENDPOINT_MAX, "%s", val);
}

/* An ipc:// endpoint whose socket file is missing while the other spelling
 * of the acked socket exists: take the one that exists. */
static void prefer_existing_acked(char *ep)
{
	const char *names[2] = {SOCK_ACKED, SOCK_ACKED_ALT};
	size_t len = strlen(ep);

	if (strncmp(ep, "ipc://", 6) != 0 || access(ep + 6, F_OK) == 0)
		return;
	for (int i = 0; i < 2; i++) {
		size_t nl = strlen(names[i]);

		if (len > nl && strcmp(ep + len - nl, names[i]) == 0 && ep[len - nl - 1] == '/') {
			char alt[CTL_ENDPOINT_MAX];

			snprintf(alt, sizeof(alt), "%.*s%s", (int)(len - nl), ep, names[1 - i]);
			if (access(alt + 6, F_OK) == 0)
				snprintf(ep, CTL_ENDPOINT_MAX, "%s", alt);
			return;
		}
	}
}

#if HAVE_CONFIG
/* Endpoints from the daemon's config (path NULL: the built-in defaults),
 * with @STATE@ resolved to state_dir (NULL: the config's own). */
static int from_config(struct ctl_ctx *c, const char *path, const char *state_dir)
{
	struct sv_config cfg;
	struct sv_config_errors errs;
	char msg[256];
	int rc;

	sv_config_defaults(&cfg);
	sv_config_errors_init(&errs);
	if (path) {
		rc = sv_config_load_file(&cfg, path, &errs);
		if (rc) {
			ctl_err("cannot use the daemon's config %s:\n%s", path,
			        errs.text ? errs.text : sv_strerror(rc));
			sv_config_errors_free(&errs);
			return CTL_EXIT_FAIL;
		}
	}
	sv_config_errors_free(&errs);
	if (sv_config_resolve(&cfg, state_dir, msg, sizeof(msg)) != 0) {
		ctl_err("%s: %s", path ? path : "built-in config", msg);
		return CTL_EXIT_FAIL;
	}
	set_if_empty(c->admin, cfg.endpoints_admin);
	set_if_empty(c->query, cfg.endpoints_query);
	set_if_empty(c->ingest, cfg.endpoints_ingest);
	set_if_empty(c->acked, cfg.endpoints_ingest_acked);
	set_if_empty(c->store_path, cfg.store_path);
	set_if_empty(c->state_dir, cfg.state_dir);
	return CTL_EXIT_OK;
}
#else
static void from_state_dir(struct ctl_ctx *c, const char *dir)
{
	char ep[CTL_ENDPOINT_MAX];

	snprintf(ep, sizeof(ep), "ipc://%s/%s", dir, SOCK_ADMIN);
	set_if_empty(c->admin, ep);
	snprintf(ep, sizeof(ep), "ipc://%s/%s", dir, SOCK_QUERY);
	set_if_empty(c->query, ep);
	snprintf(ep, sizeof(ep), "ipc://%s/%s", dir, SOCK_INGEST);
	set_if_empty(c->ingest, ep);
	snprintf(ep, sizeof(ep), "ipc://%s/%s", dir, SOCK_ACKED);
	set_if_empty(c->acked, ep);
}

static int from_config(struct ctl_ctx *c, const char *path, const char *state_dir)
{
	if (path) {
		ctl_err("%s: this simverifyctl was built without config support", path);
		return CTL_EXIT_FAIL;
	}
	from_state_dir(c, state_dir ? state_dir : "/var/lib/simverify");
	set_if_empty(c->state_dir, state_dir ? state_dir : "/var/lib/simverify");
	if (!*c->store_path)
		snprintf(c->store_path, CTL_ENDPOINT_MAX, "%s/store",
		         state_dir ? state_dir : "/var/lib/simverify");
	return CTL_EXIT_OK;
}
#endif

int ctl_endpoints_resolve(struct ctl_ctx *c)
{
	const struct ctl_opts *o = c->o;
	const char *cfg = o->config;
	int rc;

	set_if_empty(c->admin, o->admin);
	set_if_empty(c->query, o->query);
	set_if_empty(c->ingest, o->ingest);
	set_if_empty(c->acked, o->acked);
	c->source = "the command line";
	if (!(*c->admin && *c->query && *c->ingest && *c->acked) || cfg || o->state_dir) {
		if (!cfg && !o->state_dir) {
			cfg = getenv("SIMVERIFY_CONFIG");
			if (!cfg || !*cfg)
				cfg = access(CTL_DEFAULT_CONFIG, F_OK) == 0 ? CTL_DEFAULT_CONFIG
				                                            : NULL;
		}
		/* --state-dir alone: the daemon's built-in endpoints under DIR. */
		c->source = cfg ? cfg : "--state-dir";
		rc = from_config(c, cfg, o->state_dir);
		if (rc)
			return rc;
	}
	prefer_existing_acked(c->acked);
	return CTL_EXIT_OK;
}

int ctl_config_check(const char *path)
{
#if HAVE_CONFIG
	struct sv_config cfg;
	struct sv_config_errors errs;
	char msg[256];
	int rc;

	sv_config_defaults(&cfg);
	sv_config_errors_init(&errs);
	rc = sv_config_load_file(&cfg, path, &errs);
	if (!rc && sv_config_resolve(&cfg, NULL, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "%s: %s\n", path, msg);
		rc = SV_ERR_CONFIG;
	}
	if (!rc)
		rc = sv_config_check(&cfg, &errs);
	if (rc) {
		if (errs.text)
			fputs(errs.text, stderr);
		ctl_err("config check %s: %u error%s", path, errs.count ? errs.count : 1,
		        errs.count == 1 ? "" : "s");
	} else {
		printf("%s: ok\n", path);
	}
	sv_config_errors_free(&errs);
	return rc ? CTL_EXIT_FAIL : CTL_EXIT_OK;
#else
	ctl_err("config check %s: this simverifyctl was built without config support", path);
	return CTL_EXIT_FAIL;
#endif
}

int ctl_config_print_json(const char *text, size_t len)
{
#if HAVE_CONFIG
	struct sv_config cfg;
	struct sv_config_errors errs;
	const struct sv_config_key *keys;
	size_t n;
	int rc;

	sv_config_defaults(&cfg);
	sv_config_errors_init(&errs);
	rc = sv_config_load_string(&cfg, "daemon config", text, len, &errs);
	if (rc) {
		ctl_err("config show: the daemon's configuration does not parse here:\n%s",
		        errs.text ? errs.text : sv_strerror(rc));
		sv_config_errors_free(&errs);
		return CTL_EXIT_DAEMON;
	}
	sv_config_errors_free(&errs);
	keys = sv_config_keys(&n);
	fputc('{', stdout);
	for (size_t i = 0; i < n; i++) {
		char v[SV_CONFIG_STR_MAX + 64];
		int numeric = keys[i].type == SV_CONFIG_TYPE_INT ||
		              keys[i].type == SV_CONFIG_TYPE_UINT ||
		              keys[i].type == SV_CONFIG_TYPE_DOUBLE;

		if (sv_config_get(&cfg, keys[i].name, v, sizeof(v)) < 0)
			continue;
		printf("%s\"%s\": ", i ? ", " : "", keys[i].name);
		if (keys[i].type == SV_CONFIG_TYPE_BOOL)
			fputs(strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
			              strcmp(v, "on") == 0
			          ? "true"
			          : "false",
			      stdout);
		else if (numeric)
			fputs(v, stdout);
		else
			ctl_json_write_str(stdout, v, strlen(v));
	}
	fputs("}\n", stdout);
	return CTL_EXIT_OK;
#else
	(void)text;
	(void)len;
	ctl_err("config show --json: this simverifyctl was built without config support");
	return CTL_EXIT_FAIL;
#endif
}
