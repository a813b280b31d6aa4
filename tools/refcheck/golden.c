/* golden.c - parse golden case files (see golden.h).  Line-based: a header
 * line per entry, plus one data line for ivec and rows lines for mat. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

static void entry_clear(struct golden_entry *e)
{
	free(e->key);
	free(e->str);
	free(e->v);
}

void golden_free(struct golden_case *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->count; i++)
		entry_clear(&c->e[i]);
	free(c->e);
	free(c->name);
	free(c);
}

/* Read the next line that is not empty or a comment; NULL at EOF. */
static char *next_line(FILE *f, char **buf, size_t *cap, int *line)
{
	for (;;) {
		if (getline(buf, cap, f) < 0)
			return NULL;
		(*line)++;
		char *p = *buf;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		return p;
	}
}

/* Parse cnt numbers from the text s; returns 0 when all were found. */
static int parse_numbers(const char *s, double *v, size_t cnt)
{
	char *end;
	for (size_t i = 0; i < cnt; i++) {
		v[i] = strtod(s, &end);
		if (end == s)
			return -1;
		s = end;
	}
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return *s ? -1 : 0;
}

int golden_load(const char *path, struct golden_case **out, int *err_line)
{
	int rc = 0, line = 0;
	char *buf = NULL;
	size_t cap = 0;
	struct golden_case *c = NULL;
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	char *p = next_line(f, &buf, &cap, &line);
	char word[64], key[256], sval[256];
	if (!p || sscanf(p, "case %255s", sval) != 1) {
		rc = -EBADMSG;
		goto out;
	}
	c->name = strdup(sval);
	if (!c->name) {
		rc = -ENOMEM;
		goto out;
	}
	size_t cape = 0;
	for (;;) {
		p = next_line(f, &buf, &cap, &line);
		if (!p) {
			rc = -EBADMSG; /* no "end" */
			goto out;
		}
		int off = 0;
		if (sscanf(p, "%63s%n", word, &off) != 1) {
			rc = -EBADMSG;
			goto out;
		}
		if (!strcmp(word, "end"))
			break;
		if (c->count == cape) {
			size_t nc = cape ? 2 * cape : 32;
			struct golden_entry *ne = realloc(c->e, nc * sizeof(*ne));
			if (!ne) {
				rc = -ENOMEM;
				goto out;
			}
			c->e = ne;
			cape = nc;
		}
		struct golden_entry *e = &c->e[c->count];
		memset(e, 0, sizeof(*e));
		const char *rest = p + off;
		size_t rows = 1, cols = 1;
		if (!strcmp(word, "str")) {
			if (sscanf(rest, "%255s %255s", key, sval) != 2) {
				rc = -EBADMSG;
				goto out;
			}
			e->type = GOLDEN_TYPE_STR;
			e->str = strdup(sval);
			if (!e->str) {
				rc = -ENOMEM;
				goto out;
			}
		} else if (!strcmp(word, "int") || !strcmp(word, "real")) {
			e->type = word[0] == 'i' ? GOLDEN_TYPE_INT : GOLDEN_TYPE_REAL;
			e->v = malloc(sizeof(double));
			int o2 = 0;
			if (!e->v || sscanf(rest, "%255s%n", key, &o2) != 1 ||
			    parse_numbers(rest + o2, e->v, 1)) {
				rc = e->v ? -EBADMSG : -ENOMEM;
				free(e->v);
				goto out;
			}
		} else if (!strcmp(word, "ivec") || !strcmp(word, "mat")) {
			int is_mat = word[0] == 'm';
			e->type = is_mat ? GOLDEN_TYPE_MAT : GOLDEN_TYPE_IVEC;
			int got = is_mat ? sscanf(rest, "%255s %zu %zu", key, &rows, &cols)
			                 : sscanf(rest, "%255s %zu", key, &cols);
			if (got != (is_mat ? 3 : 2) || rows > (1u << 24) || cols > (1u << 24)) {
				rc = -EBADMSG;
				goto out;
			}
			e->v = malloc((rows * cols > 0 ? rows * cols : 1) * sizeof(double));
			if (!e->v) {
				rc = -ENOMEM;
				goto out;
			}
			for (size_t r = 0; r < rows; r++) {
				/* an empty ivec may have an empty data line */
				if (getline(&buf, &cap, f) < 0 ||
				    parse_numbers(buf, e->v + r * cols, cols)) {
					line++;
					free(e->v);
					rc = -EBADMSG;
					goto out;
				}
				line++;
			}
		} else {
			rc = -EBADMSG;
			goto out;
		}
		e->rows = rows;
		e->cols = cols;
		e->key = strdup(key);
		if (!e->key) {
			entry_clear(e);
			rc = -ENOMEM;
			goto out;
		}
		c->count++;
	}
out:
	if (rc && err_line)
		*err_line = line;
	if (rc)
		golden_free(c);
	else
		*out = c;
	free(buf);
	fclose(f);
	return rc;
}

const struct golden_entry *golden_find(const struct golden_case *c, const char *key)
{
	for (size_t i = c->count; i-- > 0;)
		if (!strcmp(c->e[i].key, key))
			return &c->e[i];
	return NULL;
}

const char *golden_str(const struct golden_case *c, const char *key)
{
	const struct golden_entry *e = golden_find(c, key);
	return e && e->type == GOLDEN_TYPE_STR ? e->str : NULL;
}

double golden_real(const struct golden_case *c, const char *key, double dflt)
{
	const struct golden_entry *e = golden_find(c, key);
	if (!e || (e->type != GOLDEN_TYPE_INT && e->type != GOLDEN_TYPE_REAL))
		return dflt;
	return e->v[0];
}

const double *golden_mat(const struct golden_case *c, const char *key, size_t rows, size_t cols)
{
	const struct golden_entry *e = golden_find(c, key);
	if (!e || (e->type != GOLDEN_TYPE_MAT && e->type != GOLDEN_TYPE_IVEC))
		return NULL;
	if (e->rows * e->cols != rows * cols)
		return NULL;
	return e->v;
}
