/*
 * outfmt - writing untrusted text (account names, addresses, references
 * from log lines) safely into terminal text, JSON, CSV and HTML, and times
 * in the forms the reports use.
 *
 * Every writer here makes any byte string safe for its format: nothing a
 * log line holds can start a terminal escape, break out of a JSON string,
 * a CSV field (or be read as a spreadsheet formula) or inject HTML, and
 * no bidirectional formatting character (U+202E RIGHT-TO-LEFT OVERRIDE and
 * the others of origin.h) reaches any output to reorder what a reader
 * sees: JSON writes it as a \u escape, CSV and HTML as "[U+202E]", terminal
 * text as '?' like all non-ASCII.
 */
#ifndef TLSGATE_OUTFMT_H
#define TLSGATE_OUTFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Terminal text: printable ASCII kept, anything else becomes '?', cut at
 * `max` bytes with "...". Returns buf. */
char *outfmt_text(const char *s, size_t max, char *buf, size_t size);

/* A JSON string with its quotes. Valid UTF-8 is kept; other bytes become
 * U+FFFD; control characters are \u escapes. */
void outfmt_json_string(FILE *out, const char *s);
/* A CSV field, always quoted. Control characters become '?'; a field
 * starting with = + - @ gets a leading apostrophe. */
void outfmt_csv_field(FILE *out, const char *s);
/* HTML text or attribute content. */
void outfmt_html(FILE *out, const char *s);

/* Local time "YYYY-MM-DD HH:MM" (text), "-" for TALLY_NO_TIME. */
char *outfmt_time_text(int64_t when, char *buf, size_t size);
/* RFC 3339 local time with offset, "" for TALLY_NO_TIME. */
char *outfmt_time_iso(int64_t when, char *buf, size_t size);

/* "imap,pop3" from a service mask ("-" for none). */
char *outfmt_services(uint8_t mask, char *buf, size_t size);

/* Length of the valid UTF-8 sequence at s (1..4), 0 if not valid. */
size_t outfmt_utf8_len(const unsigned char *s, size_t avail);

#endif
