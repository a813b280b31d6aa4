/* page.c - the status page (see page.h). */
#include "page.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "expo.h"
#include "history.h"
#include "monitor.h"
#include "sv/svg.h"


/* A figure: the chart's SVG inline (without its XML declaration). */
static void figure(FILE *o, const char *id, char *svg)
{
	const char *s = svg;

	if (svg == NULL) {
		fprintf(o, "<figure id=\"%s\"><p>(chart unavailable)</p></figure>\n", id);
		return;
	}
	if (strncmp(s, "<?xml", 5) == 0 && strchr(s, '\n'))
		s = strchr(s, '\n') + 1;
	fprintf(o, "<figure id=\"%s\">%s</figure>\n", id, s);
	free(svg);
}

static char *lines(const char *title, const char *ylab, const double *t,
                   const double *y0, const char *l0, const double *y1, const char *l1,
                   size_t n, double ymin, double ymax)
{
	struct sv_svg_lines_opts op = {.title = title, .x_label = "seconds since start",
	                               .y_label = ylab, .n_series = y1 ? 2 : 1,
	                               .y_min = ymin, .y_max = ymax};
	char *svg = NULL;
	size_t len;

	op.series[0] = (struct sv_svg_series){l0, t, y0, n};
	if (y1)
		op.series[1] = (struct sv_svg_series){l1, t, y1, n};
	return sv_svg_lines(&op, &svg, &len) == 0 ? svg : NULL;
}

static char *roc_chart(struct sv_daemon *d)
{
	struct sv_metrics_roc roc;
	struct sv_metrics_op op;
	struct sv_svg_roc_opts ro = {.title = "ROC of the prequential window", .n_curves = 1};
	char *svg = NULL;
	size_t len;

	if (history_roc(d->hist, &roc, &op) != 0)
		return NULL;
	ro.curves[0] = (struct sv_svg_curve){"pre-step scores", &roc};
	ro.mark_op = isfinite(op.threshold) && isfinite(op.far) && isfinite(op.tar);
	ro.op = op;
	if (sv_svg_roc(&ro, &svg, &len) != 0)
		svg = NULL;
	free(roc.points);
	return svg;
}

static void num(FILE *o, const char *label, double v, const char *fmt)
{
	fprintf(o, "<tr><th>%s</th><td>", label);
	if (isfinite(v))
		fprintf(o, fmt, v);
	else
		fprintf(o, "&ndash;");
	fprintf(o, "</td></tr>\n");
}

char *page_render(struct sv_daemon *d, size_t *len)
{
	static struct history_sample s[HISTORY_SAMPLES]; /* the HTTP thread only */
	double t[HISTORY_SAMPLES], a[HISTORY_SAMPLES], e[HISTORY_SAMPLES], r[HISTORY_SAMPLES],
	    b[HISTORY_SAMPLES], z[HISTORY_SAMPLES];
	char *text = NULL;
	size_t tlen = 0;
	FILE *o = open_memstream(&text, &tlen);
	size_t n = history_copy(d->hist, s, HISTORY_SAMPLES);
	int why = atomic_load(&d->prog.not_ready);
	char *svg;

	if (o == NULL)
		return NULL;
	if (why < 0 || why >= SV_READY_COUNT)
		why = SV_READY_STARTING;
	for (size_t i = 0; i < n; i++) {
		t[i] = s[i].t;
		a[i] = s[i].auc;
		e[i] = s[i].eer;
		r[i] = s[i].pairs_per_s;
		b[i] = s[i].backlog;
		z[i] = s[i].store_bytes / 1e6;
	}
	fprintf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	        "<meta http-equiv=\"refresh\" content=\"%d\">\n"
	        "<title>simverifyd status</title>\n<style>\n"
	        "body{font-family:sans-serif;margin:1.5em;color:#222}"
	        "table{border-collapse:collapse}th,td{padding:2px 12px;text-align:left}"
	        ".ready{color:#16702a}.notready{color:#b3261e}"
	        "figure{display:inline-block;margin:0 1em 1em 0}"
	        "figure svg{width:540px;height:auto;border:1px solid #ddd}\n"
	        "</style></head><body>\n<h1>simverifyd</h1>\n",
	    HISTORY_EVERY_S);
	if (why == SV_READY_OK)
		fprintf(o, "<p id=\"readiness\" class=\"ready\">Ready.</p>\n");
	else
		fprintf(o, "<p id=\"readiness\" class=\"notready\">Not ready: %s.</p>\n",
		    ready_name[why]);
	fprintf(o, "<table id=\"model\">\n");
	num(o, "model version", (double)atomic_load(&d->prog.model_version), "%.0f");
	num(o, "steps", (double)atomic_load(&d->prog.steps), "%.0f");
	num(o, "pairs trained", (double)atomic_load(&d->prog.pairs_seen), "%.0f");
	num(o, "prequential AUC", atomic_load(&d->prog.auc), "%.4f");
	num(o, "prequential EER", atomic_load(&d->prog.eer), "%.4f");
	num(o, "threshold", atomic_load(&d->prog.threshold), "%.4f");
	num(o, "ingest pairs/s", atomic_load(&d->prog.pairs_per_second), "%.1f");
	num(o, "backlog (pairs)", (double)atomic_load(&d->prog.backlog), "%.0f");
	num(o, "store file (MB)", expo_store_file_bytes(d) / 1e6, "%.1f");
	num(o, "uptime (s)", expo_uptime_seconds(), "%.0f");
	fprintf(o, "</table>\n<div id=\"charts\">\n");
	figure(o, "quality", lines("Prequential AUC and EER", "", t, a, "AUC", e, "EER", n, 0, 1));
	svg = roc_chart(d);
	if (svg != NULL)
		figure(o, "roc", svg);
	else
		fprintf(o, "<figure id=\"roc\"><p>No ROC yet: the window needs pairs of both "
		        "labels.</p></figure>\n");
	figure(o, "ingest", lines("Ingest rate", "pairs/s", t, r, "pairs/s", NULL, NULL, n, NAN, NAN));
	figure(o, "backlog", lines("Backlog", "pairs", t, b, "logged, not trained", NULL, NULL, n,
	                            NAN, NAN));
	figure(o, "store", lines("Store size", "MB", t, z, "data.mdb", NULL, NULL, n, NAN, NAN));
	fprintf(o, "</div>\n<p>Metrics for Prometheus: <a href=\"/metrics\">/metrics</a>; "
	        "<a href=\"/livez\">/livez</a>, <a href=\"/readyz\">/readyz</a>.</p>\n"
	        "</body></html>\n");
	if (ferror(o) | fclose(o)) {
		free(text);
		return NULL;
	}
	*len = tlen;
	return text;
}
