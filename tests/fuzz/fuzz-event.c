/*
 * fuzz-event - libFuzzer target for the event line parser
 * (tg_event_parse), which `tlsgate report` runs on every log line.
 *
 * Invariants checked (abort on violation): a parsed event has the seven
 * required fields, each NUL-terminated at its recorded length; writing it
 * again with tg_event_format gives a line that parses back to the same
 * values (when no value holds a NUL or is longer than the writer keeps);
 * the written line holds no control character.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tg_event_parsed first, second;
static char line[TG_EVENT_MAX_LINE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	int r = tg_event_parse(copy, size, &first);
	free(copy);
	if (r < 0)
		return 0;

	int round_trip = 1;
	for (int f = 0; f < TG_EV_COUNT; f++) {
		const char *v = first.ev.value[f];
		if (v == NULL) {
			if (f < TG_EV_EXEMPTION)
				abort();
			continue;
		}
		if (v[first.ev.len[f]] != '\0')
			abort();
		if (strlen(v) != first.ev.len[f] ||
		    first.ev.len[f] > (tg_event_is_device_field((enum tg_event_field)f) ?
				       TG_EVENT_MAX_DEVICE_VALUE : TG_EVENT_MAX_VALUE))
			round_trip = 0;
	}
	int n = tg_event_format(&first.ev, line, sizeof(line));
	if (n < 0)
		abort();	/* every field, of bounded size, always fits */
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			abort();
	if (!round_trip)
		return 0;
	if (tg_event_parse(line, (size_t)n, &second) < 0)
		abort();
	for (int f = 0; f < TG_EV_COUNT; f++) {
		const char *a = first.ev.value[f], *b = second.ev.value[f];
		if ((a == NULL) != (b == NULL))
			abort();
		if (a != NULL && (first.ev.len[f] != second.ev.len[f] ||
				  memcmp(a, b, first.ev.len[f]) != 0))
			abort();
	}
	return 0;
}
