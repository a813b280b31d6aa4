/* ctl_keygen.c - CURVE for simverifyctl (docs/SECURITY.md).
 *
 * `simverifyctl keygen BASE` writes BASE.key (the secret key, created 0600)
 * and BASE.pub (the public key, 0644), each a comment line and the
 * 40-character Z85 key, the format daemon/curve.c reads.  Never overwrites
 * (O_EXCL); on failure nothing is left behind.
 *
 * ctl_curve_client makes every tcp:// connection a CURVE client when
 * SIMVERIFY_CURVE_SERVER names the daemon's public key file and
 * SIMVERIFY_CURVE_KEY this client's secret key file (its public key is
 * derived).  Leaves out: certificates with metadata, command-line options
 * for the keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The first 40-character token of the first line that is not blank or a
 * '#' comment, decoded.  Returns 0 or -1 (message printed). */
static int read_key(const char *path, uint8_t key[32], char z85[41])
{
	char line[256];
	FILE *f = fopen(path, "r");
	int rc = -1;

	if (f == NULL) {
		ctl_err("%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s = line + strspn(line, " \t");
		size_t n = strcspn(s, " \t\r\n");

		if (*s == '#' || n == 0)
			continue;
		if (n == 40) {
			memcpy(z85, s, 40);
			z85[40] = 0;
			rc = zmq_z85_decode(key, z85) ? 0 : -1;
		}
		break;
	}
	fclose(f);
	if (rc < 0)
		ctl_err("%s: no 40-character Z85 key", path);
	return rc;
}

int ctl_curve_client(void *sock, const char *endpoint)
{
	const char *srv = getenv("SIMVERIFY_CURVE_SERVER"), *own = getenv("SIMVERIFY_CURVE_KEY");
	uint8_t server[32], secret[32], public_key[32];
	char z85[41], pub[41];
	int rc = -1;

	if (strncmp(endpoint, "tcp://", 6) != 0 || srv == NULL || *srv == 0)
		return 0;
	if (own == NULL || *own == 0) {
		ctl_err("SIMVERIFY_CURVE_SERVER is set but SIMVERIFY_CURVE_KEY (this client's .key file) is not");
		return -1;
	}
	if (read_key(srv, server, z85) < 0 || read_key(own, secret, z85) < 0)
		goto out;
	if (zmq_curve_public(pub, z85) < 0 || zmq_z85_decode(public_key, pub) == NULL) {
		ctl_err("%s: cannot derive the public key: %s", own, zmq_strerror(zmq_errno()));
		goto out;
	}
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 32) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public_key, 32) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 32) < 0) {
		ctl_err("CURVE client options: %s", zmq_strerror(zmq_errno()));
		goto out;
	}
	rc = 0;
out:
	memset(secret, 0, sizeof(secret));
	memset(z85, 0, sizeof(z85));
	return rc;
}
