/* tls.h - moat's TLS server side: the context made of tls_cert and tls_key,
 * the session-ticket keys of a run, and what moat -t checks of the files
 *
 * Loading reads files and parses keys: it runs at start and in the reload
 * thread, never on the loop. A context is made once per (re)load and hangs
 * off the config that named its files, so a session keeps the context it
 * started with and an SSL keeps its context alive (OpenSSL counts them). */
#ifndef MOAT_TLS_H
#define MOAT_TLS_H

#include <stddef.h>

struct config;
struct ssl_st;
struct tls_server;

/* The session-ticket keys of this run: drawn once (RAND_priv_bytes) before
 * the first context is made and before the workers fork, so every worker
 * and every context a SIGHUP makes encrypt and accept the same tickets: a
 * client resumes on any worker, before and after a reload. They change at
 * restart. Without them (the draw failed, said in err) each context keeps
 * OpenSSL's own keys. 0, or -1 with err. */
int tls_ticket_keys_init(char *err, size_t errsize);

/* The TLS context of c's tls_cert and tls_key pairs into c->tls (none
 * configured: c->tls stays NULL). Each pair: the certificate file (PEM, the
 * certificate then its chain) and the key file (PEM, not encrypted); the
 * key must fit the certificate, the certificate must be valid now, and two
 * pairs must be of different key types (RSA and ECDSA: OpenSSL keeps one
 * certificate per type and gives each client one it can use). 0, or -1
 * with "FILE: message" in err. A key file others may read is no error: it
 * is said in warn ("" if none) for the caller to print or log. */
int tls_config_load(struct config *c, char *err, size_t errsize, char *warn, size_t warnsize);
void tls_server_free(struct tls_server *t);

/* A new server-side SSL for one connection, or NULL (out of memory). */
struct ssl_st *tls_server_ssl(const struct tls_server *t);

/* The reason of an OpenSSL error code, for a log line ("wrong version
 * number"); "" for 0. */
const char *tls_error_text(unsigned long e);

#endif
