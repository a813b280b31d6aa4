/* sv/svg.h - an ROC curve as a standalone SVG document.
 *
 * One or two ROC curves (e.g. "before" and "after" training) on a
 * log-scale FAR axis from 1e-4 to 1 and a linear TAR axis from 0 to 1, with
 * gridlines (decades and their 2..9 multiples; TAR every 0.1), labelled
 * ticks, axis titles, a title, a legend, and optionally the operating point
 * marked with its threshold.  FAR values below 1e-4 (including 0) are drawn
 * on the left edge.  The curve joins the ROC points (origin first) with
 * straight segments in the plot's coordinates, dropping points that fall
 * within half a pixel of the previous one.
 *
 * Geometry: a SV_SVG_WIDTH x SV_SVG_HEIGHT document; the plot area is the
 * rectangle [SV_SVG_LEFT, SV_SVG_LEFT + SV_SVG_PLOT_W] x [SV_SVG_TOP,
 * SV_SVG_TOP + SV_SVG_PLOT_H] in SVG user units (y grows downwards):
 *     x = LEFT + PLOT_W * (log10(max(far, 1e-4)) + 4) / 4
 *     y = TOP + PLOT_H * (1 - tar)
 * Coordinates are printed with two decimals ("%.2f"): the caller must not
 * have switched LC_NUMERIC to a locale with a decimal comma.
 *
 * lib/ does not print: the document goes to a malloc'd buffer the caller
 * frees, or to a FILE* the caller owns.  Text (title, labels) is XML-escaped.
 * A second kind of chart, sv_svg_lines: up to SV_SVG_MAX_SERIES series of
 * (x, y) points as polylines on linear axes (x: e.g. seconds or pairs, y:
 * e.g. AUC or bytes), with "nice" ticks (1, 2 or 5 times a power of ten),
 * for quantities over time (store size, ingest rate, AUC).  Same geometry
 * as the ROC chart; non-finite points are skipped (the line breaks there).
 *
 * Left out: other plot kinds, fonts beyond the generic sans-serif family.
 */
#ifndef SV_SVG_H
#define SV_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "sv/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SV_SVG_WIDTH 720
#define SV_SVG_HEIGHT 520
#define SV_SVG_LEFT 80
#define SV_SVG_TOP 50
#define SV_SVG_PLOT_W 600
#define SV_SVG_PLOT_H 400

struct sv_svg_curve {
	const char *label;                /* legend text (NULL -> "curve N") */
	const struct sv_metrics_roc *roc; /* borrowed for the call */
};

struct sv_svg_roc_opts {
	const char *title;             /* NULL -> "ROC" */
	struct sv_svg_curve curves[2]; /* curves[0] solid blue, curves[1] dashed red */
	size_t n_curves;               /* 1 or 2 */
	int mark_op;                   /* nonzero: draw op on the plot */
	struct sv_metrics_op op;       /* e.g. from sv_metrics_roc_threshold() */
};

/* Render into a new buffer: *out (NUL-terminated, caller frees with free())
 * and *len (bytes, without the NUL).  Returns 0, -EINVAL (NULL pointers,
 * n_curves not 1 or 2, a curve without roc, a non-finite op when mark_op)
 * or -ENOMEM.  On failure *out and *len are untouched. */
int sv_svg_roc(const struct sv_svg_roc_opts *opts, char **out, size_t *len);

/* The same document written to f (caller-owned, left open).  Returns 0, the
 * errors of sv_svg_roc(), or -EIO when the write fails. */
int sv_svg_roc_write(const struct sv_svg_roc_opts *opts, FILE *f);

#define SV_SVG_MAX_SERIES 3

struct sv_svg_series {
	const char *label;    /* legend text (NULL -> "series N") */
	const double *x, *y;  /* n points each, borrowed for the call */
	size_t n;
};

struct sv_svg_lines_opts {
	const char *title;   /* NULL -> "" */
	const char *x_label; /* axis titles (NULL -> none) */
	const char *y_label;
	struct sv_svg_series series[SV_SVG_MAX_SERIES]; /* solid blue, dashed red, dotted green */
	size_t n_series;                                /* 1..SV_SVG_MAX_SERIES */
	double y_min, y_max; /* the y range; NaN (either) -> from the data, with 0 kept in
	                      * view for non-negative data */
};

/* Render a line chart into a new buffer, as sv_svg_roc.  A chart whose
 * series hold no finite point draws its axes and the words "no data yet".
 * Returns 0, -EINVAL (NULL pointers, n_series out of range, a series with
 * n > 0 and NULL x or y, y_min >= y_max when both are given) or -ENOMEM. */
int sv_svg_lines(const struct sv_svg_lines_opts *opts, char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
