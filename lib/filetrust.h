/*
 * filetrust - open policy and configuration files only when no one but
 * root or the running user could have written them.
 *
 * A file is trusted when it is a regular file owned by root or by the
 * effective user, not writable by group or others, and every directory
 * above it (after following symlinks) is owned by root or the effective
 * user and not writable by group or others - unless the directory has the
 * sticky bit (like /tmp), where no one else can rename our entries.
 * Symlinks are followed; the target must pass the same checks. FIFOs,
 * devices and directories are refused without blocking on them.
 * Functions return -1 and fill `why` ("what is wrong and how to fix it").
 */
#ifndef TLSGATE_FILETRUST_H
#define TLSGATE_FILETRUST_H

#include <stddef.h>
#include <sys/stat.h>

/* Checks that the directory `path` and all above it are trusted; fills st. */
int tg_trust_dir(const char *path, struct stat *st, char *why, size_t whylen);

/* Opens a trusted file for reading; *fd is the caller's to close, st its
 * fstat. dir_checked: as for tg_read_trusted(). */
int tg_open_trusted(const char *path, int dir_checked, int *fd,
		    struct stat *st, char *why, size_t whylen);

/* Opens and reads a trusted file completely (at most max bytes, else an
 * error). *data is malloc'ed and NUL-terminated; st is the file's fstat.
 * dir_checked: the caller already checked the directory that holds `path`
 * (only re-checked when `path` is a symlink). */
int tg_read_trusted(const char *path, int dir_checked, size_t max,
		    char **data, size_t *len, struct stat *st,
		    char *why, size_t whylen);

#endif
