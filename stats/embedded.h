/*
 * embedded.h — the embedded Redis: when the config has no redis.url, the switchyard
 * master runs its own redis-server as a child process, listening only on a unix
 * socket in the data directory, with the append-only file on, so that a restart with
 * the same data directory finds its statistics again.
 *
 * Runs in the master before any event loop exists and before workers are forked; it
 * uses plain fork/exec and waitpid on the child's own pid (never waitpid(-1)).
 *
 * Files in DIR: redis.sock (the socket), redis.log (the server's log, and its stdout
 * and stderr), redis.pid (written by the server, removed on a clean shutdown),
 * appendonlydir/ (the AOF), embedded.lock (see "one server per directory" below).
 *
 * Decisions:
 * - Process group: the server gets its OWN process group (setpgid in the child). A
 *   terminal's Ctrl-C sends SIGINT to the whole foreground group; in the master's
 *   group, Redis would shut down at once while the workers are still draining and
 *   flushing their events to it. In its own group it sees neither Ctrl-C nor anything
 *   sent to the master's group, and is stopped last, by sy_embedded_stop, after the
 *   workers have exited. If the master dies without stopping it (even by SIGKILL),
 *   PR_SET_PDEATHSIG delivers SIGTERM to it. Note for service managers: systemd's
 *   default KillMode=control-group sends SIGTERM to every process of the unit at once,
 *   Redis included; use KillMode=mixed so that only the master gets it.
 * - PR_SET_PDEATHSIG fires when the THREAD that forked the server exits, so
 *   sy_embedded_start must be called from the master's main thread.
 * - One server per directory: the master opens DIR/embedded.lock, takes an exclusive
 *   flock() on it, and hands that descriptor to the server (as fd 3), then closes its
 *   own copy. The lock therefore lives exactly as long as the server process (a server
 *   left running by a crashed switchyard still holds it), and is released by the
 *   kernel when it exits, however it exits. A start that finds the lock held REFUSES
 *   with an error naming the pid in DIR/redis.pid; it does not reuse the running
 *   server, because it could neither reap nor supervise it, could not know how it was
 *   configured, and would stop it under the other owner's feet. A server that holds no
 *   lock but answers on DIR/redis.sock (started by hand, say) is refused the same way,
 *   naming the pid from its INFO.
 * - A socket file that nobody accepts connections on is stale and is removed before
 *   the start. (Redis also unlinks its socket path itself before binding.)
 * - The child's signal mask and dispositions are reset (the master may already block
 *   SIGTERM/SIGINT/SIGCHLD for sigwait, and a blocked mask survives exec), its stdin is
 *   /dev/null and every other descriptor from 4 up is closed before exec.
 */
#ifndef SY_EMBEDDED_H
#define SY_EMBEDDED_H

#include <stddef.h>
#include <sys/types.h>

typedef struct sy_embedded_s {
  pid_t pid;      /* 0 when not running */
  char dir[4096]; /* data dir (absolute, symlinks resolved) */
  char sock[108]; /* DIR/redis.sock (error if the absolute path is too long for sun_path) */
} sy_embedded_t;

/*
 * Creates data_dir if needed (mode 0700, parents too; an existing directory's mode is
 * left alone), then starts `server` (a path if it contains '/', else a name looked up
 * in PATH; NULL means "redis-server") as
 *
 *   SERVER --port 0 --unixsocket DIR/redis.sock --unixsocketperm 700 --dir DIR
 *          --appendonly yes --appendfsync everysec --save "" --daemonize no
 *          --logfile DIR/redis.log --pidfile DIR/redis.pid
 *
 * (no TCP listener, no RDB snapshots: the AOF is the only persistence, so a second
 * start on DIR loads the data back from it). Blocks until the server answers PING
 * with PONG on the socket (a server still loading its AOF answers -LOADING and is
 * waited for), or until timeout_ms passes (0 means 10000), or until the child exits.
 * See the file comment for the process-group, parent-death and one-server-per-directory
 * decisions: a directory already served by a live redis-server is refused, with its pid.
 *
 * Returns 0 with e->pid, e->dir and e->sock set; or -1 with e->pid == 0, no child left
 * behind, and a one-line reason in err (an exit during startup gives the exit status
 * and the last lines of DIR/redis.log). *e needs no initialisation.
 */
int sy_embedded_start(sy_embedded_t *e, const char *data_dir, const char *server,
                      unsigned timeout_ms, char *err, size_t errlen);

/*
 * Stops the server: SIGTERM (Redis fsyncs its AOF and exits 0), waits up to
 * timeout_ms for it to exit (0: not at all), then SIGKILLs its process group (which
 * also takes an AOF-rewrite child with it) and reaps it. Sets e->pid to 0. Safe to
 * call when not running (e == NULL or e->pid == 0): does nothing and returns -1.
 *
 * Returns the exit status (0..255) if it exited, 128 + the signal number if a signal
 * ended it (137 after the SIGKILL), or -1 if it was not running or had already been
 * reaped by someone else (a waitpid(-1) elsewhere); in that last case nothing is sent,
 * since the pid may belong to another process by now.
 */
int sy_embedded_stop(sy_embedded_t *e, unsigned timeout_ms);

#endif
