/*
 * peers - connections per peer. See peers.h.
 */
#include "peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BUCKETS 1024

struct node {
	struct node *next;
	struct pd_peer_key key;
	unsigned count;
};

struct pd_peers {
	struct node *bucket[BUCKETS];
};

void pd_peer_key_of(int fd, struct pd_peer_key *key)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	socklen_t len = sizeof(ss);

	memset(key, 0, sizeof(*key));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
		key->kind = PD_PEER_INET4;
		memcpy(key->bytes, &sin->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
		key->kind = PD_PEER_INET6;
		memcpy(key->bytes, &sin6->sin6_addr, 16);
	} else if (ss.ss_family == AF_UNIX) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
			uint32_t uid = (uint32_t)cred.uid;
			key->kind = PD_PEER_UID;
			memcpy(key->bytes, &uid, sizeof(uid));
		}
	}
}

bool pd_peer_key_eq(const struct pd_peer_key *a, const struct pd_peer_key *b)
{
	return a->kind == b->kind && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

void pd_peer_key_text(const struct pd_peer_key *key, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];
	uint32_t uid;

	switch (key->kind) {
	case PD_PEER_INET4:
		inet_ntop(AF_INET, key->bytes, addr, sizeof(addr));
		snprintf(buf, size, "%s", addr);
		break;
	case PD_PEER_INET6:
		inet_ntop(AF_INET6, key->bytes, addr, sizeof(addr));
		snprintf(buf, size, "%s", addr);
		break;
	case PD_PEER_UID:
		memcpy(&uid, key->bytes, sizeof(uid));
		snprintf(buf, size, "uid %u", (unsigned)uid);
		break;
	default:
		snprintf(buf, size, "unknown peer");
		break;
	}
}

static size_t bucket_of(const struct pd_peer_key *key)
{
	uint64_t h = 1469598103934665603ull ^ key->kind;
	for (size_t i = 0; i < sizeof(key->bytes); i++)
		h = (h ^ key->bytes[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32)) % BUCKETS;
}

struct pd_peers *pd_peers_new(void)
{
	return calloc(1, sizeof(struct pd_peers));
}

void pd_peers_free(struct pd_peers *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		while (p->bucket[i] != NULL) {
			struct node *n = p->bucket[i];
			p->bucket[i] = n->next;
			free(n);
		}
	}
	free(p);
}

static struct node **find(struct pd_peers *p, const struct pd_peer_key *key)
{
	struct node **np = &p->bucket[bucket_of(key)];
	while (*np != NULL && !pd_peer_key_eq(&(*np)->key, key))
		np = &(*np)->next;
	return np;
}

unsigned pd_peers_count(const struct pd_peers *p, const struct pd_peer_key *key)
{
	struct node **np = find((struct pd_peers *)p, key);
	return *np != NULL ? (*np)->count : 0;
}

int pd_peers_add(struct pd_peers *p, const struct pd_peer_key *key)
{
	struct node **np = find(p, key);
	if (*np == NULL) {
		struct node *n = calloc(1, sizeof(*n));
		if (n == NULL)
			return -1;
		n->key = *key;
		*np = n;
	}
	(*np)->count++;
	return 0;
}

void pd_peers_remove(struct pd_peers *p, const struct pd_peer_key *key)
{
	struct node **np = find(p, key);
	struct node *n = *np;
	if (n == NULL)
		return;
	if (--n->count == 0) {
		*np = n->next;
		free(n);
	}
}
