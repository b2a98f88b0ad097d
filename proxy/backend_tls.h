/* backend_tls.h - TLS on the connections to the backend (STARTTLS, RFC 3207,
 * moat as the client): the client context, made when the config is loaded
 * (reading the CAs happens there: at start and in the reload thread, never
 * on the loop); one TLS client per connection, with the name it checks;
 * what a handshake gave or why it failed; the session a worker resumes on
 * its next connection. */
#ifndef MOAT_BACKEND_TLS_H
#define MOAT_BACKEND_TLS_H

#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;
struct backend_tls_cache;

/* TLS 1.2 and 1.3 only, no compression, no renegotiation; the CAs in ca
 * (a PEM file, or a directory hashed by c_rehash / openssl rehash; ""
 * none). NULL with "backend_tls_ca PATH: why" in err. */
struct ssl_ctx_st *backend_tls_ctx_new(const char *ca, char *err, size_t errsize);
void backend_tls_ctx_free(struct ssl_ctx_st *ctx);

/* The session to resume: the latest a context got for a name. */
struct backend_tls_cache *backend_tls_cache_new(void);
void backend_tls_cache_free(struct backend_tls_cache *c);

/* A TLS client on ctx for one connection. name: the name the certificate
 * must hold (a DNS name, also sent as SNI, or an IP address, checked
 * against the certificate's IP addresses). verify: the handshake fails
 * unless the certificate verifies (chain to a CA of the context, name);
 * else it goes on and backend_tls_info says whether it did. Resumes the
 * cache's session when it is of this context and name; new sessions go
 * into the cache. NULL: out of memory. */
struct ssl_st *backend_tls_new(struct ssl_ctx_st *ctx, struct backend_tls_cache *cache, const char *name,
                               int verify);
/* A TLS client is done with (before its connection is freed, it may still
 * hand the cache a session): forget the cache. */
void backend_tls_detach(struct ssl_st *ssl);

struct backend_tls_info {
	char version[16];  /* "TLSv1.3" */
	char cipher[64];   /* "TLS_AES_256_GCM_SHA384" */
	int verified;      /* the certificate verified */
	int resumed;       /* a session resumed */
};
/* After the handshake. */
void backend_tls_info(struct ssl_st *ssl, struct backend_tls_info *out);
/* Why a handshake failed: the certificate's verification, else err (the
 * OpenSSL error libevent kept, 0 if none). */
void backend_tls_failure(struct ssl_st *ssl, unsigned long err, char *out, size_t size);

#endif
