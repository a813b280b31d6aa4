/* ctl_json.h - a small JSON reader for the daemon's admin replies (status,
 * versions, config) and the writer helpers simverifyctl's --json output
 * uses.
 *
 * The reader builds a tree (one malloc per node); numbers keep their source
 * text so 64-bit counters print exactly.  Strings are decoded (\uXXXX to
 * UTF-8).  Depth is limited to 64.  Left out: streaming, duplicate-key
 * rules (the first key wins on lookup).
 */
#ifndef SV_TOOLS_CTL_JSON_H
#define SV_TOOLS_CTL_JSON_H

#include <stddef.h>
#include <stdio.h>

enum ctl_json_type {
	CTL_JSON_NULL,
	CTL_JSON_BOOL,
	CTL_JSON_NUM,
	CTL_JSON_STR,
	CTL_JSON_ARR,
	CTL_JSON_OBJ,
};

struct ctl_json {
	enum ctl_json_type type;
	double num;             /* NUM; BOOL: 0 or 1 */
	char *text;             /* NUM: the source text; STR: the decoded string */
	size_t n;               /* ARR / OBJ: number of children */
	struct ctl_json **kids; /* ARR / OBJ: children, owned */
	char **keys;            /* OBJ: key of each child, owned */
};

/* Parse len bytes at s.  *out owns the tree (ctl_json_free()).  On failure
 * returns -1 and writes "offset N: what" into err (errlen bytes). */
int ctl_json_parse(const char *s, size_t len, struct ctl_json **out, char *err, size_t errlen);
void ctl_json_free(struct ctl_json *j);

/* Child of an object by path: "a" or "a.b.c".  NULL when absent or when a
 * step is not an object. */
const struct ctl_json *ctl_json_get(const struct ctl_json *j, const char *path);

/* The number at path, or dflt when absent or not a number. */
double ctl_json_num(const struct ctl_json *j, const char *path, double dflt);

/* The string at path, or NULL. */
const char *ctl_json_str(const struct ctl_json *j, const char *path);

/* Write j back as compact JSON. */
void ctl_json_write(const struct ctl_json *j, FILE *f);

/* Write s (n bytes) as a JSON string literal. */
void ctl_json_write_str(FILE *f, const char *s, size_t n);

#endif
