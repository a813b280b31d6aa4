/* page.h - the status page (GET / on the HTTP endpoint).
 *
 * Plain HTML with inline SVG charts (lib/svg.c), no script: readiness and
 * its reason, the model version and what it was trained on, the
 * prequential AUC and EER over time, the ROC of the current window with the
 * operating point, the ingest rate, the backlog and the store size over
 * time (history.h).  It reloads itself every HISTORY_EVERY_S seconds.
 */
#ifndef SV_DAEMON_PAGE_H
#define SV_DAEMON_PAGE_H

#include <stddef.h>

struct sv_daemon;

/* The page as a new NUL-terminated buffer (the caller frees it); *len gets
 * its length.  NULL when out of memory. */
char *page_render(struct sv_daemon *d, size_t *len);

#endif
