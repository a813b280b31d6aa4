/* restore.h - simverifyd --restore BACKUP_DIR: put a backup in place of the
 * store, with the daemon stopped.
 *
 * The backup's data.mdb is copied to STORE.restoring/, fsynced, opened
 * once with this configuration's store settings (dims, the fixed training
 * settings: a backup of another configuration is refused by name, and a
 * schema-1 backup is brought to schema 2 there), and only then renamed to
 * store.path.  A store already at store.path is refused, or with --force
 * kept as STORE.pre-restore-UNIXTIME.  The backup itself is never written.
 * Run as root, the restored files get the state directory's owner (a
 * service with DynamicUser= could not read them otherwise).
 * The daemon started afterwards loads the backup's active model and replays
 * the log after its applied_seq, as after any restart.
 *
 * Leaves out: taking backups (sv_store_backup, the admin BACKUP verb).
 */
#ifndef SV_DAEMON_RESTORE_H
#define SV_DAEMON_RESTORE_H

#include "daemon.h"

/* Restore from directory `from` into c->store_path; prints what it did to
 * stdout, failures to stderr.  The caller holds the state directory lock.
 * Returns 0 or a negative code. */
int restore_run(const struct sv_dconf *c, const char *from, int force);

#endif
