/*
 * rkt-monitor: the per-pod supervisor.
 *
 * `rkt run` prepares the pod (bundles, monitor.conf) and then execve()s this
 * program, so the pod's PID stays the same from preparation to exit. It is
 * written in plain C with libc only because it lives as long as the pod does
 * and the host-side footprint of a running pod must stay small; everything
 * that needs logic beyond supervision stays in the Node side.
 *
 * Isolation is runc's job: this program never creates namespaces. It mounts
 * the app overlays, starts the apps with `runc run -d`, becomes their parent
 * through PR_SET_CHILD_SUBREAPER, copies their output to its own stdio and to
 * CRI-format log files, applies the exit policy and finally hands cleanup to a
 * detached process so that `rkt run` returns as soon as the apps are done.
 *
 * See stage1/README.md for the monitor.conf format and the files written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* rkt's exit code for "the pod could not run" (as opposed to an app's code). */
#define EXIT_FAIL 254
/* The CRI log line unit: longer lines become P records. */
#define LOG_LINE_MAX (16 * 1024)
#define READ_CHUNK (16 * 1024)
/* Fixed caps keep memory bounded whatever monitor.conf contains. */
#define MAX_APPS 128
#define MAX_OVERLAYS 32
#define MAX_ORPHANS 64
/* Room for the longest valid line: an overlay with four PATH_MAX fields. */
#define CONF_LINE_MAX (4 * PATH_MAX + 64)
/* The kernel copies at most one page of legacy mount(2) data. */
#define MOUNT_DATA_MAX 4096
/* Fields of one monitor.conf line (a `cleanup` line is an argv). */
#define CONF_FIELDS_MAX 16
/* A runc delete that hangs must not keep the cleanup process forever. */
#define CLEANUP_CMD_TIMEOUT_S 30

struct stream {
	int fd;			/* our read end; -1 once EOF was seen */
	int out_fd;		/* 1 or 2: where the bytes are forwarded */
	const char *label;	/* "stdout" / "stderr" in log records */
	size_t len;		/* bytes of the pending (unterminated) line */
	char *buf;		/* LOG_LINE_MAX bytes, allocated when started */
};

enum app_state {
	APP_PENDING,		/* not started (and never will be once stopping) */
	APP_STARTING,		/* `runc run -d` in flight */
	APP_RUNNING,		/* host pid known, not reaped yet */
	APP_EXITED,		/* reaped; may still have output to drain */
	APP_FAILED,		/* runc could not start it */
};

struct app {
	char *name, *id, *bundle;
	enum app_state state;
	pid_t runc_pid;
	pid_t pid;
	int code;
	int log_fd;
	bool log_error_reported;
	int64_t drain_deadline;	/* monotonic ms; 0 = none */
	bool gated;		/* created by runc, held until the network is ready */
	struct stream out, err;
	char *oom_file;		/* cgroup file with an `oom_kill N` line, or NULL */
};

/* An overlay mount, or (idmap) an idmapped bind of `lower` on `target`. */
struct overlay {
	char *lower, *upper, *work, *target;
	bool mounted;
	bool idmap;
	unsigned host_id, count;
};

static struct {
	char *uuid;
	char *runtime;
	char *pause;
	char *cleanup[CONF_FIELDS_MAX + 1];	/* argv of the final cleanup command, NULL-terminated */
	/* net-gate: the CLI finishes the network while runc creates the app */
	char *net_ready, *net_failed, *netns;
	bool fail_fast;
	unsigned stop_timeout;
	bool interactive;
	bool debug;
	struct app apps[MAX_APPS];
	size_t napps;
	struct overlay ovl[MAX_OVERLAYS];
	size_t novl;
} conf = { .fail_fast = true, .stop_timeout = 10 };

static char pod_dir[PATH_MAX];
static int sig_fd = -1;
static int devnull_fd = -1;
/* Forwarding to our own stdout/stderr stops once they are gone. */
static bool forward_ok[3] = { false, true, true };

static size_t next_app;
static bool ready_written;
static bool stopping;
static bool kill_sent;
static int64_t kill_deadline;
static bool start_failed;
/* The network gate (see wait_netns and check_gate). */
enum { GATE_NONE, GATE_WAIT, GATE_OPEN, GATE_FAILED };
static int gate = GATE_NONE;
static int64_t gate_deadline;
static pid_t cli_pid;		/* the CLI that hands over (RKT_CLI_PID), still finishing the network */
static bool cli_gone;
static bool have_code;
static int pod_code;

/*
 * A started app can exit, and be re-parented to us and reaped, before its
 * `runc run -d` is reaped and we know its pid from the pid file. Statuses
 * of pids we did not recognise are kept here during such a launch window.
 * The table is emptied at every launch: a pid reaped inside the window
 * cannot be reused by the app being launched (both existed at once), so a
 * match is never stale.
 */
static struct {
	pid_t pid;
	int status;
} orphans[MAX_ORPHANS];
static size_t norphans, orphan_next;

static char read_buf[READ_CHUNK];

static void stream_close(struct app *a, struct stream *s);

/* ---- small helpers ---------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Loops over partial writes; a non-blocking fd (set by someone sharing our
 * stdio) gets a bounded wait rather than a busy loop or an endless block. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				int r = poll(&pfd, 1, 1000);

				if (r < 0 && errno != EINTR)
					return -errno;
				if (r == 0)
					return -EAGAIN;
				continue;
			}
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void vsay(const char *prefix, const char *fmt, va_list ap)
{
	char buf[3 * PATH_MAX + 256];
	size_t plen = strlen(prefix);
	int n;

	memcpy(buf, prefix, plen);
	n = vsnprintf(buf + plen, sizeof(buf) - plen - 1, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - plen - 2)
		n = (int)(sizeof(buf) - plen - 2);
	buf[plen + (size_t)n] = '\n';
	/* Nobody to tell if our stderr is gone. */
	(void)write_all(2, buf, plen + (size_t)n + 1);
}

__attribute__((format(printf, 1, 2)))
static void msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("rkt: ", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2)))
static void dbg(const char *fmt, ...)
{
	va_list ap;

	if (!conf.debug)
		return;
	va_start(ap, fmt);
	vsay("rkt-monitor: ", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4)))
static int pathf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];

		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		buf[i] = c;
	}
	return 0;
}

/* Readers (rkt status, rkt list) must never see a half-written file. */
static int write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, r, saved;

	if (pathf(tmp, sizeof(tmp), "%s.tmp", path) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -1;
	r = write_all(fd, data, len);
	if (r < 0) {
		close(fd);
		unlink(tmp);
		errno = -r;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

/* Failing to record state is worth a warning, not worth killing the pod. */
static void record(const char *path, const char *data)
{
	if (write_atomic(path, data, strlen(data)) < 0)
		msg("cannot write %s: %s", path, strerror(errno));
}

static void record_app(const struct app *a, const char *file, const char *data)
{
	char path[PATH_MAX];

	if (pathf(path, sizeof(path), "%s/apps/%s/%s", pod_dir, a->name, file) < 0) {
		msg("cannot write %s of app %s: %s", file, a->name, strerror(errno));
		return;
	}
	record(path, data);
}

static void record_pod(const char *file, const char *data)
{
	char path[PATH_MAX];

	if (pathf(path, sizeof(path), "%s/%s", pod_dir, file) < 0) {
		msg("cannot write %s: %s", file, strerror(errno));
		return;
	}
	record(path, data);
}

static void now_ns_str(char *out, size_t size)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		ts.tv_sec = ts.tv_nsec = 0;
	snprintf(out, size, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

/* RFC3339 with a fixed 9-digit fraction: sortable and what CRI parsers take. */
static void log_timestamp(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		ts.tv_sec = ts.tv_nsec = 0;
	if (!gmtime_r(&ts.tv_sec, &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		strcpy(base, "1970-01-01T00:00:00");
	snprintf(out, size, "%s.%09ldZ", base, (long)ts.tv_nsec);
}

/*
 * Children must not inherit our blocked signals or the dispositions we (or
 * Node before the execve: it ignores SIGPIPE) set to SIG_IGN: both survive
 * exec and would end up in runc and the apps.
 */
static void child_reset_signals(void)
{
	sigset_t none;

	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);	/* EINVAL for glibc's internal ones */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * crun refuses hosts whose cgroup2 hierarchy lists controllers next to the
 * v1 ones ("hybrid"): it reads /sys/fs/cgroup/unified/cgroup.controllers
 * when it puts a container in its cgroups. Without touching the host's
 * cgroup settings, `crun create|run` gets a private mount namespace in which
 * that file is /dev/null; crun then uses the v1 controllers as runc does.
 * crun's other commands (exec, kill, delete, list) work as they are.
 */
#define UNIFIED_CONTROLLERS "/sys/fs/cgroup/unified/cgroup.controllers"

static bool needs_hybrid_fix(const char *runtime)
{
	const char *b = strrchr(runtime, '/');
	char c = '\n';
	int fd;

	b = b ? b + 1 : runtime;
	if (strcmp(b, "crun") != 0 || (fd = open(UNIFIED_CONTROLLERS, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	ssize_t n = read(fd, &c, 1);

	close(fd);
	return n == 1 && c != '\n';
}

/* In a child about to exec crun create|run (see needs_hybrid_fix). */
static int hide_unified_controllers(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	return mount("/dev/null", UNIFIED_CONTROLLERS, NULL, MS_BIND, NULL);
}

static bool hybrid_fix;		/* conf.runtime is crun on a hybrid host */

/*
 * fork+exec with the given stdio (-1 = keep ours). Only the parent's fds
 * we mean to pass survive: everything else we open is O_CLOEXEC.
 */
static pid_t spawn(char *const argv[], int in, int out, int err)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	child_reset_signals();
	if ((in >= 0 && dup2(in, 0) < 0) || (out >= 0 && dup2(out, 1) < 0) || (err >= 0 && dup2(err, 2) < 0))
		_exit(127);
	if (hybrid_fix && argv[0] == conf.runtime && argv[1] && (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "run") == 0) &&
	    hide_unified_controllers() < 0) {
		char m[256];
		int n = snprintf(m, sizeof(m), "rkt: cannot set up a mount namespace for crun: %s\n", strerror(errno));

		if (n > 0)
			(void)write_all(2, m, (size_t)n);
		_exit(127);
	}
	if (strchr(argv[0], '/'))
		execv(argv[0], argv);
	else
		execvp(argv[0], argv);
	/* This lands in the app's stderr pipe, hence in its log too. */
	char m[PATH_MAX + 128];
	int n = snprintf(m, sizeof(m), "rkt: cannot execute %s: %s\n", argv[0], strerror(errno));

	if (n > 0)
		(void)write_all(2, m, (size_t)n < sizeof(m) ? (size_t)n : sizeof(m) - 1);
	_exit(127);
}

static int code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/* ---- monitor.conf ----------------------------------------------------- */

static char conf_line[CONF_LINE_MAX + 2];

__attribute__((noreturn))
static void conf_invalid(const char *line)
{
	msg("invalid monitor.conf: %s", line);
	exit(EXIT_FAIL);
}

static char *conf_dup(const char *s, size_t max, const char *line)
{
	if (*s == '\0' || strlen(s) >= max)
		conf_invalid(line);
	char *d = strdup(s);

	if (!d) {
		msg("out of memory");
		exit(EXIT_FAIL);
	}
	return d;
}

/* Names become path components of POD_DIR/apps/NAME and logs/NAME.log. */
static bool valid_name(const char *s)
{
	return *s != '\0' && *s != '.' && *s != '-' && !strchr(s, '/') && strlen(s) <= NAME_MAX - 8;
}

/* runc's own rule, plus no leading '-' so an id is never taken for a flag. */
static bool valid_id(const char *s)
{
	if (*s == '\0' || *s == '-' || strlen(s) > 1024)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || *p == '.' || *p == '+'))
			return false;
	return true;
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	unsigned long v = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	*out = (unsigned)v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "0") == 0 || strcmp(s, "1") == 0) {
		*out = s[0] == '1';
		return true;
	}
	return false;
}

static void parse_conf(void)
{
	char path[PATH_MAX];
	char shown[CONF_LINE_MAX + 2];
	int fd;
	FILE *f;

	if (pathf(path, sizeof(path), "%s/monitor.conf", pod_dir) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		msg("cannot open %s/monitor.conf: %s", pod_dir, strerror(errno));
		exit(EXIT_FAIL);
	}
	f = fdopen(fd, "r");
	if (!f) {
		msg("cannot read %s: %s", path, strerror(errno));
		exit(EXIT_FAIL);
	}
	while (fgets(conf_line, sizeof(conf_line), f)) {
		size_t len = strlen(conf_line);
		char *fields[CONF_FIELDS_MAX];
		size_t nf = 0;

		if (len > 0 && conf_line[len - 1] == '\n')
			conf_line[--len] = '\0';
		else if (!feof(f)) {
			conf_line[60] = '\0';
			msg("invalid monitor.conf: line too long: %s...", conf_line);
			exit(EXIT_FAIL);
		}
		if (len == 0 || conf_line[0] == '#')
			continue;
		memcpy(shown, conf_line, len + 1);
		for (char *p = conf_line, *tab;; p = tab + 1) {
			if (nf == CONF_FIELDS_MAX)
				conf_invalid(shown);
			fields[nf++] = p;
			tab = strchr(p, '\t');
			if (!tab)
				break;
			*tab = '\0';
		}
		const char *k = fields[0];

		if (strcmp(k, "uuid") == 0 && nf == 2) {
			free(conf.uuid);
			conf.uuid = conf_dup(fields[1], 256, shown);
		} else if (strcmp(k, "runtime") == 0 && nf == 2) {
			free(conf.runtime);
			conf.runtime = conf_dup(fields[1], PATH_MAX, shown);
		} else if (strcmp(k, "exit-policy") == 0 && nf == 2) {
			if (strcmp(fields[1], "fail-fast") == 0)
				conf.fail_fast = true;
			else if (strcmp(fields[1], "all") == 0)
				conf.fail_fast = false;
			else
				conf_invalid(shown);
		} else if (strcmp(k, "stop-timeout") == 0 && nf == 2) {
			if (!parse_uint(fields[1], 1000000, &conf.stop_timeout))
				conf_invalid(shown);
		} else if (strcmp(k, "interactive") == 0 && nf == 2) {
			if (!parse_bool(fields[1], &conf.interactive))
				conf_invalid(shown);
		} else if (strcmp(k, "debug") == 0 && nf == 2) {
			if (!parse_bool(fields[1], &conf.debug))
				conf_invalid(shown);
		} else if (strcmp(k, "overlay") == 0 && nf == 5) {
			if (conf.novl == MAX_OVERLAYS)
				conf_invalid(shown);
			struct overlay *o = &conf.ovl[conf.novl++];

			o->lower = conf_dup(fields[1], PATH_MAX, shown);
			o->upper = conf_dup(fields[2], PATH_MAX, shown);
			o->work = conf_dup(fields[3], PATH_MAX, shown);
			o->target = conf_dup(fields[4], PATH_MAX, shown);
		} else if (strcmp(k, "app") == 0 && nf == 4) {
			if (conf.napps == MAX_APPS || !valid_name(fields[1]) || !valid_id(fields[2]))
				conf_invalid(shown);
			for (size_t i = 0; i < conf.napps; i++)
				if (strcmp(conf.apps[i].name, fields[1]) == 0 || strcmp(conf.apps[i].id, fields[2]) == 0)
					conf_invalid(shown);
			struct app *a = &conf.apps[conf.napps++];

			a->name = conf_dup(fields[1], NAME_MAX, shown);
			a->id = conf_dup(fields[2], PATH_MAX, shown);
			a->bundle = conf_dup(fields[3], PATH_MAX, shown);
			a->log_fd = a->out.fd = a->err.fd = -1;
		} else if (strcmp(k, "idmap") == 0 && nf == 5) {
			if (conf.novl == MAX_OVERLAYS)
				conf_invalid(shown);
			struct overlay *o = &conf.ovl[conf.novl++];

			o->idmap = true;
			o->lower = conf_dup(fields[1], PATH_MAX, shown);
			o->target = conf_dup(fields[2], PATH_MAX, shown);
			if (!parse_uint(fields[3], 4294967294U, &o->host_id) || !parse_uint(fields[4], 4294967294U, &o->count) || o->count == 0)
				conf_invalid(shown);
		} else if (strcmp(k, "oom") == 0 && nf == 3) {
			struct app *a = NULL;

			for (size_t i = 0; i < conf.napps; i++)
				if (strcmp(conf.apps[i].name, fields[1]) == 0)
					a = &conf.apps[i];
			if (!a || a->oom_file)
				conf_invalid(shown);
			a->oom_file = conf_dup(fields[2], PATH_MAX, shown);
		} else if (strcmp(k, "cleanup") == 0 && nf >= 2) {
			if (conf.cleanup[0])
				conf_invalid(shown);
			for (size_t i = 1; i < nf; i++)
				conf.cleanup[i - 1] = conf_dup(fields[i], PATH_MAX, shown);
		} else if (strcmp(k, "net-gate") == 0 && nf == 4) {
			if (conf.net_ready)
				conf_invalid(shown);
			conf.net_ready = conf_dup(fields[1], PATH_MAX, shown);
			conf.net_failed = conf_dup(fields[2], PATH_MAX, shown);
			conf.netns = conf_dup(fields[3], PATH_MAX, shown);
		} else if (strcmp(k, "pause") == 0 && nf == 2) {
			if (!valid_id(fields[1]))
				conf_invalid(shown);
			free(conf.pause);
			conf.pause = conf_dup(fields[1], PATH_MAX, shown);
		} else {
			conf_invalid(shown);
		}
	}
	if (ferror(f)) {
		msg("cannot read %s: %s", path, strerror(errno));
		exit(EXIT_FAIL);
	}
	fclose(f);
	if (!conf.runtime)
		conf_invalid("no runtime line");
	if (conf.napps == 0)
		conf_invalid("no app line");
	if (conf.interactive && conf.napps != 1)
		conf_invalid("interactive needs exactly one app");
	if (conf.net_ready && (conf.interactive || conf.napps != 1 || conf.pause))
		conf_invalid("net-gate needs one non-interactive app");
}

/* ---- cleanup ---------------------------------------------------------- */

/* SIGCHLD is still blocked here (inherited mask), so sigtimedwait can wait
 * for the child with a deadline without any handler. */
static void run_bounded(char *const argv[])
{
	sigset_t chld;
	int st;
	pid_t pid = spawn(argv, -1, -1, -1);
	int64_t end = now_ms() + CLEANUP_CMD_TIMEOUT_S * 1000;

	if (pid < 0)
		return;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return;
		int64_t rem = end - now_ms();

		if (rem <= 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return;
		}
		struct timespec ts = { .tv_sec = rem / 1000, .tv_nsec = (rem % 1000) * 1000000 };

		sigtimedwait(&chld, NULL, &ts);
	}
}

static void delete_container(const char *id)
{
	char *argv[] = { conf.runtime, "delete", "-f", (char *)id, NULL };

	run_bounded(argv);
}

/* Failures are ignored: this runs unattended and `rkt gc` redoes it all. */
static void do_cleanup(void)
{
	if (devnull_fd >= 0) {
		dup2(devnull_fd, 0);
		dup2(devnull_fd, 1);
		dup2(devnull_fd, 2);
	}
	/* Do not pin pipes, log files or the caller's locks while we work. */
	if (close_range(3, ~0U, 0) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	devnull_fd = -1;
	for (size_t i = 0; i < conf.napps; i++)
		delete_container(conf.apps[i].id);
	if (conf.pause)
		delete_container(conf.pause);
	/* Reverse order, in case a target lies inside another overlay. EINVAL
	 * (not mounted any more) and ENOENT are fine; other errors have nobody
	 * to report to, and `rkt gc` unmounts leftovers anyway. */
	for (size_t i = conf.novl; i-- > 0;)
		if (conf.ovl[i].mounted)
			(void)umount2(conf.ovl[i].target, MNT_DETACH);
	/* Last: the pod's own cleanup (rkt's network teardown), bounded in time. */
	if (conf.cleanup[0])
		run_bounded(conf.cleanup);
	record_pod("cleaned", "");
}

/*
 * Ends the monitor. Cleanup runs in a detached grandchild so that our exit
 * (hence `rkt run`'s) does not wait for runc delete; we stop being a
 * subreaper first so that the grandchild, once orphaned, goes to init
 * instead of lingering as our zombie.
 */
__attribute__((noreturn))
static void finish(int code)
{
	int st;
	pid_t pid;

	for (size_t i = 0; i < conf.napps; i++) {
		struct app *a = &conf.apps[i];

		stream_close(a, &a->out);
		stream_close(a, &a->err);
		if (a->log_fd >= 0)
			close(a->log_fd);
		a->log_fd = -1;
	}
	dbg("pod exits with %d; cleaning up in the background", code);
	if (prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) < 0)
		dbg("cannot clear child subreaper: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		if (setsid() < 0)
			_exit(1);
		pid_t gc = fork();

		if (gc > 0)
			_exit(0);
		/* gc < 0: no grandchild, do it here; our parent waits a bit longer. */
		do_cleanup();
		_exit(0);
	}
	if (pid < 0) {
		msg("cannot fork the cleanup process (%s); cleaning up in the foreground", strerror(errno));
		do_cleanup();
	} else {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	_exit(code);
}

/* ---- app output ------------------------------------------------------- */

static void log_record(struct app *a, struct stream *s, char tag, const char *data, size_t len, const char *ts)
{
	char hdr[64];
	int n;

	if (a->log_fd < 0)
		return;
	n = snprintf(hdr, sizeof(hdr), "%s %s %c ", ts, s->label, tag);
	struct iovec iov[3] = {
		{ hdr, (size_t)n }, { (void *)data, len }, { "\n", 1 },
	};
	int i = 0;

	/* writev may be partial on a full disk or a signal: finish the record. */
	while (i < 3) {
		ssize_t w = writev(a->log_fd, iov + i, 3 - i);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (!a->log_error_reported)
				msg("cannot write the log of app %s: %s", a->name, strerror(errno));
			a->log_error_reported = true;
			return;
		}
		while (i < 3 && (size_t)w >= iov[i].iov_len) {
			w -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < 3) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
}

/*
 * Splits output into CRI records. A full buffer is only flushed as P once
 * we see that the next byte is not the newline: that way a line of exactly
 * LOG_LINE_MAX bytes stays one F record instead of P plus an empty F.
 */
static void stream_feed(struct app *a, struct stream *s, const char *p, size_t n, const char *ts)
{
	while (n > 0) {
		if (s->len == LOG_LINE_MAX) {
			if (*p == '\n') {
				log_record(a, s, 'F', s->buf, s->len, ts);
				s->len = 0;
				p++;
				n--;
				continue;
			}
			log_record(a, s, 'P', s->buf, s->len, ts);
			s->len = 0;
		}
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) : n;
		size_t room = LOG_LINE_MAX - s->len;

		if (nl && seg <= room) {
			if (s->len == 0) {
				log_record(a, s, 'F', p, seg, ts);
			} else {
				memcpy(s->buf + s->len, p, seg);
				log_record(a, s, 'F', s->buf, s->len + seg, ts);
			}
			s->len = 0;
			p += seg + 1;
			n -= seg + 1;
		} else {
			size_t take = seg < room ? seg : room;

			memcpy(s->buf + s->len, p, take);
			s->len += take;
			p += take;
			n -= take;
		}
	}
}

static void stream_close(struct app *a, struct stream *s)
{
	if (s->fd < 0)
		return;
	if (s->len > 0) {
		char ts[48];

		log_timestamp(ts, sizeof(ts));
		log_record(a, s, 'F', s->buf, s->len, ts);
		s->len = 0;
	}
	close(s->fd);
	s->fd = -1;
	dbg("%s of app %s closed", s->label, a->name);
}

/* Returns false when there is nothing more to read right now. */
static bool stream_read(struct app *a, struct stream *s)
{
	ssize_t n;

	if (s->fd < 0)
		return false;
	n = read(s->fd, read_buf, sizeof(read_buf));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return false;
		msg("cannot read the %s of app %s: %s", s->label, a->name, strerror(errno));
		stream_close(a, s);
		return false;
	}
	if (n == 0) {
		stream_close(a, s);
		return false;
	}
	if (forward_ok[s->out_fd]) {
		int r = write_all(s->out_fd, read_buf, (size_t)n);

		/* A vanished reader must not stop the pod: logs still get it all. */
		if (r == -EPIPE || r == -EBADF) {
			forward_ok[s->out_fd] = false;
			dbg("our %s is gone; app output goes to the logs only", s->label);
		} else if (r < 0 && r != -EAGAIN) {
			forward_ok[s->out_fd] = false;
			msg("cannot forward app output to %s: %s", s->label, strerror(-r));
		}
	}
	char ts[48];

	log_timestamp(ts, sizeof(ts));
	stream_feed(a, s, read_buf, (size_t)n, ts);
	return true;
}

/* Bounded: used once the writers are gone, to get runc's error out first. */
static void stream_drain(struct app *a, struct stream *s)
{
	for (int i = 0; i < 256 && stream_read(a, s); i++)
		;
}

/* ---- apps ------------------------------------------------------------- */

static bool app_busy(const struct app *a)
{
	return a->state == APP_STARTING || a->state == APP_RUNNING || a->out.fd >= 0 || a->err.fd >= 0;
}

static void stop_all(int sig);
static void check_gate(void);
static void start_next(void);
static bool any_gated(void);
static void handle_signals(void);

/*
 * The memory cgroup's OOM kill count, read before `runc delete` removes the
 * cgroup: v1 memory.oom_control and v2 memory.events both have a line
 * `oom_kill N`. N > 0 is recorded in apps/NAME/oom (read by `rkt status`).
 */
static void record_app_oom(const struct app *a)
{
	char buf[1024];
	ssize_t n;
	int fd;

	if (!a->oom_file || (fd = open(a->oom_file, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		unsigned long kills;

		if (sscanf(line, "oom_kill %lu", &kills) == 1 && kills > 0) {
			char val[32];

			snprintf(val, sizeof(val), "%lu", kills);
			record_app(a, "oom", val);
			dbg("app %s: %lu OOM kill(s) in its cgroup", a->name, kills);
			return;
		}
	}
}

static void app_exited(struct app *a, int status)
{
	char buf[16];

	a->state = APP_EXITED;
	a->gated = false;
	a->code = code_of(status);
	dbg("app %s (pid %d) exited with %d", a->name, (int)a->pid, a->code);
	snprintf(buf, sizeof(buf), "%d", a->code);
	record_app_oom(a);
	record_app(a, "exit", buf);
	/*
	 * With a PID namespace the pipes close with the app; without one a
	 * daemonised child could hold them open forever, so draining is bounded.
	 */
	if (a->out.fd >= 0 || a->err.fd >= 0)
		a->drain_deadline = now_ms() + (int64_t)(conf.stop_timeout ? conf.stop_timeout : 1) * 1000;
	if (a->code != 0 && !have_code) {
		have_code = true;
		pod_code = a->code;
	}
	if (a->code != 0 && conf.fail_fast && !stopping) {
		dbg("fail-fast: app %s failed, stopping the pod", a->name);
		stop_all(SIGTERM);
	}
}

static int start_app(struct app *a)
{
	char dir[PATH_MAX], pidfile[PATH_MAX], logpath[PATH_MAX];
	int outp[2], errp[2];

	if (pathf(dir, sizeof(dir), "%s/apps/%s", pod_dir, a->name) < 0 ||
	    pathf(pidfile, sizeof(pidfile), "%s/pid", dir) < 0 || mkdir_p(dir, 0755) < 0) {
		msg("cannot create %s/apps/%s: %s", pod_dir, a->name, strerror(errno));
		return -1;
	}
	if (conf.interactive) {
		/* runc owns the terminal and relays signals; we only watch it. */
		char *argv[] = { conf.runtime, "run", "--bundle", a->bundle, a->id, NULL };
		char buf[32];

		a->pid = spawn(argv, -1, -1, -1);
		if (a->pid < 0) {
			msg("cannot fork: %s", strerror(errno));
			return -1;
		}
		a->state = APP_RUNNING;
		dbg("app %s: %s run (interactive) is pid %d", a->name, conf.runtime, (int)a->pid);
		snprintf(buf, sizeof(buf), "%d", (int)a->pid);
		record(pidfile, buf);
		now_ns_str(buf, sizeof(buf));
		record_app(a, "started", buf);
		return 0;
	}

	if (!a->out.buf) {
		a->out.buf = malloc(LOG_LINE_MAX);
		a->err.buf = malloc(LOG_LINE_MAX);
		if (!a->out.buf || !a->err.buf) {
			msg("out of memory");
			return -1;
		}
	}
	if (pathf(logpath, sizeof(logpath), "%s/logs/%s.log", pod_dir, a->name) < 0 ||
	    (a->log_fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640)) < 0)
		msg("cannot open the log of app %s: %s (output is not logged)", a->name, strerror(errno));
	if (pipe2(outp, O_CLOEXEC) < 0) {
		msg("cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		msg("cannot create a pipe: %s", strerror(errno));
		close(outp[0]);
		close(outp[1]);
		return -1;
	}
	if (fcntl(outp[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0) {
		msg("cannot set up the app pipes: %s", strerror(errno));
		close(outp[0]);
		close(outp[1]);
		close(errp[0]);
		close(errp[1]);
		return -1;
	}
	a->out = (struct stream){ .fd = outp[0], .out_fd = 1, .label = "stdout", .buf = a->out.buf };
	a->err = (struct stream){ .fd = errp[0], .out_fd = 2, .label = "stderr", .buf = a->err.buf };

	char *argv[] = { conf.runtime, "run", "-d", "--pid-file", pidfile, "--bundle", a->bundle, a->id, NULL };

	/* Behind the network gate the container is only created: started by check_gate. */
	if (conf.net_ready) {
		argv[1] = "create";
		memmove(&argv[2], &argv[3], 6 * sizeof(char *));
	}

	norphans = orphan_next = 0;
	a->runc_pid = spawn(argv, devnull_fd, outp[1], errp[1]);
	int saved = errno;

	/* Our copies of the write ends would keep EOF from ever coming. */
	close(outp[1]);
	close(errp[1]);
	if (a->runc_pid < 0) {
		msg("cannot fork: %s", strerror(saved));
		return -1;
	}
	a->state = APP_STARTING;
	dbg("app %s: %s %s is pid %d", a->name, conf.runtime, conf.net_ready ? "create" : "run -d", (int)a->runc_pid);
	return 0;
}

static void start_failure(struct app *a)
{
	a->state = APP_FAILED;
	start_failed = true;
	msg("app %s failed to start", a->name);
	stop_all(SIGTERM);
}

static bool any_starting(void)
{
	for (size_t i = 0; i < conf.napps; i++)
		if (conf.apps[i].state == APP_STARTING)
			return true;
	return false;
}

/* ---- network gate ------------------------------------------------------
 *
 * With a `net-gate` line, the CLI hands the pod over before its network is
 * up and finishes it in the background: the netns is made first (we wait for
 * it to be mounted before runc joins it), then the CNI ADD runs while runc
 * creates the container, and the app starts only when the CLI has written
 * READY (or FAILED, with its one-line error). Starting a created container
 * is what `runc start` does, done here to spare its start-up: open the exec
 * FIFO the container's init blocks on, take its byte, remove it.
 */

static bool any_gated(void)
{
	for (size_t i = 0; i < conf.napps; i++)
		if (conf.apps[i].gated)
			return true;
	return false;
}

static void gate_fail(const char *fallback)
{
	char buf[1024];
	ssize_t n = -1;
	int fd;

	if (gate == GATE_FAILED)
		return;
	gate = GATE_FAILED;
	start_failed = true;
	if ((fd = open(conf.net_failed, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	msg("%s", n > 0 ? buf : fallback);
	for (size_t i = 0; i < conf.napps; i++) {
		struct app *a = &conf.apps[i];

		if (!a->gated)
			continue;
		a->gated = false;
		a->state = APP_FAILED;
		if (a->pid > 0 && kill(a->pid, SIGKILL) < 0 && errno != ESRCH)
			msg("cannot kill app %s: %s", a->name, strerror(errno));
	}
	stop_all(SIGTERM);
}

static int start_created(struct app *a)
{
	char fifo[PATH_MAX];
	const char *rt = strrchr(conf.runtime, '/');
	int fd = -1, r;

	rt = rt ? rt + 1 : conf.runtime;
	/*
	 * runc and crun keep their state in /run/NAME when run as root without
	 * --root. crun's FIFO goes the other way: its init waits for a byte,
	 * which `crun start` writes after removing the FIFO.
	 */
	if (strcmp(rt, "crun") == 0) {
		if (pathf(fifo, sizeof(fifo), "/run/crun/%s/exec.fifo", a->id) == 0 &&
		    (fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0) {
			ssize_t w;

			(void)unlink(fifo);
			do
				w = write(fd, "", 1);
			while (w < 0 && errno == EINTR);
			close(fd);
			return w == 1 ? 0 : -1;
		}
		fd = -1;
	} else if (pathf(fifo, sizeof(fifo), "/run/%s/%s/exec.fifo", rt, a->id) == 0) {
		fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	}
	if (fd < 0) {
		char *argv[] = { conf.runtime, "start", a->id, NULL };
		int st = 0;
		pid_t pid = spawn(argv, devnull_fd, devnull_fd, -1);

		if (pid < 0)
			return -1;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
	}
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	ssize_t n = -1;
	char c;

	do
		r = poll(&pf, 1, 10000);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		do
			n = read(fd, &c, 1);
		while (n < 0 && errno == EINTR);
	}
	close(fd);
	if (n != 1)
		return -1;
	(void)unlink(fifo);
	return 0;
}

/*
 * Fails the gate if the network cannot come any more: the CLI wrote FAILED,
 * exited without a result (`gone`, read before READY was looked at, since
 * the CLI writes READY before it exits), or the deadline passed.
 */
static void gate_check_dead_end(bool gone, const char *timeout_msg)
{
	if (access(conf.net_failed, F_OK) == 0)
		gate_fail("networking: setup failed");
	else if (gone)
		gate_fail("networking: the setup ended without a result");
	else if (now_ms() >= gate_deadline)
		gate_fail(timeout_msg);
}

/* Called at every turn of the event loop while the gate is closed or apps wait behind it. */
static void check_gate(void)
{
	if (gate == GATE_WAIT) {
		bool gone = cli_gone;

		if (access(conf.net_ready, F_OK) == 0) {
			gate = GATE_OPEN;
			dbg("network ready");
		} else {
			gate_check_dead_end(gone, "networking: timed out waiting for the network");
		}
	}
	if (gate != GATE_OPEN)
		return;
	for (size_t i = 0; i < conf.napps; i++) {
		struct app *a = &conf.apps[i];
		char buf[32];

		if (!a->gated || stopping)
			continue;
		a->gated = false;
		if (a->state != APP_RUNNING)
			continue;
		if (start_created(a) < 0) {
			msg("cannot start app %s", a->name);
			start_failed = true;
			if (kill(a->pid, SIGKILL) < 0 && errno != ESRCH)
				msg("cannot kill app %s: %s", a->name, strerror(errno));
			stop_all(SIGTERM);
			continue;
		}
		now_ns_str(buf, sizeof(buf));
		record_app(a, "started", buf);
		dbg("app %s started, pid %d", a->name, (int)a->pid);
	}
	start_next();
}

/* Before runc can join the pod's netns, `ip netns add` must have mounted it. */
static void wait_netns(void)
{
	gate = GATE_WAIT;
	gate_deadline = now_ms() + 120000;
	while (gate == GATE_WAIT && !stopping) {
		struct statfs sf;

		if (statfs(conf.netns, &sf) == 0 && (unsigned long)sf.f_type == 0x6e736673UL /* NSFS_MAGIC */)
			return;
		gate_check_dead_end(cli_gone, "networking: timed out waiting for the network namespace");
		if (gate != GATE_WAIT)
			return;
		struct pollfd pf = { .fd = sig_fd, .events = POLLIN };

		if (poll(&pf, 1, 1) > 0)
			handle_signals();
	}
}

/* Apps start one after the other, each once the previous runc returned. */
static void start_next(void)
{
	if (!stopping && next_app < conf.napps) {
		struct app *a = &conf.apps[next_app++];

		if (start_app(a) < 0) {
			/* runc may have said why on the pipes before exiting. */
			stream_drain(a, &a->err);
			start_failure(a);
		}
		if (!conf.interactive)
			return;
	}
	if (!stopping && !ready_written && next_app == conf.napps && !any_starting() && !any_gated()) {
		ready_written = true;
		dbg("all apps started");
		record_pod("supervisor-status", "ready");
	}
}

static pid_t read_pid_file(const struct app *a)
{
	char path[PATH_MAX], buf[32];
	unsigned v;
	ssize_t n;
	int fd;

	if (pathf(path, sizeof(path), "%s/apps/%s/pid", pod_dir, a->name) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (!parse_uint(buf, INT_MAX, &v) || v == 0)
		return -1;
	return (pid_t)v;
}

static void runc_done(struct app *a, int status)
{
	a->runc_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		dbg("%s run for app %s ended with status %d", conf.runtime, a->name, code_of(status));
		stream_drain(a, &a->out);
		stream_drain(a, &a->err);
		start_failure(a);
		return;
	}
	pid_t pid = read_pid_file(a);

	if (pid <= 0) {
		msg("cannot read the pid file of app %s", a->name);
		start_failure(a);
		return;
	}
	char buf[32];

	a->pid = pid;
	a->state = APP_RUNNING;
	if (conf.net_ready) {
		a->gated = true;
		dbg("app %s created, pid %d", a->name, (int)pid);
	} else {
		now_ns_str(buf, sizeof(buf));
		record_app(a, "started", buf);
		dbg("app %s started, pid %d", a->name, (int)pid);
	}
	for (size_t i = 0; i < norphans; i++) {
		if (orphans[i].pid == pid) {
			app_exited(a, orphans[i].status);
			break;
		}
	}
	norphans = orphan_next = 0;
	/* A stop that came during the launch applies to this app too. */
	if (a->state == APP_RUNNING && stopping && kill(pid, kill_sent ? SIGKILL : SIGTERM) < 0 && errno != ESRCH)
		msg("cannot signal app %s: %s", a->name, strerror(errno));
	if (a->gated)
		check_gate();
	start_next();
}

static void reap(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);

		if (pid == 0)
			return;
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			return;	/* ECHILD */
		}
		if (cli_pid > 0 && pid == cli_pid) {
			cli_gone = true;
			dbg("the CLI (pid %d) exited with %d", (int)pid, code_of(st));
			continue;
		}
		struct app *hit = NULL;

		for (size_t i = 0; i < conf.napps && !hit; i++) {
			struct app *a = &conf.apps[i];

			if (a->state == APP_STARTING && a->runc_pid == pid) {
				runc_done(a, st);
				hit = a;
			} else if (a->state == APP_RUNNING && a->pid == pid) {
				app_exited(a, st);
				hit = a;
			}
		}
		if (hit)
			continue;
		if (any_starting()) {
			/* Maybe the app being launched: keep it for runc_done. */
			orphans[orphan_next].pid = pid;
			orphans[orphan_next].status = st;
			orphan_next = (orphan_next + 1) % MAX_ORPHANS;
			if (norphans < MAX_ORPHANS)
				norphans++;
		}
		dbg("reaped pid %d (status %d)", (int)pid, code_of(st));
	}
}

/*
 * The stop sequence: SIGTERM (or in interactive mode, the signal we got,
 * which runc relays to the app) now, SIGKILL at the deadline.
 */
static void stop_all(int sig)
{
	if (!stopping) {
		stopping = true;
		kill_deadline = now_ms() + (int64_t)conf.stop_timeout * 1000;
		dbg("stopping the pod (signal %d, SIGKILL in %us)", sig, conf.stop_timeout);
	} else if (!conf.interactive) {
		return;
	}
	for (size_t i = 0; i < conf.napps; i++) {
		struct app *a = &conf.apps[i];

		if (a->state == APP_RUNNING && kill(a->pid, kill_sent ? SIGKILL : sig) < 0 && errno != ESRCH)
			msg("cannot signal app %s: %s", a->name, strerror(errno));
	}
}

static void kill_all(void)
{
	kill_sent = true;
	dbg("stop timeout reached, killing what is left");
	for (size_t i = 0; i < conf.napps; i++) {
		struct app *a = &conf.apps[i];
		pid_t pid = a->state == APP_RUNNING ? a->pid : a->state == APP_STARTING ? a->runc_pid : 0;

		if (pid > 0 && kill(pid, SIGKILL) < 0 && errno != ESRCH)
			msg("cannot kill app %s: %s", a->name, strerror(errno));
	}
}

static bool pod_done(void)
{
	if (!stopping && next_app < conf.napps)
		return false;
	for (size_t i = 0; i < conf.napps; i++)
		if (app_busy(&conf.apps[i]))
			return false;
	return true;
}

static void handle_signals(void)
{
	struct signalfd_siginfo si;
	bool chld = false;

	for (;;) {
		ssize_t n = read(sig_fd, &si, sizeof(si));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			msg("cannot read signals: %s", strerror(errno));
			kill_all();
			finish(EXIT_FAIL);
		}
		if ((size_t)n != sizeof(si))
			break;
		if (si.ssi_signo == SIGCHLD) {
			chld = true;
		} else {
			dbg("got signal %u", si.ssi_signo);
			stop_all(conf.interactive ? (int)si.ssi_signo : SIGTERM);
		}
	}
	if (chld)
		reap();
}

static int event_loop(void)
{
	static struct pollfd pfds[1 + 2 * MAX_APPS];
	static struct {
		struct app *a;
		struct stream *s;
	} who[1 + 2 * MAX_APPS];

	start_next();
	while (!pod_done()) {
		nfds_t nfds = 0;
		int64_t deadline = -1, now = now_ms();

		pfds[nfds++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		for (size_t i = 0; i < conf.napps; i++) {
			struct app *a = &conf.apps[i];
			struct stream *ss[2] = { &a->out, &a->err };

			for (int j = 0; j < 2; j++) {
				if (ss[j]->fd < 0)
					continue;
				who[nfds].a = a;
				who[nfds].s = ss[j];
				pfds[nfds++] = (struct pollfd){ .fd = ss[j]->fd, .events = POLLIN };
			}
			if (a->drain_deadline && (a->out.fd >= 0 || a->err.fd >= 0) &&
			    (deadline < 0 || a->drain_deadline < deadline))
				deadline = a->drain_deadline;
		}
		if (stopping && !kill_sent && (deadline < 0 || kill_deadline < deadline))
			deadline = kill_deadline;
		/* The CLI's READY file is polled: a few ms apart at most. */
		if (gate == GATE_WAIT && (deadline < 0 || now + 2 < deadline))
			deadline = now + 2;
		int timeout = -1;

		if (deadline >= 0)
			timeout = deadline <= now ? 0 : deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
		if (poll(pfds, nfds, timeout) < 0) {
			if (errno == EINTR)
				continue;
			msg("poll: %s", strerror(errno));
			kill_all();
			return EXIT_FAIL;
		}
		now = now_ms();
		/* Output first, so that what an app printed precedes its exit. */
		for (nfds_t i = 1; i < nfds; i++)
			if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
				stream_read(who[i].a, who[i].s);
		if (pfds[0].revents & POLLIN)
			handle_signals();
		if (gate == GATE_WAIT || any_gated())
			check_gate();
		if (stopping && !kill_sent && now >= kill_deadline)
			kill_all();
		for (size_t i = 0; i < conf.napps; i++) {
			struct app *a = &conf.apps[i];

			if (a->state == APP_EXITED && a->drain_deadline && now >= a->drain_deadline &&
			    (a->out.fd >= 0 || a->err.fd >= 0)) {
				dbg("app %s exited but its output stays open; no longer waiting for it", a->name);
				stream_close(a, &a->out);
				stream_close(a, &a->err);
			}
		}
	}
	if (start_failed)
		return EXIT_FAIL;
	return have_code ? pod_code : 0;
}

/* ---- setup ------------------------------------------------------------ */

/* If we were started with a closed stdio fd, our own opens would land on it
 * and app output would be "forwarded" into a pipe or log file. */
static void ensure_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);

		if (n < 0)
			exit(EXIT_FAIL);
		if (n != fd) {
			close(n);
			exit(EXIT_FAIL);
		}
	}
}

/* lowerdir is passed as written (its ':' separates layers); the other paths
 * are escaped so that a ',' or ':' in them cannot change the options. */
static int append_opt(char *dst, size_t *len, const char *key, const char *val, bool raw)
{
	size_t klen = strlen(key);

	if (*len + klen + 1 >= MOUNT_DATA_MAX)
		return -1;
	if (*len > 0)
		dst[(*len)++] = ',';
	memcpy(dst + *len, key, klen);
	*len += klen;
	for (const char *p = val; *p; p++) {
		bool esc = *p == ',' || (!raw && (*p == '\\' || *p == ':'));

		if (*len + 2 >= MOUNT_DATA_MAX)
			return -1;
		if (esc)
			dst[(*len)++] = '\\';
		dst[(*len)++] = *p;
	}
	dst[*len] = '\0';
	return 0;
}

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct idmap_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* A user namespace mapping 0..count-1 to host_id..: a child unshares it and waits until we hold it. */
static int userns_fd_for(unsigned host_id, unsigned count)
{
	int sync[2], fd = -1;
	char path[64], map[64];
	pid_t pid;

	if (pipe2(sync, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(sync[0]);
		close(sync[1]);
		return -1;
	}
	if (pid == 0) {
		char c;

		close(sync[1]);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		/* Wait until the parent closes its end. */
		while (read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(sync[0]);
	snprintf(map, sizeof(map), "0 %u %u\n", host_id, count);
	/* Wait for the unshare: our own and the child's user ns differ afterwards. */
	for (int i = 0; i < 2000; i++) {
		struct stat a, b;

		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		if (stat(path, &a) == 0 && stat("/proc/self/ns/user", &b) == 0 && a.st_ino != b.st_ino)
			break;
		usleep(1000);
	}
	int ok = 1;
	const char *files[] = { "uid_map", "gid_map" };

	for (int i = 0; i < 2 && ok; i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[i]);
		int mfd = open(path, O_WRONLY | O_CLOEXEC);

		ok = mfd >= 0 && write(mfd, map, strlen(map)) == (ssize_t)strlen(map);
		if (mfd >= 0)
			close(mfd);
	}
	if (ok) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	close(sync[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return fd;
}

/* Binds `src` on `target` (created if needed) through an idmapped mount. */
static int idmapped_bind(const char *src, const char *target, unsigned host_id, unsigned count)
{
	struct idmap_attr attr = { .attr_set = MOUNT_ATTR_IDMAP };
	int ns, tree, r = -1, saved;

	if ((ns = userns_fd_for(host_id, count)) < 0)
		return -1;
	attr.userns_fd = (uint64_t)ns;
	tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | O_CLOEXEC);
	if (tree >= 0 && syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0 &&
	    (mkdir_p(target, 0755) == 0 || errno == EEXIST || errno == ENOTDIR))
		r = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
	saved = errno;
	if (tree >= 0)
		close(tree);
	close(ns);
	errno = saved;
	return r;
}

static void mount_overlays(void)
{
	char data[MOUNT_DATA_MAX];

	for (size_t i = 0; i < conf.novl; i++) {
		struct overlay *o = &conf.ovl[i];
		size_t len = 0;

		if (o->idmap) {
			if (idmapped_bind(o->lower, o->target, o->host_id, o->count) < 0) {
				msg("cannot mount %s on %s with an id mapping: %s", o->lower, o->target, strerror(errno));
				finish(EXIT_FAIL);
			}
			o->mounted = true;
			dbg("idmapped bind of %s on %s (0 -> %u, %u ids)", o->lower, o->target, o->host_id, o->count);
			continue;
		}

		data[0] = '\0';
		if (append_opt(data, &len, "lowerdir=", o->lower, true) < 0 ||
		    append_opt(data, &len, "upperdir=", o->upper, false) < 0 ||
		    append_opt(data, &len, "workdir=", o->work, false) < 0) {
			msg("cannot mount overlay on %s: %s", o->target, "mount options too long");
			finish(EXIT_FAIL);
		}
		if (mkdir_p(o->target, 0755) < 0 || mount("overlay", o->target, "overlay", 0, data) < 0) {
			msg("cannot mount overlay on %s: %s", o->target, strerror(errno));
			finish(EXIT_FAIL);
		}
		o->mounted = true;
		dbg("mounted overlay on %s", o->target);
	}
}

int main(int argc, char **argv)
{
	sigset_t mask;
	struct sigaction sa = { .sa_handler = SIG_IGN };

	/* `rkt-monitor --runtime-wrap RUNTIME ARGS…`: RUNTIME ARGS…, with crun's hybrid-host fix (for the CLI). */
	if (argc >= 4 && strcmp(argv[1], "--runtime-wrap") == 0) {
		if (needs_hybrid_fix(argv[2]) && (strcmp(argv[3], "create") == 0 || strcmp(argv[3], "run") == 0) && hide_unified_controllers() < 0) {
			fprintf(stderr, "rkt: cannot set up a mount namespace for crun: %s\n", strerror(errno));
			return EXIT_FAIL;
		}
		execv(argv[2], &argv[2]);
		fprintf(stderr, "rkt: cannot execute %s: %s\n", argv[2], strerror(errno));
		return EXIT_FAIL;
	}
	/* First of all: apps started by `runc run -d` must be re-parented to us. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "rkt: cannot become a child subreaper: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	ensure_stdio();
	if (argc != 2 || argv[1][0] == '\0') {
		msg("usage: rkt-monitor POD_DIR");
		return EXIT_FAIL;
	}
	if (pathf(pod_dir, sizeof(pod_dir), "%s", argv[1]) < 0) {
		msg("pod directory path too long");
		return EXIT_FAIL;
	}
	/* A closed stdout must show up as EPIPE, not kill the pod's supervisor. */
	if (sigaction(SIGPIPE, &sa, NULL) < 0) {
		msg("sigaction: %s", strerror(errno));
		return EXIT_FAIL;
	}
	/* Set by the launcher when the CLI handed over to us: it is our child. */
	const char *cli = getenv("RKT_CLI_PID");
	unsigned cli_v;

	if (cli && parse_uint(cli, INT_MAX, &cli_v))
		cli_pid = (pid_t)cli_v;
	unsetenv("RKT_CLI_PID");
	parse_conf();
	hybrid_fix = needs_hybrid_fix(conf.runtime);
	dbg("pod %s: %zu app(s), %zu overlay(s), exit policy %s, stop timeout %us%s", conf.uuid ? conf.uuid : "?",
	    conf.napps, conf.novl, conf.fail_fast ? "fail-fast" : "all", conf.stop_timeout,
	    conf.interactive ? ", interactive" : "");

	/* Signals are taken synchronously through a signalfd in the poll loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) < 0 ||
	    (sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		msg("cannot set up signal handling: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if ((devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		msg("cannot open /dev/null: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (!conf.interactive) {
		char logs[PATH_MAX];

		if (pathf(logs, sizeof(logs), "%s/logs", pod_dir) < 0 || mkdir_p(logs, 0750) < 0)
			msg("cannot create %s/logs: %s (output is not logged)", pod_dir, strerror(errno));
	}
	mount_overlays();
	if (conf.net_ready)
		wait_netns();
	finish(event_loop());
}
