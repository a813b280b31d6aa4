/* test_svg.c - the ROC SVG and the line chart: well-formed (tag balance, and xmllint when
 * installed), holds the points at the documented coordinates, escapes text,
 * refuses bad options. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sv/svg.h"

static struct sv_metrics_roc_point P1[3] = {
    {0.9f, 50, 0}, /* FAR 0 -> left edge, TAR 0.5 */
    {0.5f, 80, 1}, /* FAR 1e-2, TAR 0.8 */
    {0.1f, 100, 100},
};
static struct sv_metrics_roc R1 = {100, 100, 3, P1};
static struct sv_metrics_roc_point P2[2] = {
    {0.7f, 10, 10}, /* FAR 1e-1 TAR 0.1 */
    {0.0f, 100, 100},
};
static struct sv_metrics_roc R2 = {100, 100, 2, P2};

/* Every start tag is closed in order; comments / declarations skipped. */
static int tags_balanced(const char *s)
{
	char stack[64][32];
	int depth = 0, seen_root = 0;

	while ((s = strchr(s, '<')) != NULL) {
		const char *e = strchr(s, '>');
		char name[32];
		size_t n = 0;
		int closing = s[1] == '/';

		if (!e)
			return 0;
		if (s[1] == '?' || s[1] == '!') {
			s = e + 1;
			continue;
		}
		for (const char *p = s + 1 + closing; p < e && *p != ' ' && *p != '/' && n < 31;
		     p++)
			name[n++] = *p;
		name[n] = 0;
		if (closing) {
			if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
				return 0;
			depth--;
		} else if (e[-1] != '/') {
			if (depth == 64)
				return 0;
			if (depth == 0 && seen_root++)
				return 0;
			strcpy(stack[depth++], name);
		}
		s = e + 1;
	}
	return depth == 0 && seen_root == 1;
}

static char *render_two(size_t *len)
{
	struct sv_svg_roc_opts o = {0};
	char *doc = NULL;

	o.title = "before & <after>";
	o.curves[0] = (struct sv_svg_curve){"after", &R1};
	o.curves[1] = (struct sv_svg_curve){"before", &R2};
	o.n_curves = 2;
	o.mark_op = 1;
	o.op = (struct sv_metrics_op){0.5f, 1e-2, 0.8, 0.9};
	cr_assert_eq(sv_svg_roc(&o, &doc, len), 0);
	return doc;
}

Test(svg, well_formed_and_contains_points)
{
	size_t len = 0;
	char *doc = render_two(&len);

	cr_assert_eq(strlen(doc), len);
	cr_assert(strncmp(doc, "<?xml", 5) == 0);
	cr_assert(strstr(doc, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	cr_assert_str_eq(doc + len - 7, "</svg>\n");
	cr_assert(tags_balanced(doc), "unbalanced tags");
	/* curve 0: origin, (FAR 0 -> x=80, TAR .5 -> y=250), (380,130), (680,50) */
	cr_assert(strstr(doc, "points=\"80.00,450.00 80.00,250.00 380.00,130.00 680.00,50.00\""),
	          "curve 0 points");
	/* curve 1: FAR .1 -> x=530, TAR .1 -> y=410 */
	cr_assert(strstr(doc, "530.00,410.00 680.00,50.00\""), "curve 1 points");
	cr_assert(strstr(doc, "stroke-dasharray"));
	cr_assert(strstr(doc, "<circle cx=\"380.00\" cy=\"130.00\""), "operating point");
	cr_assert(strstr(doc, "threshold 0.5000"));
	cr_assert(strstr(doc, "before &amp; &lt;after&gt;"), "escaped title");
	cr_assert(strstr(doc, ">1e-4</text>") && strstr(doc, ">1e-2</text>") &&
	              strstr(doc, ">0.5</text>"),
	          "tick labels");
	cr_assert(strstr(doc, "after (AUC "), "legend");

	if (access("/usr/bin/xmllint", X_OK) == 0) {
		char path[] = "/tmp/sv-svg-XXXXXX";
		int fd = mkstemp(path);
		char cmd[128];

		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, doc, len), (ssize_t)len);
		close(fd);
		snprintf(cmd, sizeof cmd, "/usr/bin/xmllint --noout %s", path);
		int rc = system(cmd);
		unlink(path);
		cr_assert_eq(rc, 0, "xmllint rejected the document");
	}
	free(doc);
}

Test(svg, balance_checker_can_fail)
{
	cr_assert_not(tags_balanced("<svg><g></svg></g>"));
	cr_assert_not(tags_balanced("<svg><g>"));
	cr_assert(tags_balanced("<?xml x?><svg><g/><text>a</text></svg>"));
}

Test(svg, file_output_equals_buffer)
{
	size_t len = 0, flen;
	char *doc = render_two(&len);
	struct sv_svg_roc_opts o = {0};
	FILE *f = tmpfile();
	char *back;

	o.title = "before & <after>";
	o.curves[0] = (struct sv_svg_curve){"after", &R1};
	o.curves[1] = (struct sv_svg_curve){"before", &R2};
	o.n_curves = 2;
	o.mark_op = 1;
	o.op = (struct sv_metrics_op){0.5f, 1e-2, 0.8, 0.9};
	cr_assert_not_null(f);
	cr_assert_eq(sv_svg_roc_write(&o, f), 0);
	flen = (size_t)ftell(f);
	cr_assert_eq(flen, len);
	rewind(f);
	back = malloc(len);
	cr_assert_eq(fread(back, 1, len, f), len);
	cr_assert_eq(memcmp(back, doc, len), 0);
	fclose(f);
	free(back);
	free(doc);
}

Test(svg, one_curve_and_many_points)
{
	enum { N = 20000 };
	struct sv_metrics_roc_point *p = malloc(N * sizeof *p);
	struct sv_metrics_roc r = {N, N, N, p};
	struct sv_svg_roc_opts o = {0};
	char *doc = NULL;
	size_t len = 0;

	for (size_t i = 0; i < N; i++) {
		p[i].threshold = 1.0f - (float)i / N;
		p[i].tp = i + 1;
		p[i].fp = i + 1;
	}
	o.curves[0].roc = &r;
	o.n_curves = 1;
	cr_assert_eq(sv_svg_roc(&o, &doc, &len), 0);
	cr_assert(tags_balanced(doc));
	cr_assert(strstr(doc, ">ROC</text>"), "default title");
	cr_assert(strstr(doc, "curve 1 (AUC 0.5000)"), "default label");
	cr_assert_null(strstr(doc, "<circle"));
	cr_assert_lt(len, 60000, "points within half a pixel are dropped (%zu bytes)", len);
	cr_assert(strstr(doc, " 680.00,50.00\""), "last point kept");
	free(doc);
	free(p);
}

Test(svg, bad_options)
{
	struct sv_svg_roc_opts o = {0};
	char *doc = (char *)"untouched";
	size_t len = 7;

	cr_assert_eq(sv_svg_roc(NULL, &doc, &len), -EINVAL);
	cr_assert_eq(sv_svg_roc(&o, &doc, &len), -EINVAL); /* no curves */
	o.n_curves = 1;
	cr_assert_eq(sv_svg_roc(&o, &doc, &len), -EINVAL); /* curve without roc */
	o.curves[0].roc = &R1;
	o.mark_op = 1;
	o.op.threshold = NAN;
	cr_assert_eq(sv_svg_roc(&o, &doc, &len), -EINVAL);
	o.n_curves = 3;
	cr_assert_eq(sv_svg_roc(&o, &doc, &len), -EINVAL);
	cr_assert_str_eq(doc, "untouched");
	cr_assert_eq(len, 7);
	cr_assert_eq(sv_svg_roc(&o, NULL, &len), -EINVAL);
	cr_assert_eq(sv_svg_roc_write(&o, NULL), -EINVAL);
}

/* The x, y, width attributes of the legend's rect and the y of the
 * operating point's text. */
static void layout(const char *doc, double *lx, double *lw, double *ly, double *ty)
{
	const char *leg = strstr(doc, "<g id=\"legend\"");
	const char *op = strstr(doc, "<g id=\"operating-point\"");

	cr_assert_not_null(leg);
	cr_assert_not_null(op);
	cr_assert_eq(
	    sscanf(strstr(leg, "<rect"), "<rect x=\"%lf\" y=\"%lf\" width=\"%lf\"", lx, ly, lw), 3);
	cr_assert_eq(sscanf(strstr(op, "<text"), "<text x=\"%*f\" y=\"%lf\"", ty), 1);
}

Test(svg, legend_fits_long_labels_and_op_label_stays_in_the_plot)
{
	struct sv_svg_roc_opts o = {0};
	double lx, lw, ly, ty, right = SV_SVG_LEFT + SV_SVG_PLOT_W;
	double bottom = SV_SVG_TOP + SV_SVG_PLOT_H;
	char *doc = NULL;
	size_t len = 0;

	o.curves[0] = (struct sv_svg_curve){"model v2", &R1};
	o.curves[1] = (struct sv_svg_curve){"baseline model v1 (before training)", &R2};
	o.n_curves = 2;
	o.mark_op = 1;
	/* FAR 0, TAR 0.04: bottom left corner, where a label below the point
	 * would fall under the x axis */
	o.op = (struct sv_metrics_op){0.9385f, 0.0, 0.04, 0.52};
	cr_assert_eq(sv_svg_roc(&o, &doc, &len), 0);
	cr_assert(tags_balanced(doc));
	layout(doc, &lx, &lw, &ly, &ty);
	/* 35 + 13 characters at about 7 units each do not fit in 200 */
	cr_assert_gt(lw, 48 * 7.0, "legend %.1f wide", lw);
	cr_assert_leq(lx + lw, right, "legend inside the plot");
	cr_assert_geq(lx, SV_SVG_LEFT);
	cr_assert_lt(ty, bottom, "label baseline %.1f above the x axis", ty);
	cr_assert(ty + 4 <= ly || ty - 12 >= ly + 52, "label (baseline %.1f) clear of the legend",
	          ty);
	cr_assert(strstr(doc, "FAR 0, TAR 0.0400"), "compact FAR");
	free(doc);
}

/* ---- line charts ---- */

static int count(const char *s, const char *what)
{
	int n = 0;

	for (; (s = strstr(s, what)) != NULL; s += strlen(what))
		n++;
	return n;
}

Test(svg, lines_points_at_their_coordinates_and_nan_breaks_the_line)
{
	double x[5] = {0, 10, 20, 30, 40}, y[5] = {0, 50, NAN, 100, 100};
	double y2[5] = {100, 75, 50, 25, 0};
	struct sv_svg_lines_opts o = {.title = "store <size>", .x_label = "seconds",
	                              .y_label = "MB", .n_series = 2, .y_min = NAN, .y_max = NAN};
	char *doc = NULL;
	size_t len = 0;

	o.series[0] = (struct sv_svg_series){"data.mdb", x, y, 5};
	o.series[1] = (struct sv_svg_series){NULL, x, y2, 5};
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), 0);
	cr_assert_eq(strlen(doc), len);
	cr_assert(tags_balanced(doc), "%s", doc);
	cr_assert_eq(count(doc, "<polyline"), 3, "the NaN splits series 0 in two");
	/* x 0..40 and y 0..100 map to the plot's corners */
	cr_assert_not_null(strstr(doc, "points=\"80.00,450.00 230.00,250.00\""), "%s", doc);
	cr_assert_not_null(strstr(doc, "530.00,50.00 680.00,50.00"));
	cr_assert_not_null(strstr(doc, "store &lt;size&gt;"));
	cr_assert_not_null(strstr(doc, ">series 2<"));
	cr_assert_not_null(strstr(doc, ">seconds<"));
	cr_assert_null(strstr(doc, "no data yet"));
	free(doc);
}

Test(svg, lines_without_data_say_so_and_bad_options_fail)
{
	double x[2] = {NAN, 1}, y[2] = {1, NAN};
	struct sv_svg_lines_opts o = {.n_series = 1, .y_min = NAN, .y_max = NAN};
	char *doc = (char *)1;
	size_t len = 0;

	o.series[0] = (struct sv_svg_series){"auc", x, y, 2};
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), 0);
	cr_assert_not_null(strstr(doc, "no data yet"));
	cr_assert(tags_balanced(doc));
	free(doc);
	doc = (char *)1;
	o.n_series = 0;
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), -EINVAL);
	o.n_series = 4;
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), -EINVAL);
	o.n_series = 1;
	o.series[0].x = NULL;
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), -EINVAL);
	o.series[0].x = x;
	o.y_min = 1;
	o.y_max = 1;
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), -EINVAL);
	cr_assert_eq(doc, (char *)1, "out untouched on failure");
	cr_assert_eq(sv_svg_lines(NULL, &doc, &len), -EINVAL);
}

Test(svg, lines_fixed_range_and_large_values_get_short_ticks)
{
	double x[3] = {0, 3600, 7200}, y[3] = {1.5e9, 3e9, 6e9};
	struct sv_svg_lines_opts o = {.n_series = 1, .y_min = NAN, .y_max = NAN};
	char *doc = NULL;
	size_t len = 0;

	o.series[0] = (struct sv_svg_series){"bytes", x, y, 3};
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), 0);
	cr_assert_not_null(strstr(doc, ">6G<"), "%s", doc);
	cr_assert_not_null(strstr(doc, ">8000<"), "x widened to whole steps of 1000");
	free(doc);
	o.y_min = 0;
	o.y_max = 1e10;
	cr_assert_eq(sv_svg_lines(&o, &doc, &len), 0);
	cr_assert_not_null(strstr(doc, ">10G<"), "%s", doc);
	free(doc);
}
