/*
 * tlsgate-policyd - the Postfix policy server of tlsgate (docs/postfix.md).
 *
 *   tlsgate-policyd [-c CONF] [-f] [--listen inet:HOST:PORT|unix:PATH ...]
 *   tlsgate-policyd [-c CONF] [-f] --spawn
 *
 * Start-up order: read the configuration, bind the listeners (as root if
 * need be), drop to `user`, load the policy as that user (so a reload
 * later reads the same files with the same rights), then go to the
 * background (the pidfile is complete before the starting process exits)
 * and serve. Any start-up error exits 1 (usage: 2) with a
 * message on stderr before the daemon detaches.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "reload.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/tlsgate/tlsgate.conf"

struct options {
	const char *config;
	bool foreground;
	bool spawn;
	const char *listen[TG_CONFIG_MAX_LISTEN];
	size_t listen_count;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlsgate-policyd [-c CONF] [-f] [--listen inet:HOST:PORT|unix:PATH ...]\n"
		"       tlsgate-policyd [-c CONF] [-f] --spawn\n"
		"  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
		"  -f, --foreground    stay in the foreground, log to stderr\n"
		"  -l, --listen EP     listen on EP (repeatable; replaces the config's listen)\n"
		"  --spawn             serve one session on stdin/stdout (Postfix spawn(8))\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "listen", required_argument, NULL, 'l' },
		{ "spawn", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->config = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "c:fl:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'f': o->foreground = true; break;
		case 's': o->spawn = true; break;
		case 'l':
			if (o->listen_count >= TG_CONFIG_MAX_LISTEN) {
				fprintf(stderr, "tlsgate-policyd: more than %d --listen\n",
					TG_CONFIG_MAX_LISTEN);
				return -1;
			}
			o->listen[o->listen_count++] = optarg;
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	if (o->spawn && o->listen_count > 0) {
		fprintf(stderr, "tlsgate-policyd: --spawn and --listen exclude each other\n");
		return -1;
	}
	return 0;
}

struct identity {
	bool drop;
	uid_t uid;
	gid_t gid;
	const char *name;
};

/* Root must name a user to become; anyone else stays who they are. */
static int resolve_identity(const struct tg_config *cfg, struct identity *id)
{
	memset(id, 0, sizeof(*id));
	if (geteuid() != 0)
		return 0;
	if (cfg->user == NULL) {
		pd_log(LOG_ERR, "%s: running as root needs `user = NAME` to drop "
		       "privileges to; refusing to run as root", cfg->path);
		return -1;
	}
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL) {
		pd_log(LOG_ERR, "%s: user %s: no such user", cfg->path, cfg->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		pd_log(LOG_ERR, "%s: user %s is root; name an unprivileged user",
		       cfg->path, cfg->user);
		return -1;
	}
	id->drop = true;
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	id->name = cfg->user;
	if (cfg->group != NULL) {
		struct group *gr = getgrnam(cfg->group);
		if (gr == NULL) {
			pd_log(LOG_ERR, "%s: group %s: no such group", cfg->path, cfg->group);
			return -1;
		}
		id->gid = gr->gr_gid;
	}
	return 0;
}

/* Says at startup whether the account database answers, as the user we
 * run as; the daemon serves either way (Dovecot may come up later). */
static void check_userdb(const struct tg_config *cfg)
{
	char why[600];
	if (pd_userdb_probe(cfg->userdb_socket, why, sizeof(why)) < 0)
		pd_log(LOG_WARNING, "userdb: %s; until it answers, requests with an account "
		       "are answered per failure = %s", why,
		       cfg->failure == TG_FAILURE_ALLOW ? "allow" : "tempfail");
	else
		pd_log(LOG_INFO, "userdb: account modes from dovecot:%s (cache %us)",
		       cfg->userdb_socket, cfg->userdb_cache_ttl);
}

static int drop_privileges(const struct identity *id)
{
	if (!id->drop)
		return 0;
	if (setgroups(1, &id->gid) < 0 || setgid(id->gid) < 0 || setuid(id->uid) < 0) {
		pd_log(LOG_ERR, "cannot drop privileges to %s: %s", id->name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		pd_log(LOG_ERR, "still root after dropping privileges; stopping");
		return -1;
	}
	return 0;
}

static int resolve_socket_perms(const struct tg_config *cfg, struct pd_socket_perms *p)
{
	p->mode = cfg->socket_mode;
	p->uid = (uid_t)-1;
	p->gid = (gid_t)-1;
	if (cfg->socket_owner != NULL) {
		struct passwd *pw = getpwnam(cfg->socket_owner);
		if (pw == NULL) {
			pd_log(LOG_ERR, "%s: socket_owner %s: no such user", cfg->path,
			       cfg->socket_owner);
			return -1;
		}
		p->uid = pw->pw_uid;
	}
	if (cfg->socket_group != NULL) {
		struct group *gr = getgrnam(cfg->socket_group);
		if (gr == NULL) {
			pd_log(LOG_ERR, "%s: socket_group %s: no such group", cfg->path,
			       cfg->socket_group);
			return -1;
		}
		p->gid = gr->gr_gid;
	}
	return 0;
}

/* Enough descriptors for max_connections plus listeners and logs. */
static void raise_fd_limit(unsigned max_connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_connections + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (rl.rlim_cur < want && geteuid() == 0)
		rl.rlim_max = rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		pd_log(LOG_WARNING, "open files limit %llu is below max_connections + 64 (%llu)",
		       (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

static int write_pidfile(int fd, const char *path, pid_t pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		pd_log(LOG_ERR, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The parent writes the child's pid before it exits, so that the pidfile
 * is complete when the start command returns (systemd's Type=forking and
 * start-stop-daemon read it then). pidfd < 0: no pidfile.
 */
static int daemonize(int pidfd, const char *pidpath)
{
	pd_log_flush();
	pid_t pid = fork();
	if (pid < 0) {
		pd_log(LOG_ERR, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		if (pidfd >= 0 && write_pidfile(pidfd, pidpath, pid) < 0) {
			kill(pid, SIGKILL);
			_exit(1);
		}
		_exit(0);
	}
	if (setsid() < 0)
		return -1;
	if (chdir("/") < 0)
		return -1;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -1;
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	if (null > 2)
		close(null);
	return 0;
}

/*
 * The pidfile belongs to the user the daemon runs as: no root-owned file
 * is left behind, and the daemon removes it itself at exit when its
 * directory is writable by that user (the runtime directory /run/tlsgate
 * of the init script and the systemd unit). That user may also plant a
 * file there before a start as root: only a regular file with one link,
 * owned by root or by that user, is taken (a hard link to another file
 * would be truncated and given away otherwise).
 */
static int take_pidfile(int fd, const char *path, const struct identity *id)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		pd_log(LOG_ERR, "%s: %s", path, strerror(errno));
		return -1;
	}
	uid_t owner = id->drop ? id->uid : geteuid();
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (st.st_uid != 0 && st.st_uid != owner)) {
		pd_log(LOG_ERR, "%s: not a regular file with one link owned by root or "
		       "the daemon's user; remove it", path);
		return -1;
	}
	if (id->drop && fchown(fd, id->uid, id->gid) < 0) {
		pd_log(LOG_ERR, "%s: cannot give it to %s: %s", path, id->name, strerror(errno));
		return -1;
	}
	return 0;
}

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int main(int argc, char **argv)
{
	struct options opt;
	struct tg_config cfg;
	struct tg_errors errs;
	struct pd_endpoint eps[TG_CONFIG_MAX_LISTEN];
	int fds[TG_CONFIG_MAX_LISTEN];
	size_t nep = 0;
	char why[512] = "";
	int pidfd = -1, rc = 1;
	struct tg_holder *holder = NULL;
	struct pd_server *srv = NULL;

	if (parse_options(argc, argv, &opt) < 0)
		return 2;
	/* In spawn mode stderr is Postfix's socket: never write there. */
	pd_log_open(opt.foreground || !opt.spawn);

	tg_config_init(&cfg);
	tg_errors_init(&errs);
	if (tg_config_load(&cfg, opt.config, &errs) < 0) {
		pd_log_errors(LOG_ERR, &errs);
		tg_errors_clear(&errs);
		return 1;
	}

	const char *const *specs = opt.listen_count > 0 ? opt.listen
			      : (const char *const *)cfg.listen;
	size_t nspecs = opt.listen_count > 0 ? opt.listen_count : cfg.listen_count;
	if (opt.spawn)
		nspecs = 0;
	else if (nspecs == 0) {
		pd_log(LOG_ERR, "%s: no listener: give `listen = inet:HOST:PORT` or "
		       "--listen, or run with --spawn", cfg.path);
		goto out;
	}
	for (nep = 0; nep < nspecs; nep++) {
		if (pd_endpoint_parse(specs[nep], &eps[nep], why, sizeof(why)) < 0) {
			pd_log(LOG_ERR, "%s", why);
			goto out;
		}
	}

	struct identity id;
	struct pd_socket_perms perms;
	if (resolve_identity(&cfg, &id) < 0 || resolve_socket_perms(&cfg, &perms) < 0)
		goto out;
	if (!opt.spawn)
		raise_fd_limit(cfg.max_connections);

	size_t opened = 0;
	for (; opened < nep; opened++) {
		if (pd_endpoint_listen(&eps[opened], &perms, &fds[opened], why,
				       sizeof(why)) < 0) {
			pd_log(LOG_ERR, "%s", why);
			while (opened > 0)
				close(fds[--opened]);
			goto out;
		}
	}
	if (cfg.pidfile != NULL && !opt.spawn) {
		pidfd = open(cfg.pidfile, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
			     0644);
		if (pidfd < 0) {
			pd_log(LOG_ERR, "%s: %s", cfg.pidfile, strerror(errno));
			goto out_fds;
		}
		if (take_pidfile(pidfd, cfg.pidfile, &id) < 0)
			goto out_fds;
	}
	if (drop_privileges(&id) < 0)
		goto out_fds;

	holder = tg_holder_new(cfg.policy);
	if (holder == NULL) {
		pd_log(LOG_ERR, "out of memory");
		goto out_fds;
	}
	if (tg_holder_reload(holder, &errs) < 0) {
		pd_log(LOG_ERR, "policy %s did not load:", cfg.policy);
		pd_log_errors(LOG_ERR, &errs);
		goto out_fds;
	}

	if (!opt.foreground && !opt.spawn) {
		if (daemonize(pidfd, cfg.pidfile) < 0)
			goto out_fds;
		pd_log_open(false);
	} else if (pidfd >= 0 && write_pidfile(pidfd, cfg.pidfile, getpid()) < 0) {
		goto out_fds;
	}

	struct pd_server_config scfg = {
		.answer = {
			.smtp_reply = cfg.smtp_reply,
			.message = cfg.message,
			.check_unauthenticated = cfg.check_unauthenticated,
			.log_tls = cfg.log_tls,
		},
		.idle_timeout = cfg.idle_timeout,
		.max_connections = cfg.max_connections,
		.userdb = {
			.socket = cfg.userdb_socket,
			.ttl = cfg.userdb_cache_ttl,
			.cache_size = cfg.userdb_cache_size,
			.timeout = cfg.userdb_timeout,
			.failure = cfg.failure,
		},
		.failure = cfg.failure,
		.max_connections_per_peer = cfg.max_connections_per_peer,
	};
	srv = pd_server_new(&scfg, holder, why, sizeof(why));
	if (srv == NULL) {
		pd_log(LOG_ERR, "%s", why);
		goto out_fds;
	}
	for (size_t i = 0; i < nep; i++) {
		int fd = fds[i];
		fds[i] = -1;
		if (pd_server_add_listener(srv, fd, eps[i].text, why, sizeof(why)) < 0) {
			close(fd);
			pd_log(LOG_ERR, "%s", why);
			goto out_fds;
		}
	}
	if (opt.spawn) {
		if (set_nonblocking(0) < 0 || set_nonblocking(1) < 0 ||
		    pd_server_add_session(srv, 0, 1, "spawn session", why, sizeof(why)) < 0) {
			pd_log(LOG_ERR, "spawn mode: %s", why[0] ? why : strerror(errno));
			goto out_fds;
		}
	} else {
		for (size_t i = 0; i < nep; i++)
			pd_log(LOG_INFO, "listening on %s", eps[i].text);
		if (cfg.userdb_socket != NULL)
			check_userdb(&cfg);
	}
	rc = pd_server_run(srv) < 0 ? 1 : 0;
	if (!opt.spawn)
		pd_log(LOG_INFO, "stopped");

out_fds:
	for (size_t i = 0; i < nep; i++) {
		if (fds[i] >= 0)
			close(fds[i]);	/* not handed to the server */
		if (eps[i].is_unix && srv != NULL)
			(void)unlink(eps[i].path);	/* may fail once unprivileged */
	}
	if (pidfd >= 0) {
		if (srv != NULL)
			(void)unlink(cfg.pidfile);
		close(pidfd);
	}
out:
	pd_server_free(srv);
	tg_holder_free(holder);
	tg_errors_clear(&errs);
	tg_config_free(&cfg);
	return rc;
}
