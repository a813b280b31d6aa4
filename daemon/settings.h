/* settings.h - command line and settings of simverifyd.
 *
 *   simverifyd [--state-dir DIR] [-c FILE] [-o key=value]... [--check-config]
 *              [--allow-root] [--help] [--version]
 *
 * --state-dir puts the store and every default ipc:// endpoint under DIR,
 * so a private daemon runs with no config file at all.  -o sets any key
 * (after the file).  --check-config reports every error and exits non-zero
 * when there is one.  The daemon refuses to run as root unless --allow-root.
 *
 * settings_build turns the command line (and file) into struct sv_dconf;
 * settings_reload rebuilds it on SIGHUP, takes every key the config table
 * marks live (SV_CONFIG_KEY_LIVE_*: train, monitor, limits, log) and refuses
 * the rest with one log line per key.  How each consumer picks the live
 * settings up: docs/DAEMON.md.
 */
#ifndef SV_DAEMON_SETTINGS_H
#define SV_DAEMON_SETTINGS_H

#include <stddef.h>

#include "daemon.h"

#define SETTINGS_MAX_OVERRIDES 64

struct settings_cli {
	const char *config_file;
	const char *state_dir;
	const char *overrides[SETTINGS_MAX_OVERRIDES];
	int n_overrides;
	int check_only;
	int allow_root;
	const char *restore; /* --restore BACKUP_DIR */
	int force;           /* --force (with --restore) */
};

/* Parse argv.  Returns 0 to run, 1 when done (--help/--version printed), or
 * 2 after printing a usage error to stderr. */
int settings_parse_args(int argc, char **argv, struct settings_cli *cli);

/* Defaults, file, overrides, state directory.  Prints every error
 * (file:line:col for file keys) to stderr.  Returns 0 or SV_ERR_CONFIG. */
int settings_build(struct sv_dconf *out, const struct settings_cli *cli);


/* SIGHUP: rebuild; copy the changed live keys into d->conf.cfg, map them
 * into d->live (bumping d->live_gen; the log level at once); log each
 * changed key that needs a restart, by name.  Returns 0 or SV_ERR_CONFIG
 * (nothing applied). */
int settings_reload(struct sv_daemon *d, const struct settings_cli *cli);

/* The live settings of c: the one mapping of the live keys. */
void settings_live(const struct sv_config *c, struct sv_live *out);

/* The effective configuration as JSON (key -> value).  Returns the length
 * (truncated to cap - 1, NUL-terminated). */
size_t settings_show(const struct sv_dconf *c, char *buf, size_t cap);

#endif
