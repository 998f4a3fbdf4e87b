/* endpoint.h - the syntax of a TCP endpoint the cluster accepts: tcp://HOST:PORT, a host
 * that is not empty and a port of 1-65535 written in digits only. ZeroMQ itself takes a port
 * past 65535 modulo 65536 (tcp://127.0.0.1:99999 binds 34463), so a typo would otherwise
 * point at some other process's port. */
#ifndef SHOAL_ENGINE_ENDPOINT_H
#define SHOAL_ENGINE_ENDPOINT_H

#include <stdbool.h>
#include <string.h>

static inline bool shoal_tcp_endpoint_ok(const char *ep)
{
    if (!ep || strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *colon = strrchr(ep, ':');
    if (colon <= ep + 6 || !colon[1] || strlen(colon + 1) > 5)
        return false;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

/* An endpoint a client may name: tcp:// as above, or a non-empty ipc:// or inproc:// one
 * (brokers inside tests; a shoal-broker binds tcp:// only). */
static inline bool shoal_client_endpoint_ok(const char *ep)
{
    if (!strncmp(ep, "ipc://", 6))
        return ep[6] != '\0';
    if (!strncmp(ep, "inproc://", 9))
        return ep[9] != '\0';
    return shoal_tcp_endpoint_ok(ep);
}

/* A client may name several brokers of one cluster: "tcp://a:7000,tcp://b:7000". */
#ifndef SHOAL_MAX_BROKERS /* also in broker/shoal.h, the public header */
#define SHOAL_MAX_BROKERS 8
#endif

/* The first endpoint of such a list, into out (cap bytes); false if it does not fit. */
static inline bool shoal_first_endpoint(const char *list, char *out, size_t cap)
{
    size_t n = strcspn(list, ",");
    if (n >= cap)
        return false;
    memcpy(out, list, n);
    out[n] = 0;
    return true;
}

#endif
