/*
 * probe/output - the probe report: readable lines per endpoint, or one
 * JSON document (--json). Everything printed that came from the peer has
 * already been cleaned to printable ASCII (text.c); JSON strings are
 * escaped here all the same.
 */
#ifndef TLSGATE_PROBE_OUTPUT_H
#define TLSGATE_PROBE_OUTPUT_H

#include <stdio.h>

#include "endpoint.h"

void probe_print_text(FILE *out, const struct probe_result *r);
void probe_print_summary(FILE *out, const struct probe_result *results, size_t n);
void probe_print_json(FILE *out, const struct probe_result *results, size_t n);
/* Writes s as a JSON string literal (with quotes). */
void probe_json_string(FILE *out, const char *s);

#endif
