/*
 * filetrust - trusted opening of policy and configuration files.
 * See filetrust.h.
 */
#include "filetrust.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int owner_ok(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

static int check_owner_mode(const char *what, const char *path,
			    const struct stat *st, int allow_sticky,
			    char *why, size_t whylen)
{
	if (!owner_ok(st->st_uid)) {
		snprintf(why, whylen,
			 "%s %s is owned by uid %lu; it must be owned by root or uid %lu",
			 what, path, (unsigned long)st->st_uid,
			 (unsigned long)geteuid());
		return -1;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
	    !(allow_sticky && (st->st_mode & S_ISVTX))) {
		snprintf(why, whylen,
			 "%s %s is writable by %s; run: chmod go-w %s",
			 what, path,
			 (st->st_mode & S_IWOTH) ? "everyone" : "its group",
			 path);
		return -1;
	}
	return 0;
}

/* Checks every directory from `real` (an absolute path without symlinks)
 * up to '/'. */
static int check_ancestors(const char *real, char *why, size_t whylen)
{
	char dir[PATH_MAX];
	struct stat st;

	if (strlen(real) >= sizeof(dir)) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	strcpy(dir, real);
	for (;;) {
		if (stat(dir, &st) < 0) {
			snprintf(why, whylen, "%s: %s", dir, strerror(errno));
			return -1;
		}
		if (check_owner_mode("directory", dir, &st, 1, why, whylen) < 0)
			return -1;
		char *slash = strrchr(dir, '/');
		if (slash == NULL || slash == dir) {
			if (strcmp(dir, "/") == 0)
				return 0;
			strcpy(dir, "/");
			continue;
		}
		*slash = '\0';
	}
}

int tg_trust_dir(const char *path, struct stat *st, char *why, size_t whylen)
{
	char real[PATH_MAX];

	if (realpath(path, real) == NULL) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (stat(real, st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st->st_mode)) {
		snprintf(why, whylen, "not a directory");
		return -1;
	}
	return check_ancestors(real, why, whylen);
}

/* Checks the directories above a file given by path. */
static int check_file_dirs(const char *path, char *why, size_t whylen)
{
	char real[PATH_MAX];
	if (realpath(path, real) == NULL) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	char *slash = strrchr(real, '/');
	if (slash == real)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	return check_ancestors(real, why, whylen);
}

int tg_open_trusted(const char *path, int dir_checked, int *fdp,
		    struct stat *st, char *why, size_t whylen)
{
	struct stat lst;
	int is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);

	*fdp = -1;
	if ((!dir_checked || is_link) && check_file_dirs(path, why, whylen) < 0)
		return -1;

	/* O_NONBLOCK: opening a FIFO must not hang the reader. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "not a regular file");
		close(fd);
		return -1;
	}
	if (check_owner_mode("file", path, st, 0, why, whylen) < 0) {
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

int tg_read_trusted(const char *path, int dir_checked, size_t max,
		    char **data, size_t *len, struct stat *st,
		    char *why, size_t whylen)
{
	int fd;

	*data = NULL;
	*len = 0;
	if (tg_open_trusted(path, dir_checked, &fd, st, why, whylen) < 0)
		return -1;
	if ((size_t)st->st_size > max) {
		snprintf(why, whylen, "file is larger than %zu bytes", max);
		close(fd);
		return -1;
	}

	/* The file may grow or shrink while it is read; read to EOF with the
	 * limit in force rather than trusting st_size. */
	size_t cap = (size_t)st->st_size + 1, used = 0;
	char *buf = malloc(cap + 1);
	if (buf == NULL) {
		snprintf(why, whylen, "out of memory");
		close(fd);
		return -1;
	}
	for (;;) {
		if (used == cap) {
			if (cap > max) {
				snprintf(why, whylen, "file is larger than %zu bytes", max);
				goto fail;
			}
			size_t grown = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *p = realloc(buf, grown + 1);
			if (p == NULL) {
				snprintf(why, whylen, "out of memory");
				goto fail;
			}
			buf = p;
			cap = grown;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "read: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > max) {
		snprintf(why, whylen, "file is larger than %zu bytes", max);
		goto fail;
	}
	close(fd);
	buf[used] = '\0';
	*data = buf;
	*len = used;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}
