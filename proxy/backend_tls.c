/* backend_tls.c - TLS towards the backend (see backend_tls.h) */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proxy/backend_tls.h"

struct backend_tls_cache {
	SSL_SESSION *sess;
	SSL_CTX *ctx;  /* a reference: a reload's new context is never taken for it */
	char name[256];
};

/* The name a TLS client checks, as its sessions are cached under. */
static void name_of(SSL *ssl, char *out, size_t size)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	char *ip = name ? NULL : X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));

	snprintf(out, size, "%s", name ? name : ip ? ip : "");
	OPENSSL_free(ip);
}

/* The cache a connection's TLS client reports new sessions to. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct backend_tls_cache *c = SSL_get_app_data(ssl);
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	if (!c || !SSL_SESSION_is_resumable(sess))
		return 0;
	if (c->sess)
		SSL_SESSION_free(c->sess);
	if (c->ctx != ctx) {
		SSL_CTX_free(c->ctx);
		SSL_CTX_up_ref(ctx);
		c->ctx = ctx;
	}
	c->sess = sess;
	name_of(ssl, c->name, sizeof c->name);
	return 1; /* the cache keeps the reference */
}

static int load_cas(SSL_CTX *ctx, const char *ca, char *err, size_t errsize)
{
	struct stat st;
	unsigned long e;
	int dir;

	if (stat(ca, &st) < 0) {
		snprintf(err, errsize, "backend_tls_ca %s: %s", ca, strerror(errno));
		return -1;
	}
	dir = S_ISDIR(st.st_mode);
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(ctx, dir ? NULL : ca, dir ? ca : NULL) == 1)
		return 0;
	e = ERR_peek_last_error();
	snprintf(err, errsize, "backend_tls_ca %s: %s", ca, e ? ERR_reason_error_string(e) : "no certificate in it");
	return -1;
}

SSL_CTX *backend_tls_ctx_new(const char *ca, char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, errsize, "backend TLS: cannot make a context (out of memory)");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	if (ca && ca[0] && load_cas(ctx, ca, err, errsize) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void backend_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

struct backend_tls_cache *backend_tls_cache_new(void)
{
	return calloc(1, sizeof(struct backend_tls_cache));
}

void backend_tls_cache_free(struct backend_tls_cache *c)
{
	if (!c)
		return;
	SSL_SESSION_free(c->sess);
	SSL_CTX_free(c->ctx);
	free(c);
}

static int is_address(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

SSL *backend_tls_new(SSL_CTX *ctx, struct backend_tls_cache *cache, const char *name, int verify)
{
	SSL *ssl = SSL_new(ctx);
	char key[256];
	int ok;

	if (!ssl)
		return NULL;
	if (is_address(name)) {
		/* no SNI for an address (RFC 6066 3) */
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
	} else {
		ok = SSL_set1_host(ssl, name) == 1 && SSL_set_tlsext_host_name(ssl, name) == 1;
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (ok && cache && cache->sess && cache->ctx == ctx) {
		name_of(ssl, key, sizeof key);
		if (strcmp(cache->name, key) == 0)
			ok = SSL_set_session(ssl, cache->sess) == 1;
	}
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_app_data(ssl, cache);
	return ssl;
}

void backend_tls_detach(SSL *ssl)
{
	if (ssl)
		SSL_set_app_data(ssl, NULL);
}

void backend_tls_info(SSL *ssl, struct backend_tls_info *out)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);

	snprintf(out->version, sizeof out->version, "%s", SSL_get_version(ssl));
	snprintf(out->cipher, sizeof out->cipher, "%s", c ? SSL_CIPHER_get_name(c) : "");
	out->verified = SSL_get_verify_result(ssl) == X509_V_OK && SSL_get0_peer_certificate(ssl) != NULL;
	out->resumed = SSL_session_reused(ssl);
}

void backend_tls_failure(SSL *ssl, unsigned long err, char *out, size_t size)
{
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	const char *why = err ? ERR_reason_error_string(err) : NULL;

	if (v != X509_V_OK)
		snprintf(out, size, "certificate did not verify: %s", X509_verify_cert_error_string(v));
	else
		snprintf(out, size, "TLS handshake failed: %s", why ? why : "connection closed");
}
