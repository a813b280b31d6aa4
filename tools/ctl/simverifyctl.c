/* simverifyctl.c - control and query a running simverifyd.
 *
 * main parses the command line (ctl_cli.c), finds the daemon's endpoints
 * (ctl_endpoints.c) and hands over to the verb: admin verbs (ctl_admin.c),
 * queries and items (ctl_query.c), publish (ctl_publish.c), evaluate
 * (ctl_evaluate.c).  The exit code tells a script what happened (ctl_cli.h).
 */
#include <signal.h>
#include <zmq.h>

#include "ctl.h"

int main(int argc, char **argv)
{
	struct ctl_opts o;
	struct ctl_ctx c = {0};
	int rc;

	rc = ctl_cli_parse(&o, argc, argv, stdout, stderr);
	if (rc || o.help)
		return rc;
	c.o = &o;
	signal(SIGPIPE, SIG_IGN);
	if (o.verb == CTL_VERB_CONFIG_CHECK)
		return ctl_config_check(o.args[0]);
	if (o.verb == CTL_VERB_KEYGEN)
		return ctl_keygen(o.args[0]);
	rc = ctl_endpoints_resolve(&c);
	if (rc)
		return rc;
	c.zctx = zmq_ctx_new();
	if (!c.zctx) {
		ctl_err("zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
		return CTL_EXIT_FAIL;
	}
	switch (o.verb) {
	case CTL_VERB_SCORE:
	case CTL_VERB_TOPK:
	case CTL_VERB_ITEM_PUT:
	case CTL_VERB_ITEM_GET:
	case CTL_VERB_ITEM_DELETE:
		rc = ctl_query_run(&c);
		break;
	case CTL_VERB_PUBLISH:
		rc = ctl_publish_run(&c);
		break;
	case CTL_VERB_EVALUATE:
		rc = ctl_evaluate_run(&c);
		break;
	default:
		rc = ctl_admin_run(&c);
		break;
	}
	zmq_ctx_term(c.zctx);
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
		ctl_err("writing standard output failed");
		rc = CTL_EXIT_FAIL;
	}
	return rc;
}
