/* reject.h - why the daemon refused a message or a pair, and the counters.
 *
 * One reason space: the protocol's reasons (enum sv_proto_reason, the codes
 * a MALFORMED reply carries) first, then the daemon's own, which no codec
 * can see (an unknown item, a verb on the wrong socket, a failed commit, too
 * many frames).  d->cnt.rejects[] has one counter per reason; STATUS and the
 * metrics name each by reject_name.  Any thread may count.
 */
#ifndef SV_DAEMON_REJECT_H
#define SV_DAEMON_REJECT_H

#include "sv/proto.h"

enum sv_reject {
	SV_REJECT_NOITEM = SV_PROTO_REASON_COUNT_, /* a pair names an item that does not exist */
	SV_REJECT_REFUSED,                         /* a verb sent to the wrong socket */
	SV_REJECT_STORE,                           /* a group commit failed */
	SV_REJECT_TOOMANY_PARTS,                   /* more frames than any message has */
	SV_REJECT_RESERVED_ID,                     /* a client wrote an id starting with "~v" */
	SV_REJECT_STORE_FULL,                      /* refused while the store is full */
	SV_REJECT_COUNT
};

struct sv_daemon;

/* Count one reject; a reason outside 0..SV_REJECT_COUNT-1 counts as 0
 * ("none", which no caller should send). */
void reject_count(struct sv_daemon *d, int reason);

/* A stable lowercase name (a STATUS key and a Prometheus label value):
 * sv_proto_reason_name for the protocol's reasons, "unknown" outside the
 * space. */
const char *reject_name(int reason);

#endif
