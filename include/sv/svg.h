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

#ifdef __cplusplus
}
#endif
#endif
