/* conf.h - command line and configuration of simverifyd.
 *
 *   simverifyd [--state-dir DIR] [-c FILE] [-o key=value]... [--check-config]
 *              [--allow-root] [--help] [--version]
 *
 * --state-dir puts the store and every default ipc:// endpoint under DIR,
 * so a private daemon runs with no config file at all.  -o sets any key
 * (after the file).  --check-config reports every error and exits non-zero
 * when there is one.  The daemon refuses to run as root unless --allow-root.
 *
 * conf_build turns the command line (and file) into struct sv_dconf;
 * conf_reload rebuilds it on SIGHUP, applies what can change live (log
 * level, learning rate, batch size, threshold policy) and refuses the rest
 * with one log line per key.
 */
#ifndef SV_DAEMON_CONF_H
#define SV_DAEMON_CONF_H

#include <stddef.h>

#include "daemon.h"

#define CONF_MAX_OVERRIDES 64

struct conf_cli {
	const char *config_file;
	const char *state_dir;
	const char *overrides[CONF_MAX_OVERRIDES];
	int n_overrides;
	int check_only;
	int allow_root;
};

/* Parse argv.  Returns 0 to run, 1 when done (--help/--version printed), or
 * 2 after printing a usage error to stderr. */
int conf_parse_args(int argc, char **argv, struct conf_cli *cli);

/* Defaults, file, overrides, state directory.  Prints every error
 * (file:line:col for file keys) to stderr.  Returns 0 or SV_ERR_CONFIG. */
int conf_build(struct sv_dconf *out, const struct conf_cli *cli);

/* SIGHUP: rebuild and apply the live keys into d->live (bumping
 * d->live_gen) and the log level; log each changed key that needs a
 * restart.  Returns 0 or SV_ERR_CONFIG (nothing applied). */
int conf_reload(struct sv_daemon *d, const struct conf_cli *cli);

/* The live keys of c, as the trainer's starting point. */
void conf_live(const struct sv_dconf *c, struct sv_live *out);

/* The effective configuration as JSON (key -> value).  Returns the length
 * (truncated to cap - 1, NUL-terminated). */
size_t conf_show(const struct sv_dconf *c, char *buf, size_t cap);

#endif
