/*
 * atomicfile - writing an output file (report --html, notify's --out
 * notices and --state) so that readers see the old or the new content,
 * never a part, and so that nobody who can write the directory can make
 * the writer overwrite another file.
 *
 * The temporary file is made by mkostemp() in the target's directory
 * (".NAME.XXXXXX": unpredictable, O_CREAT | O_EXCL, so a planted symlink
 * or file is never opened), given its mode with fchmod(), written,
 * fsync()ed and renamed over the target; rename() replaces a symlink at
 * the target's name instead of following it.
 *
 * Errors: functions return -1 with errno set (and the temporary file
 * removed); nothing is printed.
 */
#ifndef TLSGATE_ATOMICFILE_H
#define TLSGATE_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

struct atomicfile {
	char tmp[4200];
	char path[4096];
	int fd;
};

/* Creates the temporary file for `path`; af->fd is open for writing. */
int atomicfile_open(struct atomicfile *af, const char *path, mode_t mode);
/* fsync, close, rename over the target. The fd must still be open (a
 * caller that wrapped it in a FILE passes fflush'ed streams only). */
int atomicfile_commit(struct atomicfile *af);
/* Closes (if open) and removes the temporary file. */
void atomicfile_abort(struct atomicfile *af);
/* The whole of data[0..len) to path. */
int atomicfile_write(const char *path, const char *data, size_t len, mode_t mode);

#endif
