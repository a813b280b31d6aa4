/* svg.c - render ROC curves as a standalone SVG document (see sv/svg.h).
 *
 * The document is built in a growing memory buffer; nothing is printed.
 * Leaves out any other chart type than ROC curves and line charts.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/svg.h"

#define FAR_MIN_LOG10 (-4.0)
/* Width of one character of 12-unit sans-serif text, an upper estimate
 * (DejaVu Sans digits and lowercase are 7.0-7.7 units wide), for sizing the
 * legend box and keeping labels inside the plot. */
#define CHAR_W 7.4
#define LEGEND_PAD 10.0

/* The legend's rectangle, computed once for the legend and for keeping the
 * operating-point label off it. */
struct box {
	double x, y, w, h;
};

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap * 2 : 8192;
		while (ncap - b->len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/* Text content / attribute value with the five XML specials escaped. */
static void bescape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			bprintf(b, "&amp;");
			break;
		case '<':
			bprintf(b, "&lt;");
			break;
		case '>':
			bprintf(b, "&gt;");
			break;
		case '"':
			bprintf(b, "&quot;");
			break;
		case '\'':
			bprintf(b, "&apos;");
			break;
		default:
			bprintf(b, "%c", *s);
			break;
		}
	}
}

static double xof(double far)
{
	double lg = far > 0 ? log10(far) : FAR_MIN_LOG10;

	if (lg < FAR_MIN_LOG10)
		lg = FAR_MIN_LOG10;
	if (lg > 0)
		lg = 0;
	return SV_SVG_LEFT + SV_SVG_PLOT_W * (lg - FAR_MIN_LOG10) / -FAR_MIN_LOG10;
}

static double yof(double tar)
{
	return SV_SVG_TOP + SV_SVG_PLOT_H * (1.0 - tar);
}

static void grid(struct buf *b)
{
	const double x0 = SV_SVG_LEFT, y0 = SV_SVG_TOP;
	const double x1 = x0 + SV_SVG_PLOT_W, y1 = y0 + SV_SVG_PLOT_H;
	static const char *const xlab[] = {"1e-4", "1e-3", "1e-2", "0.1", "1"};

	bprintf(b, "<g id=\"grid\" stroke-width=\"1\">\n");
	for (int d = -4; d < 0; d++) {
		for (int m = 2; m <= 9; m++) {
			double x = xof(m * pow(10.0, d));

			bprintf(b,
			        "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
			        "stroke=\"#eeeeee\"/>\n",
			        x, y0, x, y1);
		}
	}
	for (int d = -4; d <= 0; d++) {
		double x = xof(pow(10.0, d));

		bprintf(b,
		        "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
		        "stroke=\"#cccccc\"/>\n",
		        x, y0, x, y1);
	}
	for (int t = 0; t <= 10; t++) {
		double y = yof(t / 10.0);

		bprintf(b,
		        "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
		        "stroke=\"#cccccc\"/>\n",
		        x0, y, x1, y);
	}
	bprintf(b, "</g>\n");
	bprintf(b,
	        "<rect x=\"%.2f\" y=\"%.2f\" width=\"%d\" height=\"%d\" fill=\"none\" "
	        "stroke=\"#000000\"/>\n",
	        x0, y0, SV_SVG_PLOT_W, SV_SVG_PLOT_H);
	bprintf(b, "<g id=\"ticks\" font-size=\"12\">\n");
	for (int d = -4; d <= 0; d++) {
		double x = xof(pow(10.0, d));

		bprintf(
		    b,
		    "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#000000\"/>\n",
		    x, y1, x, y1 + 5);
		bprintf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", x,
		        y1 + 20, xlab[d + 4]);
	}
	for (int t = 0; t <= 10; t++) {
		double y = yof(t / 10.0);

		bprintf(
		    b,
		    "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#000000\"/>\n",
		    x0 - 5, y, x0, y);
		bprintf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%.1f</text>\n", x0 - 8,
		        y + 4, t / 10.0);
	}
	bprintf(b, "</g>\n");
	bprintf(b,
	        "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"14\">"
	        "FAR (false accept rate, log scale)</text>\n",
	        x0 + SV_SVG_PLOT_W / 2.0, y1 + 45);
	bprintf(b,
	        "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"14\" "
	        "transform=\"rotate(-90 %.2f %.2f)\">TAR (true accept rate)</text>\n",
	        x0 - 50, y0 + SV_SVG_PLOT_H / 2.0, x0 - 50, y0 + SV_SVG_PLOT_H / 2.0);
}

static void curve(struct buf *b, const struct sv_metrics_roc *roc, const char *color,
                  const char *dash, size_t idx)
{
	double lx = xof(0), ly = yof(0);

	bprintf(b,
	        "<polyline id=\"curve%zu\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
	        "points=\"%.2f,%.2f",
	        idx, color, dash, lx, ly);
	for (size_t i = 0; i < roc->n_points; i++) {
		double far = (double)roc->points[i].fp / (double)roc->n_neg;
		double tar = (double)roc->points[i].tp / (double)roc->n_pos;
		double x = xof(far), y = yof(tar);

		if (i + 1 < roc->n_points && fabs(x - lx) < 0.5 && fabs(y - ly) < 0.5)
			continue;
		bprintf(b, " %.2f,%.2f", x, y);
		lx = x;
		ly = y;
	}
	bprintf(b, "\"/>\n");
}

/* Characters of curve i's legend text: the label (or "curve N") and
 * " (AUC 0.1234)". */
static size_t legend_chars(const struct sv_svg_roc_opts *o, size_t i)
{
	return (o->curves[i].label ? strlen(o->curves[i].label) : 7) + 13;
}

/* Bottom right of the plot, as wide as the longest text (at least 200
 * units, at most the plot's width less a margin). */
static struct box legend_box(const struct sv_svg_roc_opts *o)
{
	size_t chars = 0;
	struct box r;

	for (size_t i = 0; i < o->n_curves; i++)
		if (legend_chars(o, i) > chars)
			chars = legend_chars(o, i);
	r.w = 46.0 + CHAR_W * (double)chars + 8.0;
	if (r.w < 200)
		r.w = 200;
	if (r.w > SV_SVG_PLOT_W - 2 * LEGEND_PAD)
		r.w = SV_SVG_PLOT_W - 2 * LEGEND_PAD;
	r.h = 22.0 * (double)o->n_curves + 8;
	r.x = SV_SVG_LEFT + SV_SVG_PLOT_W - LEGEND_PAD - r.w;
	r.y = SV_SVG_TOP + SV_SVG_PLOT_H - 12.0 - r.h;
	return r;
}

static void legend(struct buf *b, const struct sv_svg_roc_opts *o, const char *const *colors,
                   const char *const *dashes)
{
	struct box r = legend_box(o);
	double x = r.x, y = r.y;

	bprintf(b, "<g id=\"legend\" font-size=\"12\">\n");
	bprintf(b,
	        "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#ffffff\" "
	        "stroke=\"#888888\"/>\n",
	        x, y, r.w, r.h);
	for (size_t i = 0; i < o->n_curves; i++) {
		double ly = y + 16 + 22.0 * (double)i;

		bprintf(b,
		        "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
		        "stroke-width=\"2\"%s/>\n",
		        x + 8, ly - 4, x + 38, ly - 4, colors[i], dashes[i]);
		bprintf(b, "<text x=\"%.2f\" y=\"%.2f\">", x + 46, ly);
		if (o->curves[i].label)
			bescape(b, o->curves[i].label);
		else
			bprintf(b, "curve %zu", i + 1);
		bprintf(b, " (AUC %.4f)</text>\n", sv_metrics_roc_auc(o->curves[i].roc));
	}
	bprintf(b, "</g>\n");
}

static int overlaps(struct box a, struct box b)
{
	return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

static int inside(struct box a, struct box in)
{
	return a.x >= in.x && a.y >= in.y && a.x + a.w <= in.x + in.w && a.y + a.h <= in.y + in.h;
}

/* The marker, and its label beside it.  The label goes to the first of
 * these places that lies inside the plot and off the legend: right of the
 * point below it, right above, left below, left above, then right of the
 * point just above the legend's top; if none does, right (or left, when
 * right leaves the plot) below or above, whichever stays inside.  Curves
 * may still pass under it: the text has a white halo. */
static void operating_point(struct buf *b, const struct sv_svg_roc_opts *o)
{
	const struct sv_metrics_op *op = &o->op;
	double x = xof(op->far), y = yof(op->tar);
	struct box plot = {SV_SVG_LEFT + 2, SV_SVG_TOP + 2, SV_SVG_PLOT_W - 4, SV_SVG_PLOT_H - 4};
	struct box leg = legend_box(o), t = {0, 0, 0, 14};
	char text[96];
	int found = 0;

	snprintf(text, sizeof(text), "threshold %.4f (FAR %.2g, TAR %.4f)", (double)op->threshold,
	         op->far, op->tar);
	t.w = CHAR_W * (double)strlen(text);
	{
		double xs[5] = {x + 8, x + 8, x - 8 - t.w, x - 8 - t.w, x + 8};
		double ys[5] = {y + 6, y - 20, y + 6, y - 20, leg.y - t.h - 4};

		for (int i = 0; i < 5 && !found; i++) {
			t.x = xs[i];
			t.y = ys[i];
			found = inside(t, plot) && !overlaps(t, leg);
		}
		if (!found) {
			t.x = x + 8 + t.w <= plot.x + plot.w ? x + 8 : x - 8 - t.w;
			t.y = y + 6 + t.h <= plot.y + plot.h ? y + 6 : y - 20;
		}
	}
	bprintf(b,
	        "<g id=\"operating-point\">\n<circle cx=\"%.2f\" cy=\"%.2f\" r=\"5\" "
	        "fill=\"none\" stroke=\"#000000\" stroke-width=\"2\"/>\n",
	        x, y);
	/* a white halo keeps the label legible over curves and gridlines */
	bprintf(b,
	        "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\"%s stroke=\"#ffffff\" "
	        "stroke-width=\"4\" stroke-linejoin=\"round\" paint-order=\"stroke\">%s</text>\n"
	        "</g>\n",
	        t.x < x ? x - 8 : t.x, t.y + 12, t.x < x ? " text-anchor=\"end\"" : "", text);
}

static int render(const struct sv_svg_roc_opts *o, struct buf *b)
{
	static const char *const colors[2] = {"#1f77b4", "#d62728"};
	static const char *const dashes[2] = {"", " stroke-dasharray=\"6,4\""};

	if (!o || o->n_curves < 1 || o->n_curves > 2)
		return -EINVAL;
	for (size_t i = 0; i < o->n_curves; i++)
		if (!o->curves[i].roc || o->curves[i].roc->n_points == 0 ||
		    !o->curves[i].roc->n_pos || !o->curves[i].roc->n_neg)
			return -EINVAL;
	if (o->mark_op &&
	    (!isfinite(o->op.threshold) || !isfinite(o->op.far) || !isfinite(o->op.tar)))
		return -EINVAL;
	bprintf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	bprintf(b,
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
	        SV_SVG_WIDTH, SV_SVG_HEIGHT, SV_SVG_WIDTH, SV_SVG_HEIGHT);
	bprintf(b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
	bprintf(b,
	        "<text x=\"%.2f\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" "
	        "font-weight=\"bold\">",
	        SV_SVG_LEFT + SV_SVG_PLOT_W / 2.0);
	bescape(b, o->title ? o->title : "ROC");
	bprintf(b, "</text>\n");
	grid(b);
	bprintf(b, "<g id=\"curves\">\n");
	for (size_t i = 0; i < o->n_curves; i++)
		curve(b, o->curves[i].roc, colors[i], dashes[i], i);
	bprintf(b, "</g>\n");
	if (o->mark_op)
		operating_point(b, o);
	legend(b, o, colors, dashes);
	bprintf(b, "</svg>\n");
	return b->oom ? -ENOMEM : 0;
}

int sv_svg_roc(const struct sv_svg_roc_opts *opts, char **out, size_t *len)
{
	struct buf b = {0};
	int rc;

	if (!out || !len)
		return -EINVAL;
	rc = render(opts, &b);
	if (rc) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

int sv_svg_roc_write(const struct sv_svg_roc_opts *opts, FILE *f)
{
	char *doc = NULL;
	size_t len = 0;
	int rc;

	if (!f)
		return -EINVAL;
	rc = sv_svg_roc(opts, &doc, &len);
	if (rc)
		return rc;
	if (fwrite(doc, 1, len, f) != len)
		rc = -EIO;
	free(doc);
	return rc;
}

/* ---- line charts ------------------------------------------------------- */

/* A tick step of 1, 2 or 5 times a power of ten giving about n ticks over
 * span. */
static double nice_step(double span, int n)
{
	double raw = span / n, p = pow(10.0, floor(log10(raw))), f = raw / p;

	return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * p;
}

struct range {
	double lo, hi;
};

static struct range data_range(const struct sv_svg_lines_opts *o, int want_y)
{
	struct range r = {INFINITY, -INFINITY};

	for (size_t s = 0; s < o->n_series; s++)
		for (size_t i = 0; i < o->series[s].n; i++) {
			double x = o->series[s].x[i], y = o->series[s].y[i], v = want_y ? y : x;

			if (!isfinite(x) || !isfinite(y))
				continue;
			if (v < r.lo)
				r.lo = v;
			if (v > r.hi)
				r.hi = v;
		}
	return r;
}

/* Widen r to whole tick steps (and to a nonzero span). */
static double fit_range(struct range *r, int keep_zero)
{
	double step;

	if (!(r->lo <= r->hi)) {
		r->lo = 0;
		r->hi = 1;
	}
	if (keep_zero && r->lo >= 0) {
		r->lo = 0;
		if (r->hi <= 0)
			r->hi = 1;
	}
	if (r->hi - r->lo < 1e-12 * (fabs(r->hi) + 1)) {
		r->lo -= 0.5 * (fabs(r->lo) + 1);
		r->hi += 0.5 * (fabs(r->hi) + 1);
	}
	step = nice_step(r->hi - r->lo, 5);
	r->lo = floor(r->lo / step) * step;
	r->hi = ceil(r->hi / step) * step;
	return step;
}

static void tick_label(char *out, size_t cap, double v, double step)
{
	double a = fabs(v);

	if (fabs(v) < step * 1e-9)
		v = 0;
	if (a >= 1e9)
		snprintf(out, cap, "%.3gG", v / 1e9);
	else if (a >= 1e6)
		snprintf(out, cap, "%.3gM", v / 1e6);
	else if (a >= 1e4)
		snprintf(out, cap, "%.3gk", v / 1e3);
	else
		snprintf(out, cap, "%.*f", step >= 1 ? 0 : (int)ceil(-log10(step)), v);
}

static void axes(struct buf *b, const struct sv_svg_lines_opts *o, struct range xr, double xs,
                 struct range yr, double ys)
{
	char lab[32];

	bprintf(b, "<g id=\"grid\" stroke=\"#dddddd\" stroke-width=\"1\" font-size=\"12\">\n");
	for (double v = yr.lo; v <= yr.hi + ys * 0.5; v += ys) {
		double y = SV_SVG_TOP + SV_SVG_PLOT_H * (yr.hi - v) / (yr.hi - yr.lo);

		tick_label(lab, sizeof(lab), v, ys);
		bprintf(b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>", SV_SVG_LEFT, y,
		        SV_SVG_LEFT + SV_SVG_PLOT_W, y);
		bprintf(b,
		        "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\" stroke=\"none\" "
		        "fill=\"#333333\">%s</text>\n",
		        SV_SVG_LEFT - 6, y + 4, lab);
	}
	for (double v = xr.lo; v <= xr.hi + xs * 0.5; v += xs) {
		double x = SV_SVG_LEFT + SV_SVG_PLOT_W * (v - xr.lo) / (xr.hi - xr.lo);

		tick_label(lab, sizeof(lab), v, xs);
		bprintf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>", x, SV_SVG_TOP, x,
		        SV_SVG_TOP + SV_SVG_PLOT_H);
		bprintf(b,
		        "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" stroke=\"none\" "
		        "fill=\"#333333\">%s</text>\n",
		        x, SV_SVG_TOP + SV_SVG_PLOT_H + 18, lab);
	}
	bprintf(b, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
	           "stroke=\"#333333\"/>\n",
	        SV_SVG_LEFT, SV_SVG_TOP, SV_SVG_PLOT_W, SV_SVG_PLOT_H);
	if (o->x_label) {
		bprintf(b, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">",
		        SV_SVG_LEFT + SV_SVG_PLOT_W / 2.0, SV_SVG_TOP + SV_SVG_PLOT_H + 42);
		bescape(b, o->x_label);
		bprintf(b, "</text>\n");
	}
	if (o->y_label) {
		bprintf(b,
		        "<text x=\"18\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"13\" "
		        "transform=\"rotate(-90 18 %.2f)\">",
		        SV_SVG_TOP + SV_SVG_PLOT_H / 2.0, SV_SVG_TOP + SV_SVG_PLOT_H / 2.0);
		bescape(b, o->y_label);
		bprintf(b, "</text>\n");
	}
}

static void series_line(struct buf *b, const struct sv_svg_series *s, struct range xr,
                        struct range yr, const char *color, const char *dash)
{
	int open = 0;

	for (size_t i = 0; i < s->n; i++) {
		double x = s->x[i], y = s->y[i];

		if (!isfinite(x) || !isfinite(y)) {
			if (open)
				bprintf(b, "\"/>\n");
			open = 0;
			continue;
		}
		if (!open)
			bprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
			        color, dash);
		bprintf(b, "%s%.2f,%.2f", open ? " " : "",
		        SV_SVG_LEFT + SV_SVG_PLOT_W * (x - xr.lo) / (xr.hi - xr.lo),
		        SV_SVG_TOP + SV_SVG_PLOT_H * (yr.hi - y) / (yr.hi - yr.lo));
		open = 1;
	}
	if (open)
		bprintf(b, "\"/>\n");
}

int sv_svg_lines(const struct sv_svg_lines_opts *o, char **out, size_t *len)
{
	static const char *const colors[SV_SVG_MAX_SERIES] = {"#1f77b4", "#d62728", "#2ca02c"};
	static const char *const dashes[SV_SVG_MAX_SERIES] = {"", " stroke-dasharray=\"6,4\"",
	                                                      " stroke-dasharray=\"2,3\""};
	struct buf b = {0};
	struct range xr, yr;
	double xs, ys;
	int any;

	if (!o || !out || !len || o->n_series < 1 || o->n_series > SV_SVG_MAX_SERIES)
		return -EINVAL;
	for (size_t s = 0; s < o->n_series; s++)
		if (o->series[s].n > 0 && (!o->series[s].x || !o->series[s].y))
			return -EINVAL;
	if (isfinite(o->y_min) && isfinite(o->y_max) && !(o->y_min < o->y_max))
		return -EINVAL;
	xr = data_range(o, 0);
	yr = data_range(o, 1);
	any = xr.lo <= xr.hi;
	xs = fit_range(&xr, 0);
	if (isfinite(o->y_min) && isfinite(o->y_max)) {
		yr.lo = o->y_min;
		yr.hi = o->y_max;
		ys = nice_step(yr.hi - yr.lo, 5);
	} else {
		ys = fit_range(&yr, 1);
	}
	bprintf(&b,
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
	        SV_SVG_WIDTH, SV_SVG_HEIGHT, SV_SVG_WIDTH, SV_SVG_HEIGHT);
	bprintf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
	bprintf(&b, "<text x=\"%.2f\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" "
	            "font-weight=\"bold\">",
	        SV_SVG_LEFT + SV_SVG_PLOT_W / 2.0);
	bescape(&b, o->title ? o->title : "");
	bprintf(&b, "</text>\n");
	axes(&b, o, xr, xs, yr, ys);
	bprintf(&b, "<g id=\"series\">\n");
	for (size_t s = 0; s < o->n_series; s++)
		series_line(&b, &o->series[s], xr, yr, colors[s], dashes[s]);
	bprintf(&b, "</g>\n");
	if (!any)
		bprintf(&b,
		        "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"14\" "
		        "fill=\"#777777\">no data yet</text>\n",
		        SV_SVG_LEFT + SV_SVG_PLOT_W / 2.0, SV_SVG_TOP + SV_SVG_PLOT_H / 2.0);
	for (size_t s = 0; s < o->n_series; s++) {
		double y = SV_SVG_TOP + 16 + 18.0 * (double)s;
		char def[24];

		snprintf(def, sizeof(def), "series %zu", s + 1);
		bprintf(&b,
		        "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"%s\" "
		        "stroke-width=\"2\"%s/><text x=\"%d\" y=\"%.2f\" font-size=\"12\">",
		        SV_SVG_LEFT + 10, y, SV_SVG_LEFT + 34, y, colors[s], dashes[s], SV_SVG_LEFT + 40,
		        y + 4);
		bescape(&b, o->series[s].label ? o->series[s].label : def);
		bprintf(&b, "</text>\n");
	}
	bprintf(&b, "</svg>\n");
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
