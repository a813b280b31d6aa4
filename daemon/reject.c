/* reject.c - reject reasons: names and counters (see reject.h). */
#include "reject.h"

#include <stdatomic.h>

#include "daemon.h"

static const char *const own_names[] = {
    [SV_REJECT_NOITEM - SV_PROTO_REASON_COUNT_] = "unknown_item",
    [SV_REJECT_REFUSED - SV_PROTO_REASON_COUNT_] = "wrong_socket",
    [SV_REJECT_STORE - SV_PROTO_REASON_COUNT_] = "store_failed",
    [SV_REJECT_TOOMANY_PARTS - SV_PROTO_REASON_COUNT_] = "too_many_frames",
    [SV_REJECT_RESERVED_ID - SV_PROTO_REASON_COUNT_] = "reserved_id",
    [SV_REJECT_STORE_FULL - SV_PROTO_REASON_COUNT_] = "store_full",
};

_Static_assert(sizeof(own_names) / sizeof(own_names[0]) ==
                   SV_REJECT_COUNT - SV_PROTO_REASON_COUNT_,
               "one name per daemon reject reason");

const char *reject_name(int reason)
{
	if (reason >= 0 && reason < SV_PROTO_REASON_COUNT_)
		return sv_proto_reason_name(reason);
	if (reason >= SV_PROTO_REASON_COUNT_ && reason < SV_REJECT_COUNT)
		return own_names[reason - SV_PROTO_REASON_COUNT_];
	return "unknown";
}

void reject_count(struct sv_daemon *d, int reason)
{
	if (reason < 0 || reason >= SV_REJECT_COUNT)
		reason = 0;
	atomic_fetch_add(&d->cnt.rejects[reason], 1);
}
