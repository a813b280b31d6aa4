/* test_ctl_cli.c - simverifyctl's argument parser (tools/ctl/ctl_cli.c): every
 * verb and option parses, bad usage gives CTL_EXIT_USAGE with a message on
 * stderr, --help prints to stdout and stops.  No daemon involved. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <string.h>

#include "ctl_cli.h"

/* Captured streams of the last parse. */
static char out_buf[16384], err_buf[4096];

/* Parse a NULL-terminated list of words after the program name. */
static int parse(struct ctl_opts *o, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;
	FILE *out, *err;
	int rc;

	argv[argc++] = "simverifyctl";
	va_start(ap, o);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	memset(out_buf, 0, sizeof(out_buf));
	memset(err_buf, 0, sizeof(err_buf));
	out = fmemopen(out_buf, sizeof(out_buf) - 1, "w");
	err = fmemopen(err_buf, sizeof(err_buf) - 1, "w");
	cr_assert(out && err);
	rc = ctl_cli_parse(o, argc, argv, out, err);
	fclose(out);
	fclose(err);
	return rc;
}

static void assert_usage(int rc, const char *needle)
{
	cr_assert_eq(rc, CTL_EXIT_USAGE, "rc %d, stderr: %s", rc, err_buf);
	cr_assert_not_null(strstr(err_buf, needle), "stderr '%s' lacks '%s'", err_buf, needle);
	cr_assert_eq(out_buf[0], '\0', "usage errors print nothing on stdout");
}

Test(ctl_cli, exit_codes_are_distinct_and_stable)
{
	cr_assert_eq(CTL_EXIT_OK, 0);
	cr_assert_eq(CTL_EXIT_FAIL, 1);
	cr_assert_eq(CTL_EXIT_USAGE, 2);
	cr_assert_eq(CTL_EXIT_CONNECT, 3);
	cr_assert_eq(CTL_EXIT_REFUSED, 4);
	cr_assert_eq(CTL_EXIT_DAEMON, 5);
	cr_assert_str_eq(ctl_cli_exit_name(CTL_EXIT_CONNECT), "connection");
	cr_assert_str_eq(ctl_cli_exit_name(99), "unknown");
}

Test(ctl_cli, every_verb_parses_with_its_operands)
{
	static const struct {
		enum ctl_verb v;
		const char *w[5];
	} cases[] = {
	    {CTL_VERB_STATUS, {"status"}},
	    {CTL_VERB_METRICS, {"metrics"}},
	    {CTL_VERB_CONFIG_SHOW, {"config", "show"}},
	    {CTL_VERB_CONFIG_CHECK, {"config", "check", "x.yaml"}},
	    {CTL_VERB_CHECKPOINT, {"checkpoint"}},
	    {CTL_VERB_VERSIONS, {"versions"}},
	    {CTL_VERB_ROLLBACK, {"rollback", "7"}},
	    {CTL_VERB_PAUSE, {"pause"}},
	    {CTL_VERB_RESUME, {"resume"}},
	    {CTL_VERB_FLUSH, {"flush"}},
	    {CTL_VERB_BACKUP, {"backup", "/tmp/b"}},
	    {CTL_VERB_RELOAD, {"reload"}},
	    {CTL_VERB_EXPORT_MODEL, {"export-model", "w.npy"}},
	    {CTL_VERB_IMPORT_MODEL, {"import-model", "w.npy"}},
	    {CTL_VERB_SCORE, {"score", "a", "@b.npy"}},
	    {CTL_VERB_TOPK, {"topk", "-"}},
	    {CTL_VERB_ITEM_PUT, {"item", "put", "x", "@v.npy"}},
	    {CTL_VERB_ITEM_GET, {"item", "get", "x"}},
	    {CTL_VERB_ITEM_DELETE, {"item", "delete", "x"}},
	    {CTL_VERB_PUBLISH, {"publish", "a.vec", "a.pairs"}},
	    {CTL_VERB_EVALUATE, {"evaluate", "a.vec", "a.pairs"}},
	    {CTL_VERB_KEYGEN, {"keygen", "server"}},
	};

	cr_assert_eq(sizeof(cases) / sizeof(cases[0]), CTL_VERB_COUNT_ - 1, "a verb is untested");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ctl_opts o;
		char *argv[8] = {"simverifyctl"};
		int argc = 1, words = 0;
		FILE *null = fopen("/dev/null", "w");

		for (; words < 5 && cases[i].w[words]; words++)
			argv[argc++] = (char *)cases[i].w[words];
		cr_assert_eq(ctl_cli_parse(&o, argc, argv, null, null), CTL_EXIT_OK, "%s",
		             ctl_cli_verb_name(cases[i].v));
		fclose(null);
		cr_assert_eq(o.verb, cases[i].v);
		cr_assert_not(o.help);
		cr_assert_eq(o.timeout_ms, CTL_DEFAULT_TIMEOUT_MS);
		cr_assert_not(o.timeout_given);
		/* the operands are the words after the verb's name */
		{
			const char *name = ctl_cli_verb_name(cases[i].v);
			int name_words = strchr(name, ' ') ? 2 : 1;

			cr_assert_eq(o.n_args, words - name_words, "%s", name);
			for (int a = 0; a < o.n_args; a++)
				cr_assert_str_eq(o.args[a], cases[i].w[name_words + a]);
		}
	}
}

Test(ctl_cli, global_options_anywhere_both_spellings)
{
	struct ctl_opts o;

	cr_assert_eq(parse(&o, "-c", "/etc/x.yaml", "status", "--json", "--timeout=2.5",
	                   "--state-dir", "/s", "--admin", "ipc:///a", "--query=ipc:///q",
	                   "--ingest", "tcp://h:1", "--acked-endpoint", "tcp://h:2", NULL),
	             CTL_EXIT_OK, "%s", err_buf);
	cr_assert_eq(o.verb, CTL_VERB_STATUS);
	cr_assert_str_eq(o.config, "/etc/x.yaml");
	cr_assert_str_eq(o.state_dir, "/s");
	cr_assert_str_eq(o.admin, "ipc:///a");
	cr_assert_str_eq(o.query, "ipc:///q");
	cr_assert_str_eq(o.ingest, "tcp://h:1");
	cr_assert_str_eq(o.acked, "tcp://h:2");
	cr_assert_eq(o.timeout_ms, 2500);
	cr_assert(o.timeout_given);
	cr_assert(o.json);
	cr_assert_eq(parse(&o, "status", "-t0.001", "-c/x", NULL), CTL_EXIT_OK);
	cr_assert_eq(o.timeout_ms, 1);
	cr_assert_str_eq(o.config, "/x");
}

Test(ctl_cli, verb_options_parse)
{
	struct ctl_opts o;

	cr_assert_eq(parse(&o, "topk", "q1", "-k", "25", "--json", NULL), CTL_EXIT_OK);
	cr_assert_eq(o.k, 25);
	cr_assert(o.json);
	cr_assert_eq(parse(&o, "topk", "q1", "-k3", NULL), CTL_EXIT_OK);
	cr_assert_eq(o.k, 3);
	cr_assert_eq(parse(&o, "topk", "q1", "--k=4", NULL), CTL_EXIT_OK);
	cr_assert_eq(o.k, 4);
	cr_assert_eq(parse(&o, "topk", "q1", NULL), CTL_EXIT_OK);
	cr_assert_eq(o.k, CTL_DEFAULT_K);

	cr_assert_eq(parse(&o, "publish", "v", "p", "--acked", "--client-id", "svc-1", "--rate",
	                   "1e4", "--items-first", "--batch", "64", "--limit", "1000", "-q", NULL),
	             CTL_EXIT_OK, "%s", err_buf);
	cr_assert(o.ack);
	cr_assert_str_eq(o.client_id, "svc-1");
	cr_assert_float_eq(o.rate, 1e4, 1e-9);
	cr_assert(o.items_first);
	cr_assert_eq(o.batch, 64);
	cr_assert_eq(o.limit, 1000);
	cr_assert(o.quiet);
	cr_assert_eq(parse(&o, "publish", "v", "p", NULL), CTL_EXIT_OK);
	cr_assert_not(o.ack);
	cr_assert_null(o.client_id);
	cr_assert_eq(o.rate, 0.0);
	cr_assert_eq(o.batch, CTL_DEFAULT_BATCH);

	cr_assert_eq(
	    parse(&o, "evaluate", "v", "p", "--json", "--roc", "r.svg", "--batch=1000", NULL),
	    CTL_EXIT_OK);
	cr_assert_str_eq(o.roc, "r.svg");
	cr_assert_eq(o.batch, 1000);
	cr_assert(o.json);

	cr_assert_eq(parse(&o, "item", "get", "x", "-o", "x.npy", NULL), CTL_EXIT_OK);
	cr_assert_str_eq(o.out, "x.npy");
	cr_assert_eq(parse(&o, "rollback", "18446744073709551615", NULL), CTL_EXIT_OK);
	cr_assert_eq(o.version, UINT64_MAX);
}

Test(ctl_cli, double_dash_lets_operands_start_with_dash)
{
	struct ctl_opts o;

	cr_assert_eq(parse(&o, "item", "delete", "--", "-weird-id", NULL), CTL_EXIT_OK);
	cr_assert_str_eq(o.args[0], "-weird-id");
	cr_assert_eq(parse(&o, "score", "a", "-", NULL), CTL_EXIT_OK);
	cr_assert_str_eq(o.args[1], "-");
}

Test(ctl_cli, bad_usage_is_usage_exit_code)
{
	struct ctl_opts o;

	assert_usage(parse(&o, NULL), "no verb");
	assert_usage(parse(&o, "frobnicate", NULL), "unknown verb 'frobnicate'");
	assert_usage(parse(&o, "config", NULL), "needs a subverb");
	assert_usage(parse(&o, "config", "frob", NULL), "unknown verb 'config frob'");
	assert_usage(parse(&o, "item", "put", "x", NULL), "needs ID VECTOR");
	assert_usage(parse(&o, "score", "a", NULL), "needs A B");
	assert_usage(parse(&o, "status", "extra", NULL), "unexpected operand 'extra'");
	assert_usage(parse(&o, "rollback", NULL), "needs VERSION");
	assert_usage(parse(&o, "rollback", "v1", NULL), "not a version number");
	assert_usage(parse(&o, "rollback", "0", NULL), "not a version number");
	assert_usage(parse(&o, "status", "--frob", NULL), "unknown option '--frob'");
	assert_usage(parse(&o, "status", "-z", NULL), "unknown option '-z'");
	assert_usage(parse(&o, "status", "-c", NULL), "needs a value");
	assert_usage(parse(&o, "status", "--json=yes", NULL), "takes no value");
	assert_usage(parse(&o, "status", "-k", "5", NULL), "'status' does not take option '-k'");
	assert_usage(parse(&o, "pause", "--json", NULL), "does not take option '--json'");
	assert_usage(parse(&o, "config", "check", "f", "--admin", "x", NULL),
	             "does not take option '--admin'");
	assert_usage(parse(&o, "topk", "a", "-k", "0", NULL), "not a count");
	assert_usage(parse(&o, "topk", "a", "-k", "-3", NULL), "not a count");
	assert_usage(parse(&o, "topk", "a", "-k", "12x", NULL), "not a count");
	assert_usage(parse(&o, "publish", "v", "p", "--rate", "0", NULL), "not a positive rate");
	assert_usage(parse(&o, "publish", "v", "p", "--rate", "nan", NULL), "not a positive rate");
	assert_usage(parse(&o, "publish", "v", "p", "--batch", "70000", NULL), "not a count");
	assert_usage(parse(&o, "publish", "v", "p", "--client-id=", NULL), "1..255 bytes");
	assert_usage(parse(&o, "status", "--timeout", "-1", NULL), "not a time");
	assert_usage(parse(&o, "status", "--timeout", "abc", NULL), "not a time");
	assert_usage(parse(&o, "score", "-", "-", NULL), "only once");
	assert_usage(parse(&o, "item", "put", "@x.npy", "@y.npy", NULL), "not an item id");
	/* the hint names the verb */
	assert_usage(parse(&o, "topk", NULL), "Try 'simverifyctl topk --help'");
}

Test(ctl_cli, help_prints_to_stdout_and_stops)
{
	struct ctl_opts o;

	cr_assert_eq(parse(&o, "--help", NULL), CTL_EXIT_OK);
	cr_assert(o.help);
	cr_assert_eq(o.verb, CTL_VERB_NONE);
	cr_assert_not_null(strstr(out_buf, "Verbs:"));
	for (int v = 1; v < CTL_VERB_COUNT_; v++)
		cr_assert_not_null(strstr(out_buf, ctl_cli_verb_name(v)),
		                   "%s missing from overview", ctl_cli_verb_name(v));
	cr_assert_not_null(strstr(out_buf, "Exit codes"));
	cr_assert_eq(err_buf[0], '\0');

	cr_assert_eq(parse(&o, "help", NULL), CTL_EXIT_OK);
	cr_assert(o.help);
	cr_assert_eq(parse(&o, "-h", NULL), CTL_EXIT_OK);
	cr_assert(o.help);
}

Test(ctl_cli, every_verb_has_help)
{
	for (int v = 1; v < CTL_VERB_COUNT_; v++) {
		const char *name = ctl_cli_verb_name(v), *sp = strchr(name, ' ');
		struct ctl_opts o;
		char w1[32] = "", *w2 = NULL;
		int rc;

		snprintf(w1, sizeof(w1), "%.*s", sp ? (int)(sp - name) : (int)strlen(name), name);
		if (sp)
			w2 = (char *)sp + 1;
		/* VERB --help, with operands missing: help wins over usage errors. */
		rc = w2 ? parse(&o, w1, w2, "--help", NULL) : parse(&o, w1, "--help", NULL);
		cr_assert_eq(rc, CTL_EXIT_OK, "%s: %s", name, err_buf);
		cr_assert(o.help);
		cr_assert_eq(o.verb, v);
		cr_assert_not_null(strstr(out_buf, "Usage: simverifyctl "), "%s", name);
		cr_assert_not_null(strstr(out_buf, name), "%s", name);
		/* help VERB says the same */
		{
			char first[sizeof(out_buf)];

			strcpy(first, out_buf);
			rc = w2 ? parse(&o, "help", w1, w2, NULL) : parse(&o, "help", w1, NULL);
			cr_assert_eq(rc, CTL_EXIT_OK);
			cr_assert_str_eq(out_buf, first);
		}
	}
	{
		struct ctl_opts o;

		cr_assert_eq(parse(&o, "item", "--help", NULL), CTL_EXIT_OK);
		cr_assert_not_null(strstr(out_buf, "item delete"));
		cr_assert_eq(parse(&o, "evaluate", "--help", NULL), CTL_EXIT_OK);
		cr_assert_not_null(strstr(out_buf, "--roc"));
		cr_assert_eq(parse(&o, "publish", "--help", NULL), CTL_EXIT_OK);
		cr_assert_not_null(strstr(out_buf, "--acked"));
	}
}

Test(ctl_cli, evaluate_scores_and_baseline)
{
	struct ctl_opts o;

	cr_assert_eq(parse(&o, "evaluate", "v", "p", "--scores", "s.txt", "--roc", "r.svg",
	                   "--baseline", "b.txt", NULL),
	             CTL_EXIT_OK);
	cr_assert_str_eq(o.scores, "s.txt");
	cr_assert_str_eq(o.baseline, "b.txt");
	cr_assert_eq(parse(&o, "evaluate", "v", "p", "--scores", "s.txt", NULL), CTL_EXIT_OK);
	cr_assert_null(o.baseline);
	assert_usage(parse(&o, "evaluate", "v", "p", "--baseline", "b.txt", NULL), "--roc");
	assert_usage(parse(&o, "publish", "v", "p", "--scores", "s.txt", NULL), "--scores");
}
