/*
 * atomicfile - output files through unpredictable temporary files. See
 * atomicfile.h.
 */
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomicfile_open(struct atomicfile *af, const char *path, mode_t mode)
{
	af->fd = -1;
	af->tmp[0] = '\0';
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(af->path) || path[len - 1] == '/') {
		errno = len == 0 || path[len - 1] == '/' ? EISDIR : ENAMETOOLONG;
		return -1;
	}
	memcpy(af->path, path, len + 1);
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	const char *base = slash ? slash + 1 : path;
	int n = snprintf(af->tmp, sizeof(af->tmp), "%.*s.%s.XXXXXX", dirlen, path, base);
	if (n < 0 || (size_t)n >= sizeof(af->tmp)) {
		af->tmp[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	af->fd = mkostemp(af->tmp, O_CLOEXEC);
	if (af->fd < 0) {
		af->tmp[0] = '\0';
		return -1;
	}
	if (fchmod(af->fd, mode) < 0) {
		int saved = errno;
		atomicfile_abort(af);
		errno = saved;
		return -1;
	}
	return 0;
}

int atomicfile_commit(struct atomicfile *af)
{
	if (fsync(af->fd) < 0) {
		int saved = errno;
		atomicfile_abort(af);
		errno = saved;
		return -1;
	}
	int r = close(af->fd);
	af->fd = -1;
	if (r < 0 || rename(af->tmp, af->path) < 0) {
		int saved = errno;
		atomicfile_abort(af);
		errno = saved;
		return -1;
	}
	af->tmp[0] = '\0';
	return 0;
}

void atomicfile_abort(struct atomicfile *af)
{
	if (af->fd >= 0)
		close(af->fd);
	af->fd = -1;
	if (af->tmp[0] != '\0')
		unlink(af->tmp);
	af->tmp[0] = '\0';
}

int atomicfile_write(const char *path, const char *data, size_t len, mode_t mode)
{
	struct atomicfile af;
	if (atomicfile_open(&af, path, mode) < 0)
		return -1;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(af.fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			atomicfile_abort(&af);
			errno = saved;
			return -1;
		}
		off += (size_t)w;
	}
	return atomicfile_commit(&af);
}
