/* ctl_json.c - small recursive-descent JSON reader and writer (ctl_json.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_json.h"

#define MAX_DEPTH 64

struct parser {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
	int failed;
};

static void fail(struct parser *p, const char *what)
{
	if (!p->failed && p->err && p->errlen)
		snprintf(p->err, p->errlen, "offset %zu: %s", p->pos, what);
	p->failed = 1;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	                           p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static struct ctl_json *node(struct parser *p, enum ctl_json_type t)
{
	struct ctl_json *j = calloc(1, sizeof(*j));

	if (!j)
		fail(p, "out of memory");
	else
		j->type = t;
	return j;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Parse a string at p->pos (on the opening quote); returns malloc'd text. */
static char *parse_string(struct parser *p)
{
	size_t start = ++p->pos, o = 0;
	char *out;

	/* decoded is never longer than the source */
	while (p->pos < p->len && p->s[p->pos] != '"')
		p->pos += p->s[p->pos] == '\\' ? 2 : 1;
	if (p->pos >= p->len) {
		fail(p, "unterminated string");
		return NULL;
	}
	out = malloc(p->pos - start + 1);
	if (!out) {
		fail(p, "out of memory");
		return NULL;
	}
	for (size_t i = start; i < p->pos; i++) {
		char c = p->s[i];

		if ((unsigned char)c < 0x20) {
			p->pos = i;
			fail(p, "control character in string");
			free(out);
			return NULL;
		}
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		c = p->s[++i];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			out[o++] = c;
			break;
		case 'b':
			out[o++] = '\b';
			break;
		case 'f':
			out[o++] = '\f';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'u': {
			uint32_t cp = 0;

			for (int k = 1; k <= 4; k++) {
				int h = i + (size_t)k < p->pos ? hexval(p->s[i + (size_t)k]) : -1;

				if (h < 0) {
					p->pos = i;
					fail(p, "bad \\u escape");
					free(out);
					return NULL;
				}
				cp = cp << 4 | (uint32_t)h;
			}
			i += 4;
			o += (size_t)put_utf8(out + o, cp);
			break;
		}
		default:
			p->pos = i;
			fail(p, "bad escape");
			free(out);
			return NULL;
		}
	}
	out[o] = '\0';
	p->pos++;
	return out;
}

static struct ctl_json *parse_value(struct parser *p, int depth);

static int add_kid(struct parser *p, struct ctl_json *j, struct ctl_json *kid, char *key)
{
	struct ctl_json **nk = realloc(j->kids, (j->n + 1) * sizeof(*nk));

	if (!nk) {
		fail(p, "out of memory");
		return -1;
	}
	j->kids = nk;
	if (j->type == CTL_JSON_OBJ) {
		char **nkeys = realloc(j->keys, (j->n + 1) * sizeof(*nkeys));

		if (!nkeys) {
			fail(p, "out of memory");
			return -1;
		}
		j->keys = nkeys;
		j->keys[j->n] = key;
	}
	j->kids[j->n++] = kid;
	return 0;
}

static struct ctl_json *parse_container(struct parser *p, int depth, int obj)
{
	struct ctl_json *j = node(p, obj ? CTL_JSON_OBJ : CTL_JSON_ARR);
	char close = obj ? '}' : ']';

	if (!j)
		return NULL;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return j;
	}
	for (;;) {
		char *key = NULL;
		struct ctl_json *kid;

		skip_ws(p);
		if (obj) {
			if (p->pos >= p->len || p->s[p->pos] != '"') {
				fail(p, "expected a key");
				break;
			}
			key = parse_string(p);
			if (!key)
				break;
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':') {
				free(key);
				fail(p, "expected ':'");
				break;
			}
			p->pos++;
		}
		kid = parse_value(p, depth + 1);
		if (!kid || add_kid(p, j, kid, key) != 0) {
			free(key);
			ctl_json_free(kid);
			break;
		}
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			return j;
		}
		fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		break;
	}
	ctl_json_free(j);
	return NULL;
}

static struct ctl_json *parse_value(struct parser *p, int depth)
{
	struct ctl_json *j;
	char c;

	skip_ws(p);
	if (depth > MAX_DEPTH) {
		fail(p, "nested too deeply");
		return NULL;
	}
	if (p->pos >= p->len) {
		fail(p, "unexpected end");
		return NULL;
	}
	c = p->s[p->pos];
	if (c == '{' || c == '[')
		return parse_container(p, depth, c == '{');
	if (c == '"') {
		char *s = parse_string(p);

		if (!s)
			return NULL;
		j = node(p, CTL_JSON_STR);
		if (!j) {
			free(s);
			return NULL;
		}
		j->text = s;
		return j;
	}
	if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) {
		p->pos += 4;
		return node(p, CTL_JSON_NULL);
	}
	if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "true", 4) == 0) {
		p->pos += 4;
		j = node(p, CTL_JSON_BOOL);
		if (j)
			j->num = 1;
		return j;
	}
	if (p->len - p->pos >= 5 && memcmp(p->s + p->pos, "false", 5) == 0) {
		p->pos += 5;
		return node(p, CTL_JSON_BOOL);
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		size_t start = p->pos;
		char *end;

		while (p->pos < p->len && strchr("+-0123456789.eE", p->s[p->pos]))
			p->pos++;
		j = node(p, CTL_JSON_NUM);
		if (!j)
			return NULL;
		j->text = strndup(p->s + start, p->pos - start);
		if (!j->text) {
			free(j);
			fail(p, "out of memory");
			return NULL;
		}
		j->num = strtod(j->text, &end);
		if (*end) {
			p->pos = start;
			ctl_json_free(j);
			fail(p, "bad number");
			return NULL;
		}
		return j;
	}
	/* NaN / Infinity are not JSON, but a C daemon printing %g may emit them */
	if (p->len - p->pos >= 3 &&
	    (memcmp(p->s + p->pos, "NaN", 3) == 0 || memcmp(p->s + p->pos, "nan", 3) == 0)) {
		p->pos += 3;
		return node(p, CTL_JSON_NULL);
	}
	fail(p, "unexpected character");
	return NULL;
}

int ctl_json_parse(const char *s, size_t len, struct ctl_json **out, char *err, size_t errlen)
{
	struct parser p = {s, len, 0, err, errlen, 0};
	struct ctl_json *j = parse_value(&p, 0);

	if (j) {
		skip_ws(&p);
		if (p.pos < p.len) {
			fail(&p, "trailing characters");
			ctl_json_free(j);
			j = NULL;
		}
	}
	if (!j)
		return -1;
	*out = j;
	return 0;
}

void ctl_json_free(struct ctl_json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++) {
		ctl_json_free(j->kids[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->kids);
	free(j->keys);
	free(j->text);
	free(j);
}

const struct ctl_json *ctl_json_get(const struct ctl_json *j, const char *path)
{
	while (j && *path) {
		const char *dot = strchr(path, '.');
		size_t kl = dot ? (size_t)(dot - path) : strlen(path);
		const struct ctl_json *next = NULL;

		if (j->type != CTL_JSON_OBJ)
			return NULL;
		for (size_t i = 0; i < j->n; i++) {
			if (strlen(j->keys[i]) == kl && memcmp(j->keys[i], path, kl) == 0) {
				next = j->kids[i];
				break;
			}
		}
		j = next;
		path += kl + (dot ? 1 : 0);
	}
	return j;
}

double ctl_json_num(const struct ctl_json *j, const char *path, double dflt)
{
	const struct ctl_json *v = ctl_json_get(j, path);

	return v && (v->type == CTL_JSON_NUM || v->type == CTL_JSON_BOOL) ? v->num : dflt;
}

const char *ctl_json_str(const struct ctl_json *j, const char *path)
{
	const struct ctl_json *v = ctl_json_get(j, path);

	return v && v->type == CTL_JSON_STR ? v->text : NULL;
}

void ctl_json_write_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void ctl_json_write(const struct ctl_json *j, FILE *f)
{
	switch (j->type) {
	case CTL_JSON_NULL:
		fputs("null", f);
		break;
	case CTL_JSON_BOOL:
		fputs(j->num ? "true" : "false", f);
		break;
	case CTL_JSON_NUM:
		fputs(j->text, f);
		break;
	case CTL_JSON_STR:
		ctl_json_write_str(f, j->text, strlen(j->text));
		break;
	case CTL_JSON_ARR:
	case CTL_JSON_OBJ:
		fputc(j->type == CTL_JSON_ARR ? '[' : '{', f);
		for (size_t i = 0; i < j->n; i++) {
			if (i)
				fputs(", ", f);
			if (j->type == CTL_JSON_OBJ) {
				ctl_json_write_str(f, j->keys[i], strlen(j->keys[i]));
				fputs(": ", f);
			}
			ctl_json_write(j->kids[i], f);
		}
		fputc(j->type == CTL_JSON_ARR ? ']' : '}', f);
		break;
	}
}
