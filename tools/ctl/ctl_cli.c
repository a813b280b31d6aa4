/* ctl_cli.c - simverifyctl's argument parser and help texts (see ctl_cli.h).
 *
 * Two tables drive everything: verbs (name, operands, help) and options
 * (spelling, argument, which verbs accept it).  Nothing here opens a file or
 * a socket.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_cli.h"

#define BIT(v) (1ull << (v))
#define ALL_VERBS (~0ull)

struct verb_def {
	const char *name; /* as typed; two words for subverbs */
	int min_args, max_args;
	const char *operands; /* for the usage line */
	const char *summary;  /* one line, for the overview */
	const char *help;     /* the rest of the --help text */
};

static const struct verb_def verbs[CTL_VERB_COUNT_] = {
    [CTL_VERB_STATUS] =
        {"status", 0, 0, "", "model, training, quality and resource summary",
         "Prints the model version, training steps, pairs seen, stored items, ingest\n"
         "backlog, pairs/s, prequential AUC / EER / TAR@FAR, the decision threshold\n"
         "and its policy, uptime, RSS and store size.  When the daemon reports no\n"
         "rate, pairs/s is measured over one second (status then takes a second).\n"
         "RSS is read from /proc when the daemon runs on this machine.\n"
         "  --json        print one JSON object (the daemon's status document)\n"},
    [CTL_VERB_METRICS] = {"metrics", 0, 0, "",
                          "Prometheus text exposition of the daemon's counters",
                          "Prints the daemon's counters and gauges in the Prometheus text format\n"
                          "(names simverify_*, units in the names, counters end in _total).\n"},
    [CTL_VERB_CONFIG_SHOW] = {"config show", 0, 0, "",
                              "the running daemon's effective configuration",
                              "Prints the configuration the daemon is running with, every key.\n"
                              "  --json        print it as JSON\n"},
    [CTL_VERB_CONFIG_CHECK] =
        {"config check", 1, 1, "FILE", "validate a config file (no daemon needed)",
         "Parses FILE as a simverifyd configuration and reports every error as\n"
         "file:line:col.  Exit 0 when valid, 1 otherwise.  Does not contact the daemon.\n"},
    [CTL_VERB_CHECKPOINT] =
        {"checkpoint", 0, 0, "", "commit the model now as a new version",
         "Asks the daemon to write a checkpoint now; prints the new version.\n"},
    [CTL_VERB_VERSIONS] =
        {"versions", 0, 0, "", "list stored model versions",
         "Lists the model versions kept in the store (version, steps, time, loss).\n"
         "  --json        print the daemon's JSON document\n"},
    [CTL_VERB_ROLLBACK] = {"rollback", 1, 1, "VERSION", "make a stored version the live model",
                           "Loads stored model VERSION and serves and trains it from now on.\n"},
    [CTL_VERB_PAUSE] =
        {"pause", 0, 0, "", "stop learning (queries keep answering)",
         "Stops training steps.  Queries keep being answered with the current model.\n"},
    [CTL_VERB_RESUME] = {"resume", 0, 0, "", "resume learning after pause",
                         "Resumes training after 'pause'.\n"},
    [CTL_VERB_FLUSH] = {"flush", 0, 0, "", "wait until every pair received so far is trained on",
                        "Returns once every pair the daemon received before the request has been\n"
                        "trained on and committed.  Waits up to 600 s for the answer unless\n"
                        "--timeout says otherwise (connecting still times out after 5 s).\n"},
    [CTL_VERB_BACKUP] =
        {"backup", 1, 1, "PATH", "hot copy of the store to PATH (on the daemon's host)",
         "Writes a consistent copy of the LMDB store to PATH, a path on the daemon's\n"
         "machine, while the daemon keeps running.\n"},
    [CTL_VERB_RELOAD] =
        {"reload", 0, 0, "", "re-read the daemon's config file",
         "Asks the daemon to re-read its configuration (like SIGHUP) and apply the\n"
         "keys that can change at run time.\n"},
    [CTL_VERB_EXPORT_MODEL] =
        {"export-model", 1, 1, "FILE.npy", "save W as .npy plus a JSON sidecar",
         "Writes the live projection W (d_in x d_out float32) to FILE.npy, which\n"
         "numpy.load reads, and FILE.json beside it: dims, loss, mode, threshold,\n"
         "version.\n"},
    [CTL_VERB_IMPORT_MODEL] =
        {"import-model", 1, 1, "FILE.npy", "load W from .npy as a new version",
         "Sends the d_in x d_out float32 matrix in FILE.npy to the daemon, which checks\n"
         "its dimensions and makes it the live model as a new version.\n"},
    [CTL_VERB_SCORE] = {"score", 2, 2, "A B", "are A and B the same?",
                        "Scores one pair.  A and B are item ids, '@FILE.npy' for a vector from a\n"
                        "file (one row) or '-' for a .npy vector on standard input (once).\n"
                        "Prints score, threshold, decision and model version.\n"
                        "  --json        print one JSON object\n"},
    [CTL_VERB_TOPK] = {"topk", 1, 1, "A", "the K stored items most similar to A",
                       "A is an item id, '@FILE.npy' or '-' (see score).\n"
                       "  -k, --k K     number of hits (default 10)\n"
                       "  --json        print a JSON array of {id, score}\n"},
    [CTL_VERB_ITEM_PUT] =
        {"item put", 2, 2, "ID VECTOR", "store (or replace) an item",
         "Stores item ID with VECTOR: '@FILE.npy' (one row, d_in floats) or '-' for\n"
         "a .npy on standard input.\n"},
    [CTL_VERB_ITEM_GET] = {"item get", 1, 1, "ID", "fetch an item's stored vector",
                           "Prints item ID's vector, one value per line, or writes it as .npy.\n"
                           "  -o, --out FILE.npy   write the vector to FILE.npy instead\n"},
    [CTL_VERB_ITEM_DELETE] = {"item delete", 1, 1, "ID", "delete an item",
                              "Deletes item ID from the store.\n"
                              "  --purge    also erase every retained log row naming ID (and\n"
                              "             the inline vectors only those rows used); what the\n"
                              "             model learned from them stays\n"},
    [CTL_VERB_PUBLISH] =
        {"publish", 2, 2, "VECFILE PAIRFILE", "stream a pair file to the daemon",
         "Streams every pair of PAIRFILE (vectors from VECFILE; formats in\n"
         "shared/data/README.md) to the daemon's ingest endpoint, with a progress\n"
         "bar on a terminal.  Each pair carries (client id, record index), so\n"
         "publishing the same files again never stores a pair twice.\n"
         "  --acked            wait for durable acks; resend what was not acked\n"
         "  --client-id ID     a publisher's client id: go on from the daemon's next\n"
         "                     seq for it (default: an id derived from the two files)\n"
         "  --rate N           at most N pairs per second\n"
         "  --items-first      upsert every vector once as an item, then send\n"
         "                     id-only pairs\n"
         "  --batch N          pairs per message (default 256; any N when re-publishing)\n"
         "  --limit N          only the first N pairs\n"
         "  -q, --quiet        no progress bar\n"},
    [CTL_VERB_EVALUATE] =
        {"evaluate", 2, 2, "VECFILE PAIRFILE", "ROC metrics of the live model on a pair file",
         "Scores every pair of PAIRFILE through the daemon (SCORE_BATCH) and prints\n"
         "AUC, EER, TAR at FAR 1e-2 and 1e-3 with the threshold each implies, and\n"
         "the accuracy at the daemon's current threshold.  Both labels must occur.\n"
         "  --json             print one JSON object\n"
         "  --roc FILE.svg     draw the ROC curve (log FAR axis), operating point marked\n"
         "  --scores FILE      write the scores, one a line, after a '# model vN' line\n"
         "  --baseline FILE    a --scores file of the same pairs (e.g. before training):\n"
         "                     its curve is drawn beside this one in --roc\n"
         "  --batch N          pairs per request (default 256)\n"
         "  --limit N          only the first N pairs\n"},
    [CTL_VERB_KEYGEN] =
        {"keygen", 1, 1, "BASE", "write a CURVE key pair: BASE.key (secret, 0600) and BASE.pub",
         "Makes a CurveZMQ key pair (docs/SECURITY.md) for the daemon\n"
         "(security.curve_server_key = BASE.key) or for a client (put BASE.pub on\n"
         "the daemon's allow-list).  Prints the public key.  Refuses to overwrite\n"
         "an existing BASE.key or BASE.pub.  Needs no daemon.\n"},
};

enum opt_id {
	OPT_HELP,
	OPT_CONFIG,
	OPT_STATE_DIR,
	OPT_ADMIN,
	OPT_QUERY,
	OPT_INGEST,
	OPT_ACKED_EP,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_QUIET,
	OPT_K,
	OPT_OUT,
	OPT_CLIENT_ID,
	OPT_ACKED,
	OPT_RATE,
	OPT_ITEMS_FIRST,
	OPT_PURGE,
	OPT_BATCH,
	OPT_ROC,
	OPT_LIMIT,
	OPT_SCORES,
	OPT_BASELINE,
};

struct opt_def {
	const char *lng;
	char shrt;
	bool arg;
	uint64_t verbs; /* bit per enum ctl_verb that accepts it */
	enum opt_id id;
};

#define DAEMON_VERBS (ALL_VERBS & ~BIT(CTL_VERB_CONFIG_CHECK) & ~BIT(CTL_VERB_KEYGEN))

static const struct opt_def opts[] = {
    {"help", 'h', false, ALL_VERBS, OPT_HELP},
    {"config", 'c', true, DAEMON_VERBS, OPT_CONFIG},
    {"state-dir", 0, true, DAEMON_VERBS, OPT_STATE_DIR},
    {"admin", 0, true, DAEMON_VERBS, OPT_ADMIN},
    {"query", 0, true, DAEMON_VERBS, OPT_QUERY},
    {"ingest", 0, true, DAEMON_VERBS, OPT_INGEST},
    {"acked-endpoint", 0, true, DAEMON_VERBS, OPT_ACKED_EP},
    {"timeout", 't', true, DAEMON_VERBS, OPT_TIMEOUT},
    {"json", 0, false,
     BIT(CTL_VERB_STATUS) | BIT(CTL_VERB_CONFIG_SHOW) | BIT(CTL_VERB_VERSIONS) |
         BIT(CTL_VERB_SCORE) | BIT(CTL_VERB_TOPK) | BIT(CTL_VERB_EVALUATE),
     OPT_JSON},
    {"quiet", 'q', false, BIT(CTL_VERB_PUBLISH) | BIT(CTL_VERB_EVALUATE), OPT_QUIET},
    {"k", 'k', true, BIT(CTL_VERB_TOPK), OPT_K},
    {"out", 'o', true, BIT(CTL_VERB_ITEM_GET), OPT_OUT},
    {"client-id", 0, true, BIT(CTL_VERB_PUBLISH), OPT_CLIENT_ID},
    {"acked", 0, false, BIT(CTL_VERB_PUBLISH), OPT_ACKED},
    {"rate", 0, true, BIT(CTL_VERB_PUBLISH), OPT_RATE},
    {"items-first", 0, false, BIT(CTL_VERB_PUBLISH), OPT_ITEMS_FIRST},
    {"purge", 0, false, BIT(CTL_VERB_ITEM_DELETE), OPT_PURGE},
    {"batch", 0, true, BIT(CTL_VERB_PUBLISH) | BIT(CTL_VERB_EVALUATE), OPT_BATCH},
    {"roc", 0, true, BIT(CTL_VERB_EVALUATE), OPT_ROC},
    {"limit", 0, true, BIT(CTL_VERB_PUBLISH) | BIT(CTL_VERB_EVALUATE), OPT_LIMIT},
    {"scores", 0, true, BIT(CTL_VERB_EVALUATE), OPT_SCORES},
    {"baseline", 0, true, BIT(CTL_VERB_EVALUATE), OPT_BASELINE},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char global_help[] =
    "Finding the daemon (default: the endpoints in the daemon's config file):\n"
    "  -c, --config FILE        the daemon's config (default $SIMVERIFY_CONFIG,\n"
    "                           else " CTL_DEFAULT_CONFIG ")\n"
    "  --state-dir DIR          a daemon started with --state-dir DIR\n"
    "  --admin ENDPOINT         admin endpoint (status, checkpoint, ...)\n"
    "  --query ENDPOINT         query endpoint (score, topk, item, evaluate)\n"
    "  --ingest ENDPOINT        ingest endpoint (publish)\n"
    "  --acked-endpoint EP      acked ingest endpoint (publish --acked)\n"
    "  -t, --timeout SECONDS    per request (default 5)\n"
    "  -h, --help               this text; VERB --help for a verb\n";

static const char exit_help[] =
    "Exit codes: 0 ok, 1 local failure (file, data), 2 usage, 3 cannot reach the\n"
    "daemon, 4 refused by the daemon, 5 daemon error or protocol violation.\n";

const char *ctl_cli_verb_name(enum ctl_verb v)
{
	if (v <= CTL_VERB_NONE || v >= CTL_VERB_COUNT_)
		return NULL;
	return verbs[v].name;
}

const char *ctl_cli_exit_name(int code)
{
	switch (code) {
	case CTL_EXIT_OK:
		return "ok";
	case CTL_EXIT_FAIL:
		return "failure";
	case CTL_EXIT_USAGE:
		return "usage";
	case CTL_EXIT_CONNECT:
		return "connection";
	case CTL_EXIT_REFUSED:
		return "refused";
	case CTL_EXIT_DAEMON:
		return "daemon error";
	default:
		return "unknown";
	}
}

void ctl_cli_help(enum ctl_verb v, FILE *f)
{
	if (v <= CTL_VERB_NONE || v >= CTL_VERB_COUNT_) {
		fputs("Usage: simverifyctl [OPTIONS] VERB [OPERANDS] [VERB OPTIONS]\n"
		      "Control and query a running simverifyd.\n\nVerbs:\n",
		      f);
		for (int i = 1; i < CTL_VERB_COUNT_; i++) {
			char left[64];

			snprintf(left, sizeof(left), "%s %s", verbs[i].name, verbs[i].operands);
			fprintf(f, "  %-30s %s\n", left, verbs[i].summary);
		}
		fputc('\n', f);
		fputs(global_help, f);
		fputc('\n', f);
		fputs(exit_help, f);
		return;
	}
	fprintf(f, "Usage: simverifyctl %s%s%s [OPTIONS]\n%s.\n\n%s\n", verbs[v].name,
	        *verbs[v].operands ? " " : "", verbs[v].operands, verbs[v].summary, verbs[v].help);
	if (v != CTL_VERB_CONFIG_CHECK && v != CTL_VERB_KEYGEN)
		fputs(global_help, f);
	fputc('\n', f);
	fputs(exit_help, f);
}

/* Help for a verb group ("config", "item") typed without its subverb. */
static void group_help(const char *group, FILE *f)
{
	size_t gl = strlen(group);

	fprintf(f, "Usage: simverifyctl %s SUBVERB ...\n\n", group);
	for (int i = 1; i < CTL_VERB_COUNT_; i++) {
		if (strncmp(verbs[i].name, group, gl) == 0 && verbs[i].name[gl] == ' ') {
			char left[64];

			snprintf(left, sizeof(left), "%s %s", verbs[i].name, verbs[i].operands);
			fprintf(f, "  %-30s %s\n", left, verbs[i].summary);
		}
	}
}

static bool is_group(const char *w)
{
	return strcmp(w, "config") == 0 || strcmp(w, "item") == 0;
}

static enum ctl_verb find_verb(const char *w1, const char *w2)
{
	for (int i = 1; i < CTL_VERB_COUNT_; i++) {
		const char *n = verbs[i].name, *sp = strchr(n, ' ');

		if (!sp) {
			if (!w2 && strcmp(n, w1) == 0)
				return (enum ctl_verb)i;
		} else if (w2 && strlen(w1) == (size_t)(sp - n) &&
		           strncmp(n, w1, (size_t)(sp - n)) == 0 && strcmp(sp + 1, w2) == 0) {
			return (enum ctl_verb)i;
		}
	}
	return CTL_VERB_NONE;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_pos_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v <= 0)
		return false;
	*out = v;
	return true;
}

static void defaults(struct ctl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	o->k = CTL_DEFAULT_K;
	o->batch = CTL_DEFAULT_BATCH;
}

/* One option occurrence, recorded until the verb is known. */
struct seen {
	const struct opt_def *def;
	const char *val;
	const char *spelled; /* as typed, for messages */
};

static int usage_error(FILE *err, enum ctl_verb v, const char *fmt, const char *a, const char *b)
{
	fputs("simverifyctl: ", err);
	fprintf(err, fmt, a, b);
	fputc('\n', err);
	if (v != CTL_VERB_NONE)
		fprintf(err, "Try 'simverifyctl %s --help'.\n", verbs[v].name);
	else
		fputs("Try 'simverifyctl --help'.\n", err);
	return CTL_EXIT_USAGE;
}

static int apply(struct ctl_opts *o, const struct seen *s, FILE *err)
{
	uint64_t u;
	enum ctl_verb v = o->verb;

	switch (s->def->id) {
	case OPT_HELP:
		o->help = true;
		break;
	case OPT_CONFIG:
		o->config = s->val;
		break;
	case OPT_STATE_DIR:
		o->state_dir = s->val;
		break;
	case OPT_ADMIN:
		o->admin = s->val;
		break;
	case OPT_QUERY:
		o->query = s->val;
		break;
	case OPT_INGEST:
		o->ingest = s->val;
		break;
	case OPT_ACKED_EP:
		o->acked = s->val;
		break;
	case OPT_TIMEOUT: {
		double sec;

		if (!parse_pos_double(s->val, &sec) || sec > 86400.0 * 7)
			return usage_error(err, v,
			                   "%s: '%s' is not a time in seconds (0 < t <= 604800)",
			                   s->spelled, s->val);
		o->timeout_ms = sec * 1000 < 1 ? 1 : (int)(sec * 1000);
		o->timeout_given = true;
		break;
	}
	case OPT_JSON:
		o->json = true;
		break;
	case OPT_QUIET:
		o->quiet = true;
		break;
	case OPT_K:
		if (!parse_u64(s->val, 1, CTL_MAX_K, &u))
			return usage_error(err, v, "%s: '%s' is not a count in 1..100000",
			                   s->spelled, s->val);
		o->k = (uint32_t)u;
		break;
	case OPT_OUT:
		o->out = s->val;
		break;
	case OPT_CLIENT_ID:
		if (!*s->val || strlen(s->val) > 255)
			return usage_error(err, v, "%s: the client id must be 1..255 bytes%s",
			                   s->spelled, "");
		o->client_id = s->val;
		break;
	case OPT_ACKED:
		o->ack = true;
		break;
	case OPT_RATE:
		if (!parse_pos_double(s->val, &o->rate))
			return usage_error(err, v, "%s: '%s' is not a positive rate in pairs/s",
			                   s->spelled, s->val);
		break;
	case OPT_ITEMS_FIRST:
		o->items_first = true;
		break;
	case OPT_PURGE:
		o->purge = true;
		break;
	case OPT_BATCH:
		if (!parse_u64(s->val, 1, CTL_MAX_BATCH, &u))
			return usage_error(err, v, "%s: '%s' is not a count in 1..65536",
			                   s->spelled, s->val);
		o->batch = (uint32_t)u;
		break;
	case OPT_ROC:
		o->roc = s->val;
		break;
	case OPT_SCORES:
		o->scores = s->val;
		break;
	case OPT_BASELINE:
		o->baseline = s->val;
		break;
	case OPT_LIMIT:
		if (!parse_u64(s->val, 1, UINT64_MAX, &o->limit))
			return usage_error(err, v, "%s: '%s' is not a positive count", s->spelled,
			                   s->val);
		break;
	}
	return CTL_EXIT_OK;
}

int ctl_cli_parse(struct ctl_opts *o, int argc, char *const argv[], FILE *out, FILE *err)
{
	struct seen seen[64];
	const char *words[8];
	int n_seen = 0, n_words = 0, w0 = 0, rc = CTL_EXIT_OK;
	bool help = false, dashdash = false;
	char spelled[2][64];
	enum ctl_verb v = CTL_VERB_NONE;
	const struct verb_def *vd;

	defaults(o);
	if (!argv || argc < 1)
		return usage_error(err, CTL_VERB_NONE, "no arguments%s%s", "", "");

	/* Pass 1: split options from words. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt_def *d = NULL;
		const char *val = NULL;

		if (dashdash || a[0] != '-' || a[1] == '\0') {
			if (n_words == (int)(sizeof(words) / sizeof(words[0])))
				return usage_error(err, CTL_VERB_NONE,
				                   "too many operands (at '%s')%s", a, "");
			words[n_words++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t nl = eq ? (size_t)(eq - name) : strlen(name);

			for (size_t j = 0; j < N_OPTS; j++)
				if (strlen(opts[j].lng) == nl &&
				    strncmp(opts[j].lng, name, nl) == 0)
					d = &opts[j];
			if (!d)
				return usage_error(err, CTL_VERB_NONE, "unknown option '%s'%s", a,
				                   "");
			if (eq && !d->arg)
				return usage_error(err, CTL_VERB_NONE,
				                   "option '--%s' takes no value%s", d->lng, "");
			if (d->arg)
				val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		} else {
			for (size_t j = 0; j < N_OPTS; j++)
				if (opts[j].shrt && opts[j].shrt == a[1])
					d = &opts[j];
			if (!d)
				return usage_error(err, CTL_VERB_NONE, "unknown option '%s'%s", a,
				                   "");
			if (!d->arg && a[2])
				return usage_error(err, CTL_VERB_NONE,
				                   "option '%s' takes no value%s", a, "");
			if (d->arg)
				val = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
		}
		if (d->arg && !val)
			return usage_error(err, CTL_VERB_NONE, "option '%s' needs a value%s", a,
			                   "");
		if (d->id == OPT_HELP) {
			help = true;
			continue;
		}
		if (n_seen == (int)(sizeof(seen) / sizeof(seen[0])))
			return usage_error(err, CTL_VERB_NONE, "too many options%s%s", "", "");
		seen[n_seen].def = d;
		seen[n_seen].val = val;
		seen[n_seen].spelled = a;
		n_seen++;
	}

	/* The verb: "help [VERB...]" or VERB [SUBVERB]. */
	if (n_words > 0 && strcmp(words[0], "help") == 0) {
		help = true;
		w0 = 1;
	}
	if (n_words > w0) {
		const char *w1 = words[w0], *w2 = n_words > w0 + 1 ? words[w0 + 1] : NULL;

		if (is_group(w1)) {
			if (!w2) {
				if (help) {
					group_help(w1, out);
					o->help = true;
					return CTL_EXIT_OK;
				}
				usage_error(err, CTL_VERB_NONE, "'%s' needs a subverb%s", w1, "");
				group_help(w1, err);
				return CTL_EXIT_USAGE;
			}
			v = find_verb(w1, w2);
			if (v == CTL_VERB_NONE)
				return usage_error(err, CTL_VERB_NONE, "unknown verb '%s %s'", w1,
				                   w2);
			w0 += 2;
		} else {
			v = find_verb(w1, NULL);
			if (v == CTL_VERB_NONE)
				return usage_error(err, CTL_VERB_NONE, "unknown verb '%s'%s", w1,
				                   "");
			w0 += 1;
		}
	}
	o->verb = v;
	if (help) {
		ctl_cli_help(v, out);
		o->help = true;
		return CTL_EXIT_OK;
	}
	if (v == CTL_VERB_NONE)
		return usage_error(err, CTL_VERB_NONE, "no verb given%s%s", "", "");
	vd = &verbs[v];

	/* Operands. */
	if (n_words - w0 < vd->min_args || n_words - w0 > vd->max_args) {
		if (n_words - w0 > vd->max_args)
			return usage_error(err, v, "'%s': unexpected operand '%s'", vd->name,
			                   words[w0 + vd->max_args]);
		snprintf(spelled[0], sizeof(spelled[0]), "%s", vd->operands);
		return usage_error(err, v, "'%s' needs %s", vd->name, spelled[0]);
	}
	for (int i = w0; i < n_words; i++)
		o->args[o->n_args++] = words[i];
	if (v == CTL_VERB_ROLLBACK && !parse_u64(o->args[0], 1, UINT64_MAX, &o->version))
		return usage_error(err, v, "rollback: '%s' is not a version number%s", o->args[0],
		                   "");
	if (v == CTL_VERB_TOPK || v == CTL_VERB_SCORE || v == CTL_VERB_ITEM_PUT) {
		int dashes = 0;

		for (int i = 0; i < o->n_args; i++)
			dashes += strcmp(o->args[i], "-") == 0;
		if (dashes > 1)
			return usage_error(err, v, "standard input ('-') can be read only once%s%s",
			                   "", "");
		if (v == CTL_VERB_ITEM_PUT &&
		    (strcmp(o->args[0], "-") == 0 || o->args[0][0] == '@'))
			return usage_error(err, v, "item put: '%s' is not an item id%s", o->args[0],
			                   "");
	}

	/* Options, now that the verb is known. */
	for (int i = 0; i < n_seen; i++) {
		if (!(seen[i].def->verbs & BIT(v))) {
			snprintf(spelled[1], sizeof(spelled[1]), "%s", seen[i].spelled);
			return usage_error(err, v, "'%s' does not take option '%s'", vd->name,
			                   spelled[1]);
		}
		rc = apply(o, &seen[i], err);
		if (rc)
			return rc;
	}
	if (o->baseline && !o->roc)
		return usage_error(err, v, "evaluate: --baseline is drawn only with --roc%s%s", "",
		                   "");
	return CTL_EXIT_OK;
}
