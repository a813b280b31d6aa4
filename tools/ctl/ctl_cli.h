/* ctl_cli.h - simverifyctl's command line: verbs, options, --help texts and
 * exit codes.
 *
 * Parsing is kept apart from the verbs (like dav1d's tools/dav1d_cli_parse.c)
 * so tests/test_ctl_cli.c can drive it without a daemon.  ctl_cli_parse()
 * turns argv into a struct ctl_opts and checks everything that can be
 * checked without touching a file or a socket: the verb exists, it got the
 * right number of operands, every option is one the verb accepts, numbers
 * parse and lie in range.  It prints help and usage errors itself, to the
 * streams it is given.
 *
 * Command line shape:
 *     simverifyctl [GLOBAL OPTIONS] VERB [SUBVERB] [OPERANDS] [VERB OPTIONS]
 * Options may appear anywhere after the program name (global ones too);
 * "--" ends options, so an operand may start with '-'.  A lone "-" is an
 * operand (standard input).  Long options take "--name VALUE" or
 * "--name=VALUE"; short ones "-k 5" or "-k5".
 *
 * Left out: reading files, resolving endpoints (simverifyctl.c does both).
 */
#ifndef SV_TOOLS_CTL_CLI_H
#define SV_TOOLS_CTL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes.  Scripts may rely on these values; they never change. */
enum ctl_exit {
	CTL_EXIT_OK = 0,      /* the verb did what was asked */
	CTL_EXIT_FAIL = 1,    /* a local failure: unreadable file, bad data, one class missing */
	CTL_EXIT_USAGE = 2,   /* bad command line (unknown verb/option, missing operand) */
	CTL_EXIT_CONNECT = 3, /* no daemon reachable at the endpoint within the timeout */
	CTL_EXIT_REFUSED = 4, /* the daemon answered no: not found, malformed, paused, busy */
	CTL_EXIT_DAEMON = 5,  /* the daemon failed (internal error) or broke the protocol */
};

enum ctl_verb {
	CTL_VERB_NONE = 0, /* "help" with no verb, or --help alone */
	CTL_VERB_STATUS,
	CTL_VERB_METRICS,
	CTL_VERB_CONFIG_SHOW,
	CTL_VERB_CONFIG_CHECK,
	CTL_VERB_CHECKPOINT,
	CTL_VERB_VERSIONS,
	CTL_VERB_ROLLBACK,
	CTL_VERB_PAUSE,
	CTL_VERB_RESUME,
	CTL_VERB_FLUSH,
	CTL_VERB_BACKUP,
	CTL_VERB_RELOAD,
	CTL_VERB_EXPORT_MODEL,
	CTL_VERB_IMPORT_MODEL,
	CTL_VERB_SCORE,
	CTL_VERB_TOPK,
	CTL_VERB_ITEM_PUT,
	CTL_VERB_ITEM_GET,
	CTL_VERB_ITEM_DELETE,
	CTL_VERB_PUBLISH,
	CTL_VERB_EVALUATE,
	CTL_VERB_KEYGEN,
	CTL_VERB_COUNT_
};

/* Defaults. */
#define CTL_DEFAULT_CONFIG "/etc/simverify/simverifyd.yaml"
#define CTL_DEFAULT_TIMEOUT_MS 5000
#define CTL_FLUSH_TIMEOUT_MS 600000 /* flush waits for training, not just an answer */
#define CTL_DEFAULT_BATCH 256
#define CTL_DEFAULT_K 10
#define CTL_MAX_BATCH 65536
#define CTL_MAX_K 100000
#define CTL_MAX_OPERANDS 2

/* The parsed command line.  Strings point into argv (borrowed for the
 * program's life); NULL means "not given". */
struct ctl_opts {
	enum ctl_verb verb;
	bool help; /* help was printed; exit with CTL_EXIT_OK */

	/* finding the daemon */
	const char *config;    /* -c FILE; NULL: $SIMVERIFY_CONFIG, then CTL_DEFAULT_CONFIG */
	const char *state_dir; /* --state-dir DIR */
	const char *admin;     /* --admin ENDPOINT */
	const char *query;     /* --query ENDPOINT */
	const char *ingest;    /* --ingest ENDPOINT (publish without --acked) */
	const char *acked;     /* --acked-endpoint ENDPOINT (publish --acked) */
	int timeout_ms;        /* --timeout SECONDS, per request */
	bool timeout_given;    /* --timeout was on the command line */

	/* operands, in order: e.g. score A B, rollback VERSION, publish VEC PAIRS */
	const char *args[CTL_MAX_OPERANDS];
	int n_args;

	/* verb options */
	bool json;             /* --json */
	bool quiet;            /* -q/--quiet: no progress bar even on a terminal */
	uint32_t k;            /* topk -k K */
	uint64_t version;      /* rollback VERSION, parsed */
	const char *out;       /* item get -o FILE.npy */
	const char *client_id; /* publish --client-id */
	bool ack;              /* publish --acked */
	double rate;           /* publish --rate N pairs/s; 0 = unthrottled */
	bool items_first;      /* publish --items-first */
	bool purge;            /* item delete --purge */
	uint32_t batch;        /* publish/evaluate --batch N pairs per message */
	const char *roc;       /* evaluate --roc FILE.svg */
	const char *scores;    /* evaluate --scores FILE: write the scores */
	const char *baseline;  /* evaluate --baseline FILE: a --scores file, 2nd curve */
	uint64_t limit;        /* publish/evaluate --limit N: only the first N pairs; 0 = all */
};

/* Parse argv (argc entries, argv[0] the program name) into *o.  Prints help
 * to out and usage errors (one line naming the problem, then "Try
 * 'simverifyctl VERB --help'") to err.
 * Returns CTL_EXIT_OK (o->help tells whether help was printed and the
 * program should stop there) or CTL_EXIT_USAGE.  *o is always initialised
 * (defaults first), so a caller may inspect it after a usage error. */
int ctl_cli_parse(struct ctl_opts *o, int argc, char *const argv[], FILE *out, FILE *err);

/* The verb's full name as typed ("config show", "export-model"), or NULL. */
const char *ctl_cli_verb_name(enum ctl_verb v);

/* Print the --help text of verb v (CTL_VERB_NONE: the overview) to f. */
void ctl_cli_help(enum ctl_verb v, FILE *f);

/* A short name for an exit code ("usage", "connection", ...). */
const char *ctl_cli_exit_name(int code);

#endif
