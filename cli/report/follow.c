/*
 * follow - a log followed as it is written. See follow.h.
 */
#include "follow.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_stream_path(const char *path)
{
	return strcmp(path, "-") == 0;
}

/* Opens f->path; a missing file leaves fd at -1. at_end: start after the
 * last whole line there is. */
static int open_file(struct follow *f, bool at_end, char *why, size_t whylen)
{
	int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT) {
			f->fd = -1;
			return 0;
		}
		snprintf(why, whylen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", f->path);
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->pos = 0;
	f->start = f->end = 0;
	f->skipping = false;
	f->tail_len = 0;
	f->idle = false;
	if (at_end && st.st_size > 0) {
		char last = '\n';
		/* A line cut by where we start is dropped, not read as one. */
		if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
			f->skipping = true;
		if (lseek(fd, st.st_size, SEEK_SET) < 0) {
			snprintf(why, whylen, "%s: %s", f->path, strerror(errno));
			close(fd);
			f->fd = -1;
			return -1;
		}
		f->pos = st.st_size;
	}
	return 0;
}

int follow_open(struct follow *f, const char *path, bool from_start,
		char *why, size_t whylen)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (strlen(path) >= sizeof(f->path)) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->buf = malloc(FOLLOW_BUF_SIZE);
	if (f->buf == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (is_stream_path(path)) {
		f->stream = true;
		f->fd = STDIN_FILENO;
		return 0;
	}
	if (open_file(f, !from_start, why, whylen) < 0) {
		free(f->buf);
		f->buf = NULL;
		return -1;
	}
	return 0;
}

/* A whole line from the buffer: 1 with it, 0 when none is complete. */
static int take_line(struct follow *f, const char **line, size_t *len)
{
	while (f->start < f->end) {
		char *p = f->buf + f->start;
		char *nl = memchr(p, '\n', f->end - f->start);
		if (nl == NULL) {
			if (f->skipping) {
				f->start = f->end = 0;
			} else if (f->end - f->start > FOLLOW_MAX_LINE) {
				/* too long already: skip up to its newline */
				f->skipping = true;
				f->long_lines++;
				f->start = f->end = 0;
			}
			return 0;
		}
		size_t n = (size_t)(nl - p);
		f->start += n + 1;
		if (f->skipping) {
			f->skipping = false;
			continue;
		}
		if (n > FOLLOW_MAX_LINE) {
			f->long_lines++;
			continue;
		}
		if (n > 0 && p[n - 1] == '\r')
			n--;
		f->lines++;
		*line = p;
		*len = n;
		return 1;
	}
	return 0;
}

/* Keeps the last bytes read; the n new ones end buf. */
static void remember_tail(struct follow *f, size_t n)
{
	const size_t cap = sizeof(f->tail);
	if (n >= cap) {
		memcpy(f->tail, f->buf + f->end - cap, cap);
		f->tail_len = cap;
		return;
	}
	size_t keep = f->tail_len + n > cap ? cap - n : f->tail_len;
	memmove(f->tail, f->tail + f->tail_len - keep, keep);
	memcpy(f->tail + keep, f->buf + f->end - n, n);
	f->tail_len = keep + n;
}

/* Whether the bytes before pos are still those read there. */
static bool tail_still_there(const struct follow *f)
{
	unsigned char now[sizeof(f->tail)];
	if (f->tail_len == 0 || f->pos < (off_t)f->tail_len)
		return true;
	ssize_t n = pread(f->fd, now, f->tail_len, f->pos - (off_t)f->tail_len);
	return n == (ssize_t)f->tail_len && memcmp(now, f->tail, f->tail_len) == 0;
}

/* Reads more; returns the bytes read, 0 at the end for now, -1 error. */
static ssize_t fill(struct follow *f, char *why, size_t whylen)
{
	if (f->start == f->end) {
		f->start = f->end = 0;
	} else if (f->start > 0) {
		memmove(f->buf, f->buf + f->start, f->end - f->start);
		f->end -= f->start;
		f->start = 0;
	}
	ssize_t n;
	do
		n = read(f->fd, f->buf + f->end, FOLLOW_BUF_SIZE - f->end);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		snprintf(why, whylen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	f->end += (size_t)n;
	f->pos += n;
	remember_tail(f, (size_t)n);
	return n;
}

/* Bytes of a line that will never be ended: dropped and counted. */
static void drop_partial(struct follow *f)
{
	if (f->end > f->start && !f->skipping)
		f->dropped_partial++;
	f->start = f->end = 0;
	f->skipping = false;
}

/* At the end of the file: has it been rotated or truncated? Returns 1
 * when there is another file or position to read, 0 when not, -1. */
static int check_file(struct follow *f, char *why, size_t whylen)
{
	struct stat st;
	if (stat(f->path, &st) < 0) {
		if (errno == ENOENT)
			return 0;	/* renamed away, the new one not made yet */
		snprintf(why, whylen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	if (f->fd < 0 || st.st_dev != f->dev || st.st_ino != f->ino) {
		if (f->fd >= 0) {
			drop_partial(f);
			close(f->fd);
			f->fd = -1;
			f->rotations++;
		}
		if (open_file(f, false, why, whylen) < 0)
			return -1;
		return f->fd >= 0;
	}
	if (st.st_size < f->pos || !tail_still_there(f)) {
		drop_partial(f);
		f->tail_len = 0;
		if (lseek(f->fd, 0, SEEK_SET) < 0) {
			snprintf(why, whylen, "%s: %s", f->path, strerror(errno));
			return -1;
		}
		f->pos = 0;
		f->truncations++;
		return 1;
	}
	return 0;
}

static bool stream_readable(const struct follow *f)
{
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

int follow_next(struct follow *f, const char **line, size_t *len,
		char *why, size_t whylen)
{
	for (;;) {
		if (take_line(f, line, len))
			return 1;
		if (f->stream) {
			if (f->ended || !stream_readable(f))
				return 0;
			ssize_t n = fill(f, why, whylen);
			if (n < 0)
				return -1;
			if (n == 0) {
				f->ended = true;
				drop_partial(f);
				return 0;
			}
			continue;
		}
		/* Back after a rest at the end: the file may have been
		 * rotated or truncated meanwhile, look before reading on. */
		if (f->idle) {
			f->idle = false;
			if (check_file(f, why, whylen) < 0)
				return -1;
		}
		if (f->fd >= 0) {
			ssize_t n = fill(f, why, whylen);
			if (n < 0)
				return -1;
			if (n > 0)
				continue;
		}
		int r = check_file(f, why, whylen);
		if (r < 0)
			return -1;
		if (r == 0) {
			f->idle = true;
			return 0;
		}
	}
}

int follow_poll_fd(const struct follow *f)
{
	return f->stream && !f->ended ? f->fd : -1;
}

void follow_close(struct follow *f)
{
	if (f->fd >= 0 && !f->stream)
		close(f->fd);
	f->fd = -1;
	free(f->buf);
	f->buf = NULL;
}
