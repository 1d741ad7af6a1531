/*
 * peers - who a connection to tlsgate-policyd comes from, and how many
 * connections each peer holds, for the per-peer limit
 * (max_connections_per_peer, docs/postfix.md "Limits").
 *
 * A peer is the client address for inet sockets and the user id
 * (SO_PEERCRED) for unix sockets; a connection whose peer cannot be told
 * (spawn mode's stdin, a failed look-up) has no key and no limit.
 *
 * Memory: one node per peer with open connections, freed when its last
 * connection closes. Errors: pd_peers_add returns -1 when out of memory.
 */
#ifndef TLSGATE_POLICYD_PEERS_H
#define TLSGATE_POLICYD_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pd_peer_kind { PD_PEER_NONE, PD_PEER_INET4, PD_PEER_INET6, PD_PEER_UID };

struct pd_peer_key {
	uint8_t kind;		/* enum pd_peer_kind */
	uint8_t bytes[16];	/* address, or the uid (4 bytes) */
};

/* The peer of a connected socket. Without one, key->kind is PD_PEER_NONE. */
void pd_peer_key_of(int fd, struct pd_peer_key *key);
bool pd_peer_key_eq(const struct pd_peer_key *a, const struct pd_peer_key *b);
/* "192.0.2.7", "2001:db8::1", "uid 106" */
void pd_peer_key_text(const struct pd_peer_key *key, char *buf, size_t size);

struct pd_peers;

struct pd_peers *pd_peers_new(void);
void pd_peers_free(struct pd_peers *p);
unsigned pd_peers_count(const struct pd_peers *p, const struct pd_peer_key *key);
int pd_peers_add(struct pd_peers *p, const struct pd_peer_key *key);
void pd_peers_remove(struct pd_peers *p, const struct pd_peer_key *key);

#endif
