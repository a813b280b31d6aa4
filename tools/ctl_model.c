/* ctl_model.c - export-model and import-model.
 *
 * Not yet possible: protocol version 1 has no verb that carries W
 * (docs/PROTOCOL.md).  Both verbs say so and exit with CTL_EXIT_REFUSED.
 */
#include "ctl.h"

int ctl_model_run(struct ctl_ctx *c)
{
	ctl_err("%s: the wire protocol has no model transfer verb yet",
		ctl_cli_verb_name(c->o->verb));
	return CTL_EXIT_REFUSED;
}
