/*
 * probe/verdict - judging probe facts: a verdict per endpoint with the
 * reasons a person can act on, and the overall verdict and exit code.
 *
 * Rules (docs/probe.md has them for users):
 *  not ready  - cannot resolve / connect (unless the port came from the
 *               default list and is closed: then the endpoint is "closed"
 *               and ignored), protocol dialogue failed, STARTTLS not
 *               offered, TLS handshake failed, certificate not verified
 *               for the name (untrusted, self-signed, expired, not yet
 *               valid, wrong name), no TLS version >= TLSv1.2 accepted
 *  warnings   - cleartext password login advertised before TLS (unless
 *               per_account: tlsgate's configuration is in use), the
 *               certificate expires within warn_days, TLSv1 or TLSv1.1
 *               still accepted
 *  notes      - no effect: TLSv1.3 not accepted, a version could not be
 *               tested, cleartext login advertised with per_account
 * Pure functions over the result; no I/O.
 */
#ifndef TLSGATE_PROBE_VERDICT_H
#define TLSGATE_PROBE_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

#include "endpoint.h"

/* Exit codes of `tlsgate probe`. */
#define PROBE_EXIT_READY 0
#define PROBE_EXIT_WARNINGS 1
#define PROBE_EXIT_NOT_READY 2
#define PROBE_EXIT_ERROR 3

/* Fills r->verdict and r->reasons from r's facts. per_account: tlsgate
 * decides TLS per account on this server (the probe runs with its
 * configuration), so cleartext login on offer is expected. */
void probe_judge(struct probe_result *r, int warn_days, bool per_account);
/* The worst verdict of those not closed; NOT_READY when all are closed. */
enum probe_verdict probe_overall(const struct probe_result *results, size_t n);
const char *probe_verdict_name(enum probe_verdict v);
int probe_verdict_exit(enum probe_verdict v);

#endif
