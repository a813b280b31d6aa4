/* ctl_model.c - export-model FILE.npy and import-model FILE.npy.
 *
 * Protocol version 1 has no verb that carries W, so both verbs work on the
 * daemon's LMDB store directly, beside the running daemon (LMDB is
 * multi-process safe: readers and the one write transaction at a time are
 * coordinated by its lock file).  They therefore need the store on this
 * machine: its path comes from the daemon's config (-c) or --state-dir.
 *
 *   export-model: CHECKPOINT (so the live W is committed as the newest
 *     version), then read that version's W from the store and write it as
 *     FILE.npy (d_in x d_out float32, C order), plus FILE.json: d_in, d_out,
 *     loss, mode (train.loss / train.mode of the daemon's config), the
 *     threshold and its policy (STATUS), version, step, applied_seq.
 *   import-model: check FILE.npy is d_in x d_out and finite, store it as a
 *     new checkpoint (optimizer state, settings and calibration copied from
 *     the active version), then ROLLBACK to it: the daemon loads it and makes
 *     it live as a new version.
 *
 * This store never prunes old versions (keep_versions is left to the
 * daemon).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_json.h"
#include "sv/config.h"
#include "sv/error.h"
#include "sv/npy.h"
#include "sv/store.h"

/* One admin request; the JSON payload parsed into *j when j is not NULL,
 * the daemon's message copied into msg when msg is not NULL. */
static int admin(struct ctl_ctx *c, int verb, uint64_t version, const char *what,
                 struct ctl_json **j, char *msg, size_t msgcap, char **raw)
{
	struct ctl_conn cn;
	struct ctl_reply r;
	struct sv_proto_msgbuf mb;
	uint64_t id;
	char err[128];
	int rc;

	rc = ctl_conn_open(&cn, c, ZMQ_DEALER, c->admin, "admin");
	if (rc)
		return rc;
	sv_proto_msgbuf_init(&mb);
	ctl_reply_init(&r);
	id = ctl_conn_next_id(&cn);
	if (sv_proto_encode_admin(&mb, verb, id, version, NULL) != 0) {
		ctl_err("%s: cannot encode the request", what);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	rc = ctl_conn_call(&cn, &mb, id, &r);
	if (!rc)
		rc = ctl_reply_check(&r, what, 0);
	if (rc)
		goto out;
	if (msg)
		snprintf(msg, msgcap, "%.*s", (int)r.rep.msg_len, r.rep.msg ? r.rep.msg : "");
	if (raw) {
		*raw = strndup(r.rep.payload ? r.rep.payload : "", r.rep.payload_len);
		if (!*raw)
			rc = CTL_EXIT_FAIL;
	}
	if (j && ctl_json_parse(r.rep.payload ? r.rep.payload : "", r.rep.payload_len, j, err,
	                        sizeof(err)) != 0) {
		ctl_err("%s: the daemon's reply is not valid JSON (%s)", what, err);
		rc = CTL_EXIT_DAEMON;
	}
out:
	ctl_reply_close(&r);
	sv_proto_msgbuf_free(&mb);
	ctl_conn_close(&cn);
	return rc;
}

static int open_store(struct ctl_ctx *c, sv_store **st)
{
	struct sv_store_opts so;
	char err[SV_STORE_ERRMSG_MAX];
	int rc;

	if (!*c->store_path) {
		ctl_err("%s: needs the daemon's store on this machine: give -c FILE (the "
		        "daemon's config) or --state-dir DIR",
		        ctl_cli_verb_name(c->o->verb));
		return CTL_EXIT_USAGE;
	}
	sv_store_opts_default(&so);
	so.path = c->store_path;
	so.keep_versions = UINT32_MAX;
	rc = sv_store_open(st, &so, err, sizeof(err));
	if (rc) {
		ctl_err("cannot open the store %s: %s", c->store_path,
		        *err ? err : sv_strerror(rc));
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

/* The value of key in the daemon's config text (YAML, as sv_config_show()
 * renders it), or "unknown". */
static void config_value(const char *yaml, const char *key, char *out, size_t cap)
{
	struct sv_config cfg;
	struct sv_config_errors errs;

	snprintf(out, cap, "unknown");
	sv_config_defaults(&cfg);
	sv_config_errors_init(&errs);
	if (yaml && sv_config_load_string(&cfg, "daemon config", yaml, strlen(yaml), &errs) == 0)
		sv_config_get(&cfg, key, out, cap);
	sv_config_errors_free(&errs);
}

static int export_model(struct ctl_ctx *c)
{
	const char *path = c->o->args[0];
	struct ctl_json *st_json = NULL;
	char *cfg = NULL, loss[32], mode[32], msg[256], *side = NULL;
	sv_store *st = NULL;
	sv_store_read *r = NULL;
	struct sv_store_model m;
	uint32_t d_in = 0, d_out = 0;
	float *W = NULL;
	uint64_t v = 0;
	size_t plen = strlen(path);
	FILE *f;
	int rc;

	rc = admin(c, SV_PROTO_VERB_CHECKPOINT, 0, "export-model: checkpoint", NULL, msg,
	           sizeof(msg), NULL);
	if (!rc)
		rc = admin(c, SV_PROTO_VERB_STATUS, 0, "export-model: status", &st_json, NULL, 0,
		           NULL);
	if (!rc)
		rc = admin(c, SV_PROTO_VERB_CONFIG, 0, "export-model: config", NULL, NULL, 0, &cfg);
	if (!rc)
		rc = open_store(c, &st);
	if (rc)
		goto out;
	sv_store_dims(st, &d_in, &d_out);
	rc = sv_store_read_begin(st, &r);
	if (!rc)
		rc = sv_store_active(r, &v);
	if (!rc)
		rc = sv_store_model_get(r, v, &m);
	if (rc) {
		ctl_err("export-model: cannot read the active model from %s: %s", c->store_path,
		        sv_strerror(rc));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	W = malloc(sizeof(float) * d_in * d_out);
	if (!W) {
		ctl_err("export-model: out of memory");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	sv_store_model_weights(st, &m, W);
	rc = sv_npy_save(path, W, d_in, d_out);
	if (rc) {
		ctl_err("export-model: cannot write %s: %s", path, sv_strerror(rc));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	/* FILE.json beside FILE.npy */
	side = malloc(plen + 6);
	if (!side) {
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (plen > 4 && strcmp(path + plen - 4, ".npy") == 0)
		sprintf(side, "%.*s.json", (int)(plen - 4), path);
	else
		sprintf(side, "%s.json", path);
	config_value(cfg, "train.loss", loss, sizeof(loss));
	config_value(cfg, "train.mode", mode, sizeof(mode));
	f = fopen(side, "w");
	if (!f) {
		ctl_err("export-model: cannot write %s", side);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	fprintf(f, "{\"d_in\": %u, \"d_out\": %u, \"loss\": \"%s\", \"mode\": \"%s\", ", d_in,
	        d_out, loss, mode);
	fprintf(f, "\"threshold\": %.9g, \"threshold_policy\": ",
	        ctl_json_num(st_json, "threshold", NAN));
	ctl_json_write_str(f,
	                   ctl_json_str(st_json, "threshold_policy")
	                       ? ctl_json_str(st_json, "threshold_policy")
	                       : "unknown",
	                   strlen(ctl_json_str(st_json, "threshold_policy")
	                              ? ctl_json_str(st_json, "threshold_policy")
	                              : "unknown"));
	fprintf(f, ", \"version\": %llu, \"step\": %llu, \"applied_seq\": %llu, ",
	        (unsigned long long)v, (unsigned long long)m.step,
	        (unsigned long long)m.applied_seq);
	if (isfinite(m.loss))
		fprintf(f, "\"train_loss\": %.9g, ", m.loss);
	else
		fprintf(f, "\"train_loss\": null, ");
	fprintf(f, "\"dtype\": \"float32\", \"layout\": \"W[d_in][d_out], z = W^T x\"}\n");
	if (fclose(f) != 0) {
		ctl_err("export-model: cannot write %s", side);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	printf("exported model v%llu (%u x %u) to %s and %s\n", (unsigned long long)v, d_in, d_out,
	       path, side);
out:
	sv_store_read_end(r);
	sv_store_close(st);
	ctl_json_free(st_json);
	free(cfg);
	free(side);
	free(W);
	return rc;
}

static int import_model(struct ctl_ctx *c)
{
	const char *path = c->o->args[0];
	struct ctl_json *st_json = NULL;
	sv_store *st = NULL;
	sv_store_read *r = NULL;
	sv_store_txn *txn = NULL;
	struct sv_store_model m;
	uint32_t rows, cols, d_in, d_out;
	float *W = NULL;
	unsigned char *blobs = NULL;
	uint64_t v = 0;
	char msg[256];
	int rc;

	rc = sv_npy_load(path, &W, &rows, &cols);
	if (rc) {
		ctl_err("import-model: cannot read %s: %s", path,
		        rc == SV_ERR_VERSION ? "not a float32 C-order 2-D array" : sv_strerror(rc));
		return CTL_EXIT_FAIL;
	}
	rc = admin(c, SV_PROTO_VERB_STATUS, 0, "import-model: status", &st_json, NULL, 0, NULL);
	if (rc)
		goto out;
	d_in = (uint32_t)ctl_json_num(st_json, "d_in", 0);
	d_out = (uint32_t)ctl_json_num(st_json, "d_out", 0);
	if (rows != d_in || cols != d_out) {
		ctl_err("import-model: %s is %u x %u; the daemon's model is d_in x d_out = %u x %u",
		        path, rows, cols, d_in, d_out);
		rc = CTL_EXIT_REFUSED;
		goto out;
	}
	for (size_t i = 0; i < (size_t)rows * cols; i++) {
		if (!isfinite(W[i])) {
			ctl_err("import-model: %s holds NaN or Inf (element %zu)", path, i);
			rc = CTL_EXIT_REFUSED;
			goto out;
		}
	}
	rc = open_store(c, &st);
	if (rc)
		goto out;
	/* The active version's blobs, copied out: one transaction per thread. */
	rc = sv_store_read_begin(st, &r);
	if (!rc)
		rc = sv_store_model_get(r, 0, &m);
	if (!rc) {
		blobs = malloc(m.optim_len + m.settings_len + m.calib_len + 1);
		if (!blobs) {
			rc = -ENOMEM;
		} else {
			memcpy(blobs, m.optim, m.optim_len);
			memcpy(blobs + m.optim_len, m.settings, m.settings_len);
			memcpy(blobs + m.optim_len + m.settings_len, m.calib, m.calib_len);
			m.optim = blobs;
			m.settings = blobs + m.optim_len;
			m.calib = blobs + m.optim_len + m.settings_len;
		}
	}
	sv_store_read_end(r);
	r = NULL;
	if (!rc)
		rc = sv_store_txn_begin(st, &txn);
	if (!rc) {
		m.W = W;
		m.version = 0;
		m.time_ns = 0;
		m.loss = m.auc = m.eer = NAN;
		rc = sv_store_checkpoint_put(txn, &m, &v);
		if (!rc) {
			rc = sv_store_txn_commit(txn);
		} else {
			sv_store_txn_abort(txn);
		}
		txn = NULL;
	}
	if (rc) {
		ctl_err("import-model: cannot store the model in %s: %s", c->store_path,
		        sv_strerror(rc));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	sv_store_close(st);
	st = NULL;
	rc = admin(c, SV_PROTO_VERB_ROLLBACK, v, "import-model: rollback", NULL, msg, sizeof(msg),
	           NULL);
	if (!rc)
		printf("imported %s as v%llu: %s\n", path, (unsigned long long)v, msg);
out:
	sv_store_read_end(r);
	sv_store_close(st);
	ctl_json_free(st_json);
	free(blobs);
	free(W);
	return rc;
}

int ctl_model_run(struct ctl_ctx *c)
{
	return c->o->verb == CTL_VERB_EXPORT_MODEL ? export_model(c) : import_model(c);
}
