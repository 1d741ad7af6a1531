/*
 * probe/text - making peer text safe to show: `tlsgate probe` quotes
 * greetings, error replies and certificate names in its report.
 *
 * Invariant: the output is always NUL-terminated printable ASCII (bytes
 * outside 0x20..0x7e become '?'); text cut to fit ends in "..." so a
 * shortened value is never mistaken for the whole one.
 */
#ifndef TLSGATE_PROBE_TEXT_H
#define TLSGATE_PROBE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Copies in[0..len) to out (size >= 4) cleaned as above; returns out. */
char *probe_clean_text(const char *in, size_t len, char *out, size_t size);
/* Appends item to the space- or comma-separated list in buf (separator
 * sep between items); on overflow ends buf in "..." and returns false. */
bool probe_list_add(char *buf, size_t size, const char *sep, const char *item);
/* Case-insensitive: does the word list (separated by spaces) contain word? */
bool probe_words_contain(const char *list, const char *word);

#endif
