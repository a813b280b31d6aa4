/* test_config.c - the configuration table: the example file equals the
 * defaults, exact file:line:col messages for each error class, all errors
 * collected, overrides, bounds, units, show round trip, diff and reload
 * rules, converters. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/config.h"
#include "sv/error.h"

static struct sv_config cfg, def;
static struct sv_config_errors errs;

static void setup(void)
{
	sv_config_defaults(&cfg);
	sv_config_defaults(&def);
	sv_config_errors_init(&errs);
}

static void teardown(void)
{
	sv_config_errors_free(&errs);
}

TestSuite(config, .init = setup, .fini = teardown);

static int load(const char *text)
{
	return sv_config_load_string(&cfg, "t.yaml", text, strlen(text), &errs);
}

static int same(const struct sv_config *a, const struct sv_config *b)
{
	return sv_config_diff(a, b, NULL, 0) == 0;
}

Test(config, every_default_parses)
{
	size_t n;
	const struct sv_config_key *k = sv_config_keys(&n);
	char err[512];

	cr_assert_gt(n, 40);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(sv_config_set(&cfg, k[i].name, k[i].def, err, sizeof(err)), 0,
		             "%s default: %s", k[i].name, err);
		cr_assert_not_null(k[i].help);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(k[i].name, k[j].name);
	}
	cr_assert(same(&cfg, &def));
	cr_assert_eq(def.model_d_in, 784);
	cr_assert_eq(def.model_d_out, 64);
	cr_assert_eq(def.train_loss, SV_LOSS_KIND_NTXENT);
	cr_assert_eq(def.train_lr, 1e-3);
	cr_assert_eq(def.train_temperature, 0.07);
	cr_assert_eq(def.store_map_size, 1ull << 30);
	cr_assert_eq(def.checkpoint_every_ms, 60000);
	cr_assert_eq(def.endpoints_admin_mode, 0600);
	cr_assert_eq(def.limits_max_id_bytes, 255);
	cr_assert_str_eq(def.endpoints_admin, "ipc://@STATE@/admin.sock");
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long len;

	cr_assert_not_null(fp, "%s", path);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = calloc(1, (size_t)len + 1);
	cr_assert_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	return buf;
}

Test(config, example_file_equals_defaults_and_lists_every_key)
{
	const char *root = getenv("SV_SOURCE_ROOT");
	char path[4096];
	size_t n;
	const struct sv_config_key *k = sv_config_keys(&n);
	struct sv_config odd;
	char *text;

	cr_assert_not_null(root, "SV_SOURCE_ROOT unset");
	snprintf(path, sizeof(path), "%s/conf/simverifyd.yaml", root);
	cr_assert_eq(sv_config_load_file(&cfg, path, &errs), 0, "%s", errs.text);
	cr_assert(same(&cfg, &def));
	/* Every key is present: loading over a config that differs in every
	 * key must still give the defaults. */
	memset(&odd, 0, sizeof(odd));
	for (size_t i = 0; i < n; i++) {
		char *f = (char *)&odd + k[i].offset;
		if (k[i].type == SV_CONFIG_TYPE_STRING)
			strcpy(f, "x-not-default");
		else if (k[i].type == SV_CONFIG_TYPE_DOUBLE)
			*(double *)f = -12345.0;
		else if (k[i].type == SV_CONFIG_TYPE_BOOL || k[i].type == SV_CONFIG_TYPE_ENUM)
			*(int *)f = 77;
		else
			*(uint64_t *)f = 987654321;
	}
	for (size_t i = 0; i < n; i++) {
		char a[SV_CONFIG_STR_MAX], b[SV_CONFIG_STR_MAX];
		sv_config_get(&odd, k[i].name, a, sizeof(a));
		sv_config_get(&def, k[i].name, b, sizeof(b));
		cr_assert_str_neq(a, b, "%s", k[i].name);
	}
	cr_assert_eq(sv_config_load_file(&odd, path, &errs), 0, "%s", errs.text);
	cr_assert(same(&odd, &def));
	/* and each key has a comment line above it */
	text = slurp(path);
	for (size_t i = 0; i < n; i++) {
		const char *dot = strchr(k[i].name, '.');
		char needle[128];
		snprintf(needle, sizeof(needle), "\n%s%s: ", dot ? "  " : "",
		         dot ? dot + 1 : k[i].name);
		const char *at = strstr(text, needle);
		cr_assert_not_null(at, "%s missing", k[i].name);
		/* at is the newline ending the line above the key: find that line */
		const char *prev = at;
		while (prev > text && prev[-1] != '\n')
			prev--;
		cr_assert(strspn(prev, " ") < 8 && prev[strspn(prev, " ")] == '#',
		          "%s has no comment", k[i].name);
	}
	free(text);
}

Test(config, nested_and_dotted_keys)
{
	cr_assert_eq(load("train:\n  lr: 0.01\n  loss: contrastive\nmodel.d_in: 100\n"), 0, "%s",
	             errs.text);
	cr_assert_eq(cfg.train_lr, 0.01);
	cr_assert_eq(cfg.train_loss, SV_LOSS_KIND_CONTRASTIVE);
	cr_assert_eq(cfg.model_d_in, 100);
	cr_assert_eq(cfg.model_d_out, 64, "absent keys keep their values");
	cr_assert_eq(load(""), 0);
	cr_assert_eq(load("# only a comment\n"), 0);
}

Test(config, unknown_key_message_with_caret)
{
	cr_assert_eq(load("train:\n  lr: 0.01\n  lrr: 0.5\n"), SV_ERR_CONFIG);
	cr_assert_eq(errs.count, 1);
	cr_assert_str_eq(errs.text, "t.yaml:3:3: key 'train.lrr': unknown key\n"
	                            "  lrr: 0.5\n"
	                            "  ^\n");
	cr_assert_eq(cfg.train_lr, 1e-3, "a failed load leaves cfg unchanged");
}

Test(config, unknown_section)
{
	cr_assert_eq(load("trian:\n  lr: 1\n"), SV_ERR_CONFIG);
	cr_assert_str_eq(errs.text, "t.yaml:1:1: key 'trian': unknown section\n"
	                            "trian:\n"
	                            "^\n");
}

Test(config, type_errors)
{
	cr_assert_eq(load("train:\n  lr: fast\n"), SV_ERR_CONFIG);
	cr_assert_str_eq(errs.text, "t.yaml:2:7: key 'train.lr': expected a number, got 'fast'\n"
	                            "  lr: fast\n"
	                            "      ^\n");
	sv_config_errors_free(&errs);
	cr_assert_eq(load("model:\n  d_in: -3\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "t.yaml:2:9: key 'model.d_in': expected a non-negative "
	                            "integer, got '-3'\n"),
	          "%s", errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("train:\n  loss: triplet\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "t.yaml:2:9: key 'train.loss': expected one of contrastive | "
	                            "ntxent, got 'triplet'"),
	          "%s", errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("endpoints:\n  allow_tcp_admin: maybe\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "expected true or false, got 'maybe'"), "%s", errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("train:\n  lr: [1, 2]\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "t.yaml:2:7: key 'train.lr': expected a scalar value, got a "
	                            "sequence"),
	          "%s", errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("train:\n  lr:\n    x: 1\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "key 'train.lr': expected a scalar value, got a mapping"), "%s",
	          errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("train: 5\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "t.yaml:1:1: key 'train': unknown key (a section; give it a "
	                            "mapping)"),
	          "%s", errs.text);
}

Test(config, out_of_range)
{
	cr_assert_eq(load("train:\n  lr: 0\n"), SV_ERR_CONFIG);
	cr_assert_str_eq(errs.text, "t.yaml:2:7: key 'train.lr': 0 is out of range (0, 10]\n"
	                            "  lr: 0\n"
	                            "      ^\n");
	sv_config_errors_free(&errs);
	cr_assert_eq(load("limits:\n  max_id_bytes: 256\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "key 'limits.max_id_bytes': 256 is out of range [1, 255]"),
	          "%s", errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("train:\n  momentum: 1\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "1 is out of range [0, 1)"), "%s", errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("endpoints:\n  admin_mode: 01000\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "01000 is out of range [0, 0777]"), "%s", errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("endpoints:\n  admin_mode: 0680\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "expected an octal file mode like 0600, got '0680'"), "%s",
	          errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("train:\n  lr: nan\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "expected a finite number, got 'nan'"), "%s", errs.text);
}

Test(config, all_errors_reported_in_order)
{
	cr_assert_eq(load("model:\n  d_in: x\n  bogus: 1\ntrain:\n  lr: -1\n  lr: 2\n"
	                  "store:\n  map_size: 12QB\n"),
	             SV_ERR_CONFIG);
	cr_assert_eq(errs.count, 5, "%s", errs.text);
	const char *a = strstr(errs.text, "t.yaml:2:9: key 'model.d_in'");
	const char *b = strstr(errs.text, "t.yaml:3:3: key 'model.bogus': unknown key");
	const char *c = strstr(errs.text, "t.yaml:5:7: key 'train.lr': -1 is out of range");
	const char *d = strstr(errs.text, "t.yaml:6:3: key 'train.lr': duplicate key (first set "
	                                  "on line 5)");
	const char *e = strstr(errs.text, "t.yaml:8:13: key 'store.map_size': unknown unit 'QB'");
	cr_assert(a && b && c && d && e, "%s", errs.text);
	cr_assert(a < b && b < c && c < d && d < e);
}

Test(config, syntax_error_reported)
{
	cr_assert_eq(load("train:\n  lr: 0.1\n bad: [\n"), SV_ERR_CONFIG);
	cr_assert_geq(errs.count, 1);
	cr_assert(strncmp(errs.text, "t.yaml:", 7) == 0 && strstr(errs.text, "syntax: "), "%s",
	          errs.text);
	sv_config_errors_free(&errs);
	cr_assert_eq(load("- a\n- b\n"), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "t.yaml:1:1: the top level must be a mapping"), "%s",
	          errs.text);
}

Test(config, tab_in_echoed_line_keeps_caret_aligned)
{
	cr_assert_eq(load("train: {lr: x}\n"), SV_ERR_CONFIG);
	cr_assert_str_eq(errs.text, "t.yaml:1:13: key 'train.lr': expected a number, got 'x'\n"
	                            "train: {lr: x}\n"
	                            "            ^\n");
}

Test(config, missing_file)
{
	cr_assert_eq(sv_config_load_file(&cfg, "/nonexistent/sv.yaml", &errs), -ENOENT);
	cr_assert(strstr(errs.text, "/nonexistent/sv.yaml: cannot open"), "%s", errs.text);
	cr_assert_eq(sv_config_load_file(&cfg, NULL, &errs), -EINVAL);
}

Test(config, overrides)
{
	char err[256];

	cr_assert_eq(sv_config_set(&cfg, "train.lr", "0.01", err, sizeof(err)), 0);
	cr_assert_eq(cfg.train_lr, 0.01);
	cr_assert_eq(sv_config_set(&cfg, "train.lr", "-1", err, sizeof(err)), SV_ERR_CONFIG);
	cr_assert_str_eq(err, "key 'train.lr': -1 is out of range (0, 10]");
	cr_assert_eq(cfg.train_lr, 0.01);
	cr_assert_eq(sv_config_set(&cfg, "train.lrr", "1", err, sizeof(err)), SV_ERR_CONFIG);
	cr_assert_str_eq(err, "key 'train.lrr': unknown key");
	cr_assert_eq(sv_config_set(&cfg, NULL, "1", err, sizeof(err)), SV_ERR_CONFIG);
	cr_assert_eq(sv_config_set(&cfg, "train.lr", "1", NULL, 0), 0);
}

Test(config, units)
{
	struct {
		const char *key, *in;
		uint64_t want;
	} ok[] = {
	    {"store.map_size", "1GiB", 1ull << 30}, {"store.map_size", "64MiB", 64ull << 20},
	    {"store.map_size", "2TiB", 2ull << 40}, {"store.map_size", "3000000", 3000000},
	    {"store.map_size", "5 MB", 5000000},    {"store.map_size", "2048KiB", 2ull << 20},
	    {"train.max_wait_ms", "500ms", 500},    {"train.max_wait_ms", "2s", 2000},
	    {"train.max_wait_ms", "250", 250},      {"checkpoint.every_s", "30", 30000},
	    {"checkpoint.every_s", "30s", 30000},   {"checkpoint.every_s", "2min", 120000},
	    {"checkpoint.every_s", "1h", 3600000},  {"checkpoint.every_s", "1500ms", 1500},
	};
	char err[256], out[64];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(sv_config_set(&cfg, ok[i].key, ok[i].in, err, sizeof(err)), 0, "%s",
		             err);
		const struct sv_config_key *k = sv_config_find(ok[i].key);
		cr_assert_eq(*(uint64_t *)((char *)&cfg + k->offset), ok[i].want, "%s", ok[i].in);
	}
	cr_assert_eq(sv_config_set(&cfg, "store.map_size", "1.5GiB", err, sizeof(err)),
	             SV_ERR_CONFIG);
	cr_assert_eq(sv_config_set(&cfg, "store.map_size", "1k", err, sizeof(err)), SV_ERR_CONFIG);
	cr_assert_str_eq(err, "key 'store.map_size': unknown unit 'k' in '1k' (B, KiB, MiB, GiB, "
	                      "TiB, kB, MB, GB, TB)");
	cr_assert_eq(sv_config_set(&cfg, "store.map_size", "1KiB", err, sizeof(err)),
	             SV_ERR_CONFIG);
	cr_assert(strstr(err, "out of range"), "%s", err);
	cr_assert_eq(sv_config_set(&cfg, "store.map_size", "99999999999TiB", err, sizeof(err)),
	             SV_ERR_CONFIG);
	cr_assert(strstr(err, "overflows"), "%s", err);
	cr_assert_eq(sv_config_set(&cfg, "train.max_wait_ms", "2d", err, sizeof(err)),
	             SV_ERR_CONFIG);
	cr_assert_eq(sv_config_set(&cfg, "checkpoint.every_s", "2d", err, sizeof(err)),
	             SV_ERR_CONFIG);
	cr_assert(strstr(err, "out of range"), "%s", err);
	cr_assert_eq(sv_config_set(&cfg, "checkpoint.every_s", "2w", err, sizeof(err)),
	             SV_ERR_CONFIG);
	cr_assert(strstr(err, "(ms, s, min, h, d)"), "%s", err);
	cr_assert_eq(sv_config_set(&cfg, "checkpoint.every_s", "1d", err, sizeof(err)), 0);
	sv_config_get(&cfg, "checkpoint.every_s", out, sizeof(out));
	cr_assert_str_eq(out, "1d");
	cr_assert_eq(sv_config_set(&cfg, "store.map_size", "3MiB", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_get(&cfg, "store.map_size", out, sizeof(out)), 4);
	cr_assert_str_eq(out, "3MiB");
	cr_assert_eq(sv_config_set(&cfg, "checkpoint.every_s", "1500ms", err, sizeof(err)), 0);
	sv_config_get(&cfg, "checkpoint.every_s", out, sizeof(out));
	cr_assert_str_eq(out, "1500ms");
	cr_assert_eq(sv_config_get(&cfg, "no.such", out, sizeof(out)), SV_ERR_NOTFOUND);
}

Test(config, show_round_trips)
{
	char err[256];
	struct sv_config back;
	size_t need, got;
	char *buf;

	/* a config off its defaults, with awkward strings */
	cr_assert_eq(sv_config_set(&cfg, "train.lr", "0.1", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&cfg, "train.temperature", "0.123456789012345", err, 256), 0);
	cr_assert_eq(sv_config_set(&cfg, "store.path", "/tmp/a \"quoted\" \\ dir: #x", err, 256),
	             0);
	cr_assert_eq(sv_config_set(&cfg, "security.curve_allow",
	                           "\t\x01"
	                           "é",
	                           err, 256),
	             0);
	cr_assert_eq(sv_config_set(&cfg, "train.optimizer", "sgd", err, 256), 0);
	cr_assert_eq(sv_config_set(&cfg, "store.map_size", "1000000000", err, 256), 0);
	cr_assert_eq(sv_config_set(&cfg, "train.nesterov", "yes", err, 256), 0);
	need = sv_config_show(&cfg, NULL, 0);
	buf = malloc(need + 1);
	got = sv_config_show(&cfg, buf, need + 1);
	cr_assert_eq(got, need);
	cr_assert_eq(strlen(buf), need);
	cr_assert(strstr(buf, "train:\n"), "%s", buf);
	cr_assert(strstr(buf, "  lr: 0.1\n"), "%s", buf);
	cr_assert(strstr(buf, "  admin_mode: 0600\n"), "%s", buf);
	sv_config_defaults(&back);
	cr_assert_eq(sv_config_load_string(&back, "show", buf, need, &errs), 0, "%s\n%s", errs.text,
	             buf);
	cr_assert(same(&cfg, &back), "%s", buf);
	/* truncated buffer is still NUL-terminated */
	char small[16];
	cr_assert_eq(sv_config_show(&cfg, small, sizeof(small)), need);
	cr_assert_eq(strlen(small), sizeof(small) - 1);
	free(buf);
	/* defaults too */
	need = sv_config_show(&def, NULL, 0);
	buf = malloc(need + 1);
	sv_config_show(&def, buf, need + 1);
	memset(&back, 0, sizeof(back));
	cr_assert_eq(sv_config_load_string(&back, "show", buf, need, &errs), 0, "%s", errs.text);
	cr_assert(same(&def, &back));
	free(buf);
}

Test(config, resolve_state_dir)
{
	char err[256];

	cr_assert_eq(sv_config_resolve(&cfg, "/srv/sv", err, sizeof(err)), 0);
	cr_assert_str_eq(cfg.state_dir, "/srv/sv");
	cr_assert_str_eq(cfg.store_path, "/srv/sv/store");
	cr_assert_str_eq(cfg.endpoints_admin, "ipc:///srv/sv/admin.sock");
	cr_assert_str_eq(cfg.endpoints_ingest_acked, "ipc:///srv/sv/ingest-acked.sock");
	cr_assert_eq(sv_config_check(&cfg, &errs), 0, "%s", errs.text);
	/* NULL: the config's own state_dir */
	sv_config_defaults(&cfg);
	cr_assert_eq(sv_config_resolve(&cfg, NULL, err, sizeof(err)), 0);
	cr_assert_str_eq(cfg.store_path, "/var/lib/simverify/store");
	/* too long */
	char longdir[SV_CONFIG_STR_MAX];
	memset(longdir, 'd', 1000);
	longdir[1000] = 0;
	sv_config_defaults(&cfg);
	cr_assert_eq(sv_config_resolve(&cfg, longdir, err, sizeof(err)), SV_ERR_CONFIG);
	cr_assert(strstr(err, "key 'endpoints.ingest_acked': longer than"), "%s", err);
	cr_assert_str_eq(cfg.store_path, "@STATE@/store", "unchanged on failure");
}

Test(config, cross_key_checks)
{
	char err[256];

	cr_assert_eq(sv_config_check(&cfg, &errs), SV_ERR_CONFIG, "unresolved placeholders");
	cr_assert(strstr(errs.text, "key 'endpoints.admin': @STATE@ not resolved"), "%s",
	          errs.text);
	sv_config_errors_free(&errs);
	sv_config_resolve(&cfg, "/s", err, sizeof(err));
	sv_config_set(&cfg, "model.d_out", "1000", err, sizeof(err));
	sv_config_set(&cfg, "query.min_window_pairs", "30000", err, sizeof(err));
	sv_config_set(&cfg, "endpoints.admin", "tcp://0.0.0.0:5555", err, sizeof(err));
	sv_config_set(&cfg, "train.nesterov", "true", err, sizeof(err));
	sv_config_set(&cfg, "endpoints.query", "ipc:///s/ingest.sock", err, sizeof(err));
	cr_assert_eq(sv_config_check(&cfg, &errs), SV_ERR_CONFIG);
	cr_assert_eq(errs.count, 5, "%s", errs.text);
	cr_assert(strstr(errs.text, "key 'model.d_out': 1000 exceeds model.d_in 784"));
	cr_assert(strstr(errs.text, "key 'query.min_window_pairs'"));
	cr_assert(strstr(errs.text, "needs endpoints.allow_tcp_admin: true"));
	cr_assert(strstr(errs.text, "key 'train.nesterov'"));
	cr_assert(strstr(errs.text, "key 'endpoints.query': same endpoint as endpoints.ingest"));
}

Test(config, tcp_admin_needs_curve_or_explicit_allow)
{
	char err[256];

	sv_config_resolve(&cfg, "/s", err, sizeof(err));
	sv_config_set(&cfg, "endpoints.admin", "tcp://127.0.0.1:5555", err, sizeof(err));
	cr_assert_eq(sv_config_check(&cfg, &errs), SV_ERR_CONFIG, "tcp admin, no CURVE");
	cr_assert_eq(errs.count, 1, "%s", errs.text);
	sv_config_errors_free(&errs);
	/* a server key alone is not enough: admin needs an allow-list */
	sv_config_set(&cfg, "security.curve_server_key", "/k/server.key", err, sizeof(err));
	cr_assert_eq(sv_config_check(&cfg, &errs), SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "key 'endpoints.admin'"), "%s", errs.text);
	sv_config_errors_free(&errs);
	sv_config_set(&cfg, "security.curve_allow_admin", "/k/admins", err, sizeof(err));
	cr_assert_eq(sv_config_check(&cfg, &errs), 0, "%s", errs.text ? errs.text : "");
	sv_config_set(&cfg, "security.curve_allow_admin", "", err, sizeof(err));
	sv_config_set(&cfg, "security.curve_allow", "/k/all", err, sizeof(err));
	cr_assert_eq(sv_config_check(&cfg, &errs), 0, "%s", errs.text ? errs.text : "");
	/* explicitly allowed without CURVE */
	sv_config_set(&cfg, "security.curve_allow", "", err, sizeof(err));
	sv_config_set(&cfg, "security.curve_server_key", "", err, sizeof(err));
	sv_config_set(&cfg, "endpoints.allow_tcp_admin", "true", err, sizeof(err));
	cr_assert_eq(sv_config_check(&cfg, &errs), 0, "%s", errs.text ? errs.text : "");
	/* per-socket allow-lists need the server key */
	sv_config_set(&cfg, "security.curve_allow_query", "/k/q", err, sizeof(err));
	sv_config_set(&cfg, "security.curve_allow_ingest", "/k/i", err, sizeof(err));
	cr_assert_eq(sv_config_check(&cfg, &errs), SV_ERR_CONFIG);
	cr_assert_eq(errs.count, 2, "%s", errs.text);
	cr_assert(strstr(errs.text, "key 'security.curve_allow_query': needs security.curve_server_key"));
}

Test(config, diff_and_reload_rules)
{
	struct sv_config neu = cfg;
	const struct sv_config_key *ch[8];
	char err[256];

	cr_assert_eq(sv_config_diff(&cfg, &neu, ch, 8), 0);
	cr_assert_eq(sv_config_reload_check(&cfg, &neu, err, sizeof(err)), 0);
	sv_config_set(&neu, "train.lr", "0.5", err, sizeof(err));
	sv_config_set(&neu, "log.level", "debug", err, sizeof(err));
	cr_assert_eq(sv_config_diff(&cfg, &neu, ch, 8), 2);
	cr_assert_str_eq(ch[0]->name, "train.lr");
	cr_assert(ch[0]->flags & SV_CONFIG_KEY_LIVE);
	cr_assert_str_eq(ch[1]->name, "log.level");
	cr_assert_eq(sv_config_reload_check(&cfg, &neu, err, sizeof(err)), 0);
	sv_config_set(&neu, "train.batch_pairs", "64", err, sizeof(err));
	cr_assert_eq(sv_config_reload_check(&cfg, &neu, err, sizeof(err)), 0, "%s", err);
	sv_config_set(&neu, "model.d_in", "100", err, sizeof(err));
	sv_config_set(&neu, "store.path", "/elsewhere", err, sizeof(err));
	cr_assert_eq(sv_config_diff(&cfg, &neu, ch, 1), 5, "count beyond cap");
	cr_assert_eq(sv_config_reload_check(&cfg, &neu, err, sizeof(err)), SV_ERR_CONFIG);
	cr_assert_str_eq(err, "not reloadable (restart needed): model.d_in, store.path");
}

Test(config, converters)
{
	struct sv_train_params tp;
	char err[256];

	sv_config_set(&cfg, "train.optimizer", "adamw", err, sizeof(err));
	sv_config_set(&cfg, "train.mode", "graph", err, sizeof(err));
	sv_config_set(&cfg, "train.loss", "contrastive", err, sizeof(err));
	sv_config_set(&cfg, "train.neg_margin", "0.8", err, sizeof(err));
	sv_config_train_params(&cfg, &tp);
	cr_assert_eq(tp.d_in, 784);
	cr_assert_eq(tp.d_out, 64);
	cr_assert_eq(tp.max_pairs, 256);
	cr_assert_eq(tp.loss.kind, SV_LOSS_KIND_CONTRASTIVE);
	cr_assert_eq(tp.loss.mode, SV_LABEL_MODE_GRAPH);
	cr_assert_eq(tp.loss.neg_margin, 0.8f);
	cr_assert_eq(tp.loss.temperature, 0.07f);
	cr_assert_eq(tp.optim.kind, SV_OPTIM_KIND_ADAMW);
	cr_assert_eq(tp.optim.lr, 1e-3);
	cr_assert_eq(tp.optim.beta2, 0.999);
	cr_assert_eq(tp.optim.eps, 1e-8);
	cr_assert_eq(tp.init, SV_MODEL_INIT_UNIFORM);
	cr_assert_eq(sv_config_set(&cfg, "model.init", "orthogonal", err, sizeof(err)), 0, "%s", err);
	sv_config_set(&cfg, "model.seed", "9", err, sizeof(err));
	sv_config_train_params(&cfg, &tp);
	cr_assert_eq(tp.init, SV_MODEL_INIT_ORTHOGONAL);
	cr_assert_eq(tp.seed, 9);
	cr_assert_neq(sv_config_set(&cfg, "model.init", "gaussian", err, sizeof(err)), 0);

	struct sv_proto_limits lim;
	sv_config_proto_limits(&cfg, &lim);
	cr_assert(lim.d_in == 784 && lim.max_msg_bytes == 64u << 20 && lim.max_pairs == 4096 &&
	          lim.max_id_bytes == 255 && lim.max_k == 1000);
}

Test(config, null_and_empty_inputs)
{
	cr_assert_eq(sv_config_load_string(NULL, "x", "", 0, &errs), -EINVAL);
	cr_assert_eq(sv_config_load_string(&cfg, NULL, NULL, 0, NULL), 0);
	cr_assert_eq(sv_config_load_string(&cfg, NULL, "a: 1", 4, NULL), SV_ERR_CONFIG);
	sv_config_errors_free(NULL);
	cr_assert_null(sv_config_find(NULL));
	cr_assert_null(sv_config_find("train"));
}

Test(config, refuses_what_would_fail_later)
{
	struct sv_config c;
	struct sv_config_errors e;
	char err[256];

	sv_config_defaults(&c);
	cr_assert_eq(sv_config_resolve(&c, "/tmp/x", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sv_config_set(&c, "train.mode", "pairs", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "endpoints.query", "nonsense://x", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "endpoints.ingest", "tcp://127.0.0.1", err, sizeof(err)), 0);
	sv_config_errors_init(&e);
	cr_assert_eq(sv_config_check(&c, &e), SV_ERR_CONFIG);
	cr_assert_not_null(strstr(e.text, "'pairs' with train.loss 'ntxent' has zero loss"), "%s",
	                   e.text);
	cr_assert_not_null(strstr(e.text, "expected an ipc:// or tcp:// endpoint"), "%s", e.text);
	cr_assert_not_null(strstr(e.text, "expected tcp://HOST:PORT"), "%s", e.text);
	sv_config_errors_free(&e);
	cr_assert_eq(sv_config_set(&c, "train.loss", "contrastive", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "endpoints.query", "ipc:///tmp/x/q.sock", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "endpoints.ingest", "tcp://127.0.0.1:5555", err, sizeof(err)),
	             0);
	sv_config_errors_init(&e);
	cr_assert_eq(sv_config_check(&c, &e), 0, "%s", e.text ? e.text : "");
	sv_config_errors_free(&e);
}

Test(config, store_lifecycle_settings_out_of_range_name_file_and_line)
{
	cr_assert_eq(load("store:\n  retain_age: 11000d\ningest:\n  dedup_depth: 3\n"
	                  "  dedup_window: 5s\n"),
	             SV_ERR_CONFIG);
	cr_assert(strstr(errs.text, "t.yaml:2:15: key 'store.retain_age'"), "%s", errs.text);
	cr_assert(strstr(errs.text, "t.yaml:4:16: key 'ingest.dedup_depth'"), "%s", errs.text);
	cr_assert(strstr(errs.text, "t.yaml:5:17: key 'ingest.dedup_window'"), "%s", errs.text);
	cr_assert(strstr(errs.text, "out of range"), "%s", errs.text);
}

/* The cluster keys' cross checks: replay cannot run in lockstep, names are
 * NATS tokens. */
Test(config, cluster_keys_checked)
{
	struct sv_config c;
	struct sv_config_errors e;
	char err[256];

	sv_config_defaults(&c);
	cr_assert_eq(sv_config_resolve(&c, "/tmp/x", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sv_config_set(&c, "cluster.role", "trainer", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "cluster.role", "leader", err, sizeof(err)), SV_ERR_CONFIG);
	cr_assert_not_null(strstr(err, "off | trainer | replica"), "%s", err);
	cr_assert_eq(sv_config_set(&c, "train.replay", "on", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "cluster.name", "node 1", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "cluster.stream", "sv.pairs", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "cluster.duplicate_window", "10ms", err, sizeof(err)),
	             SV_ERR_CONFIG);
	sv_config_errors_init(&e);
	cr_assert_eq(sv_config_check(&c, &e), SV_ERR_CONFIG);
	cr_assert_not_null(strstr(e.text, "'train.replay': 'on' needs cluster.role 'off'"), "%s",
	                   e.text);
	cr_assert_not_null(strstr(e.text, "'cluster.name': 'node 1'"), "%s", e.text);
	cr_assert_not_null(strstr(e.text, "'cluster.stream': 'sv.pairs'"), "%s", e.text);
	sv_config_errors_free(&e);
	cr_assert_eq(sv_config_set(&c, "train.replay", "off", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "cluster.name", "node-1", err, sizeof(err)), 0);
	cr_assert_eq(sv_config_set(&c, "cluster.stream", "SV_PAIRS", err, sizeof(err)), 0);
	sv_config_errors_init(&e);
	cr_assert_eq(sv_config_check(&c, &e), 0, "%s", e.text ? e.text : "");
	sv_config_errors_free(&e);
}
