/*
 * follow - reading a log as it is written, for `tlsgate notify --follow`:
 * a file followed across rotation, or a stream (stdin, e.g. journalctl -f).
 *
 * A file is reopened by its path when the name leads to another inode
 * (rename + create: the old file is read to its end first) and read again
 * from its start when it became shorter than what was read (copytruncate).
 * The path is looked at again each time the reader reaches the end of
 * the file it has open, so no signal is needed after a rotation.
 * On open the reader starts at the end of the file unless told to read it
 * whole; a line cut by that start is dropped, never handed out as a line.
 *
 * Lines are handed out without their newline from a buffer of fixed size
 * (FOLLOW_BUF_SIZE): memory does not grow with the input. A line longer
 * than FOLLOW_MAX_LINE is skipped whole and counted; bytes not yet ended
 * by a newline wait in the buffer until the newline comes. A partial line
 * left in a file that was rotated or truncated is dropped and counted.
 *
 * Truncation is seen by size (shorter than what was read) and, for a file
 * truncated and written again past the old read position before the next
 * look, by the last 512 bytes read: when they are no longer
 * there, the file is read again from its start.
 *
 * Limits: lines written between logrotate's copy and its truncation are
 * never seen (copytruncate loses them for every reader); lines a writer
 * still adds to a renamed file after the reader moved on to the new file
 * at that path are not read (a writer reopens at logrotate's postrotate,
 * moments after the rename).
 *
 * Errors: functions return -1 with `why`; nothing here exits or prints.
 */
#ifndef TLSGATE_FOLLOW_H
#define TLSGATE_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FOLLOW_MAX_LINE 32768
#define FOLLOW_BUF_SIZE (2 * FOLLOW_MAX_LINE)

struct follow {
	char path[4096];	/* "-": stdin */
	int fd;			/* -1: the file is not there (yet) */
	dev_t dev;
	ino_t ino;
	off_t pos;		/* bytes of the current file read into buf */
	char *buf;
	size_t start, end;
	bool skipping;		/* inside an over-long or cut line */
	bool stream;		/* stdin: no rotation, end = input ended */
	bool ended;		/* stream: the writer closed it */
	bool idle;		/* the last read found the end of the file */
	unsigned char tail[512];	/* the last bytes read before pos */
	size_t tail_len;
	uint64_t lines, long_lines, dropped_partial;
	uint64_t rotations, truncations;
};

/* Opens path ("-": stdin). from_start: read a file from its beginning
 * instead of its end. A missing file is waited for (fd -1), not an
 * error. Returns 0, or -1 with why. */
int follow_open(struct follow *f, const char *path, bool from_start,
		char *why, size_t whylen);
/* Returns 1 with a line, 0 when no whole line is there yet (or a stream
 * ended: f->ended), -1 with why on a read error. Never blocks: a stream
 * is read only when it is readable. */
int follow_next(struct follow *f, const char **line, size_t *len,
		char *why, size_t whylen);
/* The descriptor to wait on with poll() for a stream, else -1. */
int follow_poll_fd(const struct follow *f);
void follow_close(struct follow *f);

#endif
