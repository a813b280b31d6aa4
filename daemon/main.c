/* simverifyd - the streaming similarity-verification daemon.
 *
 * The whole story: parse the command line and configuration; open the store;
 * recover the model (active checkpoint + replay of the pair log); bind the
 * sockets and start the threads (trainer = the only store writer, query
 * workers, admin); tell systemd READY=1; wait for signals; on SIGTERM stop
 * input, train the batch in hand, checkpoint and exit 0.
 * Each step's details live in its own file (daemon.h lists them).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "admin.h"
#include "settings.h"
#include "cluster.h"
#include "curve.h"
#include "expo.h"
#include "history.h"
#include "http.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "query.h"
#include "restore.h"
#include "sv/error.h"
#include "topk_cache.h"
#include "trainer.h"

/* One daemon per state directory and per store: an flock on
 * DIR/simverifyd.lock, held (fd left open) until exit, taken on the state
 * directory and on the store's directory (another state directory's
 * store.path may point at it).  A second daemon would steal the ipc://
 * sockets, or write a second history into the same store. */
static int lock_dir(const char *dir)
{
	char path[SV_ENDPOINT_MAX + 32], pid[32] = "";
	int fd, n;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_msg(LOG_ERR, "SV-MAIN-LOCK", "cannot make %s: %s", dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/simverifyd.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_msg(LOG_ERR, "SV-MAIN-LOCK", "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = (int)read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		log_msg(LOG_ERR, "SV-MAIN-LOCK", "another simverifyd (pid %s) runs on %s; exiting",
		       pid[0] ? pid : "?", dir);
		close(fd);
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, pid, (size_t)n) < 0)
		log_msg(LOG_WARNING, "SV-MAIN-LOCK", "cannot write the pid into %s", path);
	return 0; /* fd stays open: the lock lives as long as the process */
}

static int open_store(struct sv_daemon *d)
{
	struct sv_store_opts o = d->conf.store;
	char err[SV_STORE_ERRMSG_MAX] = "";
	int rc;

	o.path = d->conf.store_path;
	if (mkdir(d->conf.state_dir, 0700) < 0 && errno != EEXIST) {
		log_msg(LOG_ERR, "SV-MAIN-STATEDIR", "cannot make state directory %s: %s",
		       d->conf.state_dir, strerror(errno));
		return -errno;
	}
	rc = lock_dir(d->conf.state_dir);
	if (rc == 0 && strcmp(d->conf.store_path, d->conf.state_dir) != 0)
		rc = lock_dir(d->conf.store_path);
	if (rc < 0)
		return rc;
	rc = sv_store_open(&d->store, &o, err, sizeof(err));
	if (rc < 0)
		log_msg(LOG_ERR, "SV-STORE-OPEN", "cannot open store %s: %s (%s)%s", o.path, err,
		       sv_strerror(rc),
		       rc == SV_ERR_STORE_SETTINGS
		           ? "; train.loss, train.mode and train.optimizer are fixed for a store"
		           : "");
	return rc;
}

int main(int argc, char **argv)
{
	static struct sv_daemon d;
	struct settings_cli cli;
	struct trainer *tr = NULL;
	struct dquery *q = NULL;
	struct dadmin *adm = NULL;
	struct http *web = NULL;
	struct cluster *cl = NULL;
	int rc, sigfd;

	log_init();
	expo_mark_start();
	rc = settings_parse_args(argc, argv, &cli);
	if (rc != 0)
		return rc == 1 ? 0 : 2;
	if (settings_build(&d.conf, &cli) < 0 || curve_check(&d.conf) < 0)
		return 1;
	if (cli.check_only) {
		printf("configuration OK\n");
		return 0;
	}
	if (cli.force && !cli.restore) {
		fprintf(stderr, "simverifyd: --force goes with --restore\n");
		return 2;
	}
	if (cli.restore) { /* with the daemon stopped: the state directory lock says so */
		if (lock_dir(d.conf.state_dir) < 0 ||
		    (access(d.conf.store_path, F_OK) == 0 && lock_dir(d.conf.store_path) < 0))
			return 1;
		return restore_run(&d.conf, cli.restore, cli.force) < 0 ? 1 : 0;
	}
	if (geteuid() == 0 && !cli.allow_root) {
		log_msg(LOG_ERR, "SV-MAIN-ROOT",
		       "refusing to run as root (use a dedicated user, or --allow-root)");
		return 1;
	}
	log_set_level(d.conf.live.log_level);
	d.live = d.conf.live;
	pthread_mutex_init(&d.live_mu, NULL);
	snap_slot_init(&d.snap);
	atomic_store(&d.prog.not_ready, SV_READY_STARTING);
	/* nothing measured yet: STATUS says null, the exposition NaN */
	atomic_store(&d.prog.auc, NAN);
	atomic_store(&d.prog.eer, NAN);
	atomic_store(&d.prog.loss, NAN);
	atomic_store(&d.prog.grad_norm, NAN);
	atomic_store(&d.prog.tar_far_1e2, NAN);
	atomic_store(&d.prog.tar_far_1e3, NAN);
	sigfd = loop_signals_install();
	if (sigfd < 0 || notify_open() < 0)
		log_msg(LOG_WARNING, "SV-MAIN-NOTIFY",
		       "signal pipe or NOTIFY_SOCKET unusable; continuing");

	rc = history_new(&d.hist);
	if (rc == 0)
		rc = open_store(&d);
	if (rc == 0)
		rc = trainer_open(&tr, &d); /* load the active model, replay the log */
	d.zctx = zmq_ctx_new();
	if (rc == 0)
		rc = curve_start(&d); /* CURVE keys, ZAP handler: before any bind */
	if (rc == 0)
		rc = topk_cache_start(&d.topk, &d); /* before the trainer notes item changes */
	if (rc == 0)
		rc = trainer_start(tr);
	if (rc == 0)
		rc = cluster_start(&cl, &d); /* the gateway binds the ingest endpoints */
	if (rc == 0)
		rc = query_start(&q, &d);
	if (rc == 0)
		rc = admin_start(&adm, &d);
	if (rc == 0)
		rc = http_start(&web, &d); /* read-only monitoring */
	if (rc == 0) {
		log_msg(LOG_NOTICE, "SV-MAIN-READY", "ready: model v%llu, step %llu, store %s",
		       (unsigned long long)atomic_load(&d.prog.model_version),
		       (unsigned long long)atomic_load(&d.prog.steps), d.conf.store_path);
		int starting = SV_READY_STARTING; /* a replica stays "following" (cluster.c) */

		atomic_compare_exchange_strong(&d.prog.not_ready, &starting, SV_READY_OK);
		notify_send("READY=1\nSTATUS=ready");
		loop_run(&d, sigfd, &cli);
	} else {
		notify_sendf("STATUS=startup failed: %s\nERRNO=%d", sv_strerror(rc),
		                rc > -4096 ? -rc : 0);
	}

	atomic_store(&d.prog.not_ready, SV_READY_STOPPING);
	atomic_store(&d.stopping, 1);
	trainer_join(tr);         /* trains the batch in hand, checkpoints */
	zmq_ctx_shutdown(d.zctx); /* wakes query, admin and cluster threads */
	cluster_stop(cl);
	curve_stop();
	query_stop(q);
	admin_stop(adm); /* STATUS, and the HTTP endpoint's /metrics, read the top-k cache: */
	http_stop(web);  /* both stop before it is freed */
	topk_cache_stop(d.topk);
	trainer_close(tr);
	zmq_ctx_term(d.zctx);
	sv_store_close(d.store);
	snap_slot_destroy(&d.snap);
	history_free(d.hist);
	notify_close();
	if (rc == 0 && atomic_load(&d.failed))
		rc = SV_ERR_STATE;
	log_msg(LOG_NOTICE, "SV-MAIN-EXIT", "exit %d", rc == 0 ? 0 : 1);
	return rc == 0 ? 0 : 1;
}
