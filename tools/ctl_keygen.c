/* ctl_keygen.c - `simverifyctl keygen BASE`: a CurveZMQ key pair for the
 * daemon or a client (docs/SECURITY.md).
 *
 * Writes BASE.key (the secret key, created 0600) and BASE.pub (the public
 * key, 0644), each a comment line and the 40-character Z85 key, the format
 * daemon/curve.c reads.  Never overwrites (O_EXCL); on failure nothing is
 * left behind.  Leaves out: reading keys, certificates with metadata.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl.h"

static int write_new(const char *path, mode_t mode, const char *what, const char *key)
{
	char text[160];
	int fd, n = snprintf(text, sizeof(text), "# simverify CURVE %s key (simverifyctl keygen)\n%s\n",
	                     what, key);

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		ctl_err("%s: %s", path, strerror(errno));
		return -1;
	}
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0 || close(fd) < 0) {
		ctl_err("%s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

int ctl_keygen(const char *base)
{
	char pub[41], sec[41], kpath[4096], ppath[4096];
	int rc = CTL_EXIT_FAIL;

	if (snprintf(kpath, sizeof(kpath), "%s.key", base) >= (int)sizeof(kpath) ||
	    snprintf(ppath, sizeof(ppath), "%s.pub", base) >= (int)sizeof(ppath)) {
		ctl_err("keygen: name too long");
		return CTL_EXIT_FAIL;
	}
	if (!zmq_has("curve") || zmq_curve_keypair(pub, sec) < 0) {
		ctl_err("keygen: this libzmq cannot make CURVE keys: %s", zmq_strerror(zmq_errno()));
		return CTL_EXIT_FAIL;
	}
	if (access(ppath, F_OK) == 0) {
		ctl_err("%s: exists; not overwriting", ppath);
		goto out;
	}
	if (write_new(kpath, 0600, "secret", sec) < 0)
		goto out;
	if (write_new(ppath, 0644, "public", pub) < 0) {
		unlink(kpath);
		goto out;
	}
	printf("%s\n", pub);
	rc = CTL_EXIT_OK;
out:
	memset(sec, 0, sizeof(sec));
	return rc;
}
