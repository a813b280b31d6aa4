/* sv/error.h - error codes shared by every libsimverify module.
 *
 * Every function in libsimverify that can fail returns int: 0 on success,
 * a negative value on failure.  Three families of negative values exist:
 *
 *   -1 .. -4095          -errno, for operating-system failures (-ENOMEM, -EIO, ...)
 *   -30600 .. -30799     LMDB's own codes (MDB_MAP_FULL, MDB_NOTFOUND, ...),
 *                        passed through unchanged by the store
 *   SV_ERR_* below       simverify's own codes, a block of their own from -20000 down
 *
 * sv_strerror() names any of them.  Out-parameters are written only on
 * success.  lib/ never logs: the caller decides what a failure means and
 * logs it once.
 */
#ifndef SV_ERROR_H
#define SV_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum sv_error {
	SV_OK = 0,

	/* generic */
	SV_ERR_SHAPE = -20001,      /* a dimension or count does not match what was expected */
	SV_ERR_NONFINITE = -20002,  /* NaN or Inf in an input vector or parameter */
	SV_ERR_RANGE = -20003,      /* a parameter lies outside its documented bounds */
	SV_ERR_STATE = -20004,      /* the call is not valid in the object's current state */
	SV_ERR_NOTFOUND = -20005,   /* the named item, version or key does not exist */
	SV_ERR_TRUNCATED = -20006,  /* input ended before a complete record */
	SV_ERR_MAGIC = -20007,      /* a file or message does not start with the expected magic */
	SV_ERR_VERSION = -20008,    /* a file, message or store has an unsupported version */
	SV_ERR_TOOBIG = -20009,     /* a size exceeds its configured limit */
	SV_ERR_CORRUPT = -20010,    /* stored data fails its own consistency checks */

	/* store (-20100) */
	SV_ERR_STORE_DIMS = -20101,     /* the store was made with other d_in/d_out */
	SV_ERR_STORE_SCHEMA = -20102,   /* the store has another schema version */
	SV_ERR_STORE_SETTINGS = -20103, /* the store's fixed settings differ from the config */
	SV_ERR_STORE_FULL = -20104,     /* the map reached store.max_map_size */
	SV_ERR_DUPLICATE = -20105,      /* a (client id, client seq) pair is already logged */
	SV_ERR_STALE = -20106,          /* a client seq below the client's de-duplication window */

	/* protocol (-20200) */
	SV_ERR_PROTO = -20201,          /* a malformed message; the codec says which frame and field */
	SV_ERR_PROTO_VERB = -20202,     /* an unknown verb */

	/* config (-20300) */
	SV_ERR_CONFIG = -20301,         /* the configuration has errors; each was reported */

	/* metrics (-20400) */
	SV_ERR_METRICS_ONECLASS = -20401, /* scores of one class only: no ROC without both */
};

/* A static, human-readable name for any return code (never NULL). */
const char *sv_strerror(int rc);

#ifdef __cplusplus
}
#endif
#endif
