/* ctl_model.c - export-model FILE.npy and import-model FILE.npy, over the
 * admin socket (docs/PROTOCOL.md: MODEL_GET, MODEL_PUT), so they work with a
 * daemon on another machine too.
 *
 *   export-model: MODEL_GET; W (d_in x d_out float32, C order) goes to
 *     FILE.npy, the reply's JSON metadata (d_in, d_out, loss, mode,
 *     threshold, threshold_policy, version, steps, applied_seq, train_loss,
 *     dtype, layout) to FILE.json beside it (FILE without .npy + .json).
 *     W is the live snapshot's: version is the checkpoint it descends from,
 *     steps says how far training went since.
 *   import-model: FILE.npy must be a 2-D float32 array; MODEL_PUT sends it,
 *     the daemon checks d_in x d_out (and finiteness) and makes it the live
 *     model as a new version (like ROLLBACK).
 *
 * Leaves out: reading or writing the store directly.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_json.h"
#include "sv/error.h"
#include "sv/npy.h"

/* One request on the admin socket (mb holds it); the reply stays in *r. */
static int call(struct ctl_ctx *c, struct ctl_conn *cn, const struct sv_proto_msgbuf *mb,
                uint64_t id, const char *what, struct ctl_reply *r)
{
	int rc;

	(void)c;
	rc = ctl_conn_call(cn, mb, id, r);
	if (!rc)
		rc = ctl_reply_check(r, what, 0);
	return rc;
}

/* FILE.json beside FILE.npy (malloc'd), or NULL. */
static char *sidecar(const char *path)
{
	size_t plen = strlen(path);
	char *side = malloc(plen + 6);

	if (!side)
		return NULL;
	if (plen > 4 && strcmp(path + plen - 4, ".npy") == 0)
		sprintf(side, "%.*s.json", (int)(plen - 4), path);
	else
		sprintf(side, "%s.json", path);
	return side;
}

static int export_model(struct ctl_ctx *c)
{
	const char *path = c->o->args[0];
	struct ctl_conn cn;
	struct ctl_reply r;
	struct sv_proto_msgbuf mb;
	struct ctl_json *meta = NULL;
	char err[128], *side = NULL;
	float *W = NULL;
	uint64_t id;
	size_t n;
	FILE *f;
	int rc;

	rc = ctl_conn_open(&cn, c, ZMQ_DEALER, c->admin, "admin");
	if (rc)
		return rc;
	sv_proto_msgbuf_init(&mb);
	ctl_reply_init(&r);
	id = ctl_conn_next_id(&cn);
	if (sv_proto_encode_admin(&mb, SV_PROTO_VERB_MODEL_GET, id, 0, NULL) != 0) {
		ctl_err("export-model: cannot encode the request");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	rc = call(c, &cn, &mb, id, "export-model", &r);
	if (rc)
		goto out;
	if (ctl_json_parse(r.rep.payload ? r.rep.payload : "", r.rep.payload_len, &meta, err,
	                   sizeof(err)) != 0) {
		ctl_err("export-model: the daemon's metadata is not valid JSON (%s)", err);
		rc = CTL_EXIT_DAEMON;
		goto out;
	}
	n = (size_t)r.rep.dim * r.rep.n;
	W = malloc(n * sizeof(float));
	side = sidecar(path);
	if (!W || !side) {
		ctl_err("export-model: out of memory");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	sv_proto_vec_copy(W, r.rep.vec, n);
	rc = sv_npy_save(path, W, r.rep.dim, (uint32_t)r.rep.n);
	if (rc) {
		ctl_err("export-model: cannot write %s: %s", path, sv_strerror(rc));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	f = fopen(side, "w");
	if (!f || fwrite(r.rep.payload, 1, r.rep.payload_len, f) != r.rep.payload_len ||
	    fputc('\n', f) == EOF) {
		if (f)
			fclose(f);
		ctl_err("export-model: cannot write %s", side);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (fclose(f) != 0) {
		ctl_err("export-model: cannot write %s", side);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	printf("exported model v%.0f step %.0f (%u x %zu) to %s and %s\n",
	       ctl_json_num(meta, "version", 0), ctl_json_num(meta, "steps", 0), r.rep.dim, r.rep.n,
	       path, side);
out:
	ctl_json_free(meta);
	ctl_reply_close(&r);
	sv_proto_msgbuf_free(&mb);
	ctl_conn_close(&cn);
	free(side);
	free(W);
	return rc;
}

static int import_model(struct ctl_ctx *c)
{
	const char *path = c->o->args[0];
	struct ctl_conn cn;
	struct ctl_reply r;
	struct sv_proto_msgbuf mb;
	uint32_t rows, cols;
	float *W = NULL;
	uint64_t id;
	int rc;

	rc = sv_npy_load(path, &W, &rows, &cols);
	if (rc) {
		ctl_err("import-model: cannot read %s: %s", path,
		        rc == SV_ERR_VERSION ? "not a float32 C-order 2-D array" : sv_strerror(rc));
		return CTL_EXIT_FAIL;
	}
	for (size_t i = 0; i < (size_t)rows * cols; i++)
		if (!isfinite(W[i])) {
			ctl_err("import-model: %s holds NaN or Inf (element %zu)", path, i);
			free(W);
			return CTL_EXIT_REFUSED;
		}
	rc = ctl_conn_open(&cn, c, ZMQ_DEALER, c->admin, "admin");
	if (rc) {
		free(W);
		return rc;
	}
	sv_proto_msgbuf_init(&mb);
	ctl_reply_init(&r);
	id = ctl_conn_next_id(&cn);
	if (sv_proto_encode_model_put(&mb, id, W, rows, cols) != 0) {
		ctl_err("import-model: cannot encode %s (%u x %u)", path, rows, cols);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	rc = call(c, &cn, &mb, id, "import-model", &r);
	if (!rc)
		printf("imported %s: %.*s\n", path, (int)r.rep.msg_len,
		       r.rep.msg ? r.rep.msg : "");
out:
	ctl_reply_close(&r);
	sv_proto_msgbuf_free(&mb);
	ctl_conn_close(&cn);
	free(W);
	return rc;
}

int ctl_model_run(struct ctl_ctx *c)
{
	return c->o->verb == CTL_VERB_EXPORT_MODEL ? export_model(c) : import_model(c);
}
