/* restore.c - simverifyd --restore (see restore.h). */
#include "restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sv/error.h"
#include "sv/store.h"

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Copy file src to dst (created, 0600), fsynced. */
static int copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = -errno;
				break;
			}
			off += w;
		}
		if (rc)
			break;
	}
	if (rc == 0 && fsync(out) < 0)
		rc = -errno;
	close(out);
	close(in);
	return rc;
}

static int fail(const char *what, const char *path, int rc)
{
	fprintf(stderr, "simverifyd: restore: %s %s: %s\n", what, path, sv_strerror(rc));
	return rc;
}

int restore_run(const struct sv_dconf *c, const char *from, int force)
{
	char src[SV_ENDPOINT_MAX + 16], tmp[SV_ENDPOINT_MAX + 16], file[SV_ENDPOINT_MAX + 32];
	char old[SV_ENDPOINT_MAX + 48], err[SV_STORE_ERRMSG_MAX] = "";
	const char *target = c->store_path;
	struct sv_store_opts o = c->store;
	struct sv_store_stat st = {0};
	struct stat sb;
	uint64_t active = 0;
	sv_store *s = NULL;
	sv_store_read *r = NULL;
	int rc;

	snprintf(src, sizeof(src), "%s/data.mdb", from);
	if (stat(src, &sb) < 0 || !S_ISREG(sb.st_mode))
		return fail("no backup (data.mdb) in", from, stat(src, &sb) < 0 ? -errno : -EINVAL);
	snprintf(file, sizeof(file), "%s/data.mdb", target);
	if (stat(file, &sb) == 0 && !force) {
		fprintf(stderr,
		        "simverifyd: restore: store.path %s already holds a store; move it away, or "
		        "--force (it is then kept as %s.pre-restore-UNIXTIME)\n",
		        target, target);
		return -EEXIST;
	}
	/* the copy, beside the target, then checked by opening it */
	snprintf(tmp, sizeof(tmp), "%s.restoring", target);
	snprintf(file, sizeof(file), "%s/data.mdb", tmp);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", tmp);
	unlink(file);
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return fail("cannot make", tmp, -errno);
	snprintf(file, sizeof(file), "%s/data.mdb", tmp);
	rc = copy_file(src, file);
	if (rc < 0)
		return fail("cannot copy the backup to", file, rc);
	o.path = tmp;
	rc = sv_store_open(&s, &o, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "simverifyd: restore: the backup in %s does not open with this "
		                "configuration: %s (%s)\n", from, err, sv_strerror(rc));
		return rc;
	}
	if (sv_store_read_begin(s, &r) == 0) {
		sv_store_stat(r, &st);
		sv_store_active(r, &active);
	}
	sv_store_read_end(r);
	sv_store_close(s);
	snprintf(file, sizeof(file), "%s/lock.mdb", tmp);
	unlink(file);
	if (stat(target, &sb) == 0) {
		snprintf(old, sizeof(old), "%s.pre-restore-%lld", target, (long long)time(NULL));
		if (rename(target, old) < 0)
			return fail("cannot move the old store aside:", target, -errno);
		printf("kept the old store as %s\n", old);
	}
	if (rename(tmp, target) < 0)
		return fail("cannot rename the copy to", target, -errno);
	/* run as root for a service with DynamicUser=: the files are the state
	 * directory owner's, as the daemon would have made them */
	if (geteuid() == 0 && stat(c->state_dir, &sb) == 0 && sb.st_uid != 0) {
		snprintf(file, sizeof(file), "%s/data.mdb", target);
		if (chown(target, sb.st_uid, sb.st_gid) < 0 || chown(file, sb.st_uid, sb.st_gid) < 0)
			return fail("cannot give the restored store to the state directory's owner:",
			            target, -errno);
	}
	snprintf(file, sizeof(file), "%s/..", target);
	fsync_path(file);
	printf("restored %s into %s: active model v%llu, %llu log rows (seq %llu..%llu), "
	       "%llu items\n",
	       from, target, (unsigned long long)active, (unsigned long long)st.pairs,
	       (unsigned long long)st.first_seq, (unsigned long long)st.last_seq,
	       (unsigned long long)st.items);
	return 0;
}
