/* restore.c - simverifyd --restore (see restore.h). */
#include "restore.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sv/error.h"
#include "sv/store.h"

static int fail(const char *what, const char *path, int rc)
{
	fprintf(stderr, "simverifyd: restore: %s %s: %s\n", what, path, sv_strerror(rc));
	return rc;
}

int restore_run(const struct sv_dconf *c, const char *from, int force)
{
	char file[SV_ENDPOINT_MAX + 32], old[SV_ENDPOINT_MAX + 48], err[SV_STORE_ERRMSG_MAX] = "";
	const char *target = c->store_path;
	struct sv_store_opts o = c->store;
	struct sv_store_stat st = {0};
	struct stat sb;
	uint64_t active = 0;
	sv_store *s = NULL;
	sv_store_read *r = NULL;
	int rc;

	snprintf(file, sizeof(file), "%s/data.mdb", target);
	if (stat(file, &sb) == 0 && !force) {
		fprintf(stderr,
		        "simverifyd: restore: store.path %s already holds a store; move it away, or "
		        "--force (it is then kept as %s.pre-restore-UNIXTIME)\n",
		        target, target);
		return -EEXIST;
	}
	if (stat(target, &sb) == 0) { /* the old store, or an empty store directory */
		snprintf(old, sizeof(old), "%s.pre-restore-%lld", target, (long long)time(NULL));
		if (rename(target, old) < 0)
			return fail("cannot move the old store aside:", target, -errno);
		printf("kept the old store directory as %s\n", old);
	}
	o.path = target;
	rc = sv_store_restore(&o, from, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "simverifyd: restore from %s: %s (%s)\n", from, err, sv_strerror(rc));
		return rc;
	}
	/* run as root for a service with DynamicUser=: the files are the state
	 * directory owner's, as the daemon would have made them */
	if (geteuid() == 0 && stat(c->state_dir, &sb) == 0 && sb.st_uid != 0 &&
	    (chown(target, sb.st_uid, sb.st_gid) < 0 || chown(file, sb.st_uid, sb.st_gid) < 0))
		return fail("cannot give the restored store to the state directory's owner:", target,
		            -errno);
	if (sv_store_open(&s, &o, err, sizeof(err)) == 0 && sv_store_read_begin(s, &r) == 0) {
		sv_store_stat(r, &st);
		sv_store_active(r, &active);
	}
	sv_store_read_end(r);
	sv_store_close(s);
	printf("restored %s into %s: active model v%llu, %llu log rows (seq %llu..%llu), "
	       "%llu items\n",
	       from, target, (unsigned long long)active, (unsigned long long)st.pairs,
	       (unsigned long long)st.first_seq, (unsigned long long)st.last_seq,
	       (unsigned long long)st.items);
	return 0;
}
