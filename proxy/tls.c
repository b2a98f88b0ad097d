/* tls.c - the TLS server context, the run's ticket keys, the checks of
 * tls_cert and tls_key (see tls.h) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proxy/config.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/readfile.h"
#include "proxy/tls.h"

/* SSL_CTX_set_tlsext_ticket_keys: a key name (16 bytes), an HMAC key (32)
 * and an AES key (32). */
#define TICKET_KEYS_LEN 80
/* Session tickets sent after a TLS 1.3 handshake (OpenSSL: 2): an SMTP
 * client resumes one connection at a time. */
#define TICKETS_PER_HANDSHAKE 1
/* Every context of every run has it: a ticket carries it, and one issued by
 * another context (a worker, a reload) is accepted only with the same. */
static const unsigned char session_id_context[] = "moat";

struct tls_server {
	SSL_CTX *ctx;
};

static unsigned char ticket_keys[TICKET_KEYS_LEN];
static int have_ticket_keys;

const char *tls_error_text(unsigned long e)
{
	static __thread char buf[64];
	const char *r;

	if (e == 0)
		return "";
	if ((r = ERR_reason_error_string(e)))
		return r;
	snprintf(buf, sizeof buf, "OpenSSL error %lu:%d", (unsigned long)ERR_GET_LIB(e), ERR_GET_REASON(e));
	return buf;
}

/* "FILE: message[: the OpenSSL reason]" into err, the error queue cleared; -1. */
__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errsize, const char *file, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(err, errsize, "%s: %s%s%s", file, what, e ? ": " : "", tls_error_text(e));
	ERR_clear_error();
	return -1;
}

int tls_ticket_keys_init(char *err, size_t errsize)
{
	if (have_ticket_keys)
		return 0;
	if (RAND_priv_bytes(ticket_keys, sizeof ticket_keys) != 1) {
		snprintf(err, errsize, "cannot draw the session-ticket keys: %s", tls_error_text(ERR_get_error()));
		ERR_clear_error();
		return -1;
	}
	have_ticket_keys = 1;
	return 0;
}

/* A context with moat's settings and no certificate yet. */
static SSL_CTX *ctx_new(char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		fail(err, errsize, "tls", "cannot make a TLS context");
		return NULL;
	}
	/* TLS 1.2 and 1.3 only; renegotiation and compression never (TLS 1.3
	 * has neither); a client's close without close_notify is an end of
	 * input like any (SMTP says itself where it ends: QUIT, the dot). */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* An idle session gives its record buffers back (10,000 idle ones). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Resumption by tickets only: they hold the session, the server keeps
	 * nothing per client, and every worker reads every ticket. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, TICKETS_PER_HANDSHAKE);
	if (!SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context - 1) ||
	    (have_ticket_keys && SSL_CTX_set_tlsext_ticket_keys(ctx, ticket_keys, sizeof ticket_keys) != 1)) {
		fail(err, errsize, "tls", "cannot set up the TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* An ASN1 time as "2026-01-31 12:00:00 UTC". */
static const char *when(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, size, "(unreadable date)");
	return buf;
}

/* The certificate valid now. */
static int cert_current(X509 *x, const char *path, char *err, size_t errsize)
{
	char date[64];

	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0)
		return fail(err, errsize, path, "the certificate is not valid yet (not before %s)",
		            when(X509_get0_notBefore(x), date, sizeof date));
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
		return fail(err, errsize, path, "the certificate has expired (not after %s)",
		            when(X509_get0_notAfter(x), date, sizeof date));
	return 0;
}

/* The chain after the certificate: every further CERTIFICATE block. */
static int load_chain(SSL_CTX *ctx, BIO *bio, const char *path, char *err, size_t errsize)
{
	unsigned long e;
	X509 *ca;

	while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		if (!SSL_CTX_add0_chain_cert(ctx, ca)) {
			X509_free(ca);
			return fail(err, errsize, path, "cannot add a certificate of the chain");
		}
	}
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		return fail(err, errsize, path, "a certificate of the chain cannot be read");
	ERR_clear_error();
	return 0;
}

/* The certificate file into ctx; *leaf: the certificate (a reference). */
static int load_cert(SSL_CTX *ctx, const char *path, X509 **leaf, char *err, size_t errsize)
{
	char msg[256];
	size_t len;
	char *buf = file_read(path, MOAT_TLS_FILE_MAX, &len, NULL, msg, sizeof msg);
	BIO *bio;
	int r = -1;

	*leaf = NULL;
	if (!buf)
		return fail(err, errsize, path, "%s", msg);
	if (!(bio = BIO_new_mem_buf(buf, (int)len)))
		fail(err, errsize, path, "out of memory");
	else if (!(*leaf = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)))
		fail(err, errsize, path, "no certificate in it (PEM: -----BEGIN CERTIFICATE-----)");
	else if (cert_current(*leaf, path, err, errsize) == 0) {
		if (SSL_CTX_use_certificate(ctx, *leaf) != 1)
			fail(err, errsize, path, "the certificate cannot be used");
		else
			r = load_chain(ctx, bio, path, err, errsize);
	}
	BIO_free(bio);
	free(buf);
	if (r < 0) {
		X509_free(*leaf);
		*leaf = NULL;
	}
	return r;
}

/* PEM's passphrase callback: moat asks for none (a terminal prompt would
 * hang a start); a key that wants one is refused, and said so. */
static int no_passphrase(char *buf, int size, int rwflag, void *asked)
{
	*(int *)asked = 1;
	return -1;
}

/* The key file; *world: others may read it. */
static EVP_PKEY *load_key(const char *path, int *world, char *err, size_t errsize)
{
	char msg[256];
	struct stat st;
	size_t len;
	char *buf = file_read(path, MOAT_TLS_FILE_MAX, &len, &st, msg, sizeof msg);
	EVP_PKEY *k = NULL;
	int asked = 0;
	BIO *bio;

	if (!buf) {
		fail(err, errsize, path, "%s", msg);
		return NULL;
	}
	*world = (st.st_mode & S_IROTH) != 0;
	if ((bio = BIO_new_mem_buf(buf, (int)len)))
		k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
	if (!k && asked)
		fail(err, errsize, path, "the key is encrypted: moat takes no passphrase (openssl pkey -in %s "
		     "-out PLAIN, and keep PLAIN readable by moat's user only)", path);
	else if (!k)
		fail(err, errsize, path, "no private key in it (PEM: -----BEGIN PRIVATE KEY-----)");
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return k;
}

/* One pair into ctx; *type: its key type. */
static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, int *type, char *err, size_t errsize,
                     char *warn, size_t warnsize)
{
	X509 *x;
	EVP_PKEY *k;
	int world = 0, r = -1;

	if (load_cert(ctx, cert, &x, err, errsize) < 0)
		return -1;
	if (!(k = load_key(key, &world, err, errsize))) {
		X509_free(x);
		return -1;
	}
	if (X509_check_private_key(x, k) != 1)
		fail(err, errsize, key, "the key does not match the certificate in %s", cert);
	else if (SSL_CTX_use_PrivateKey(ctx, k) != 1)
		fail(err, errsize, key, "the key cannot be used with the certificate in %s", cert);
	else
		r = 0;
	*type = EVP_PKEY_get_base_id(k);
	if (r == 0 && world && !warn[0])
		snprintf(warn, warnsize, "%s: warning: the private key is world-readable (chmod o-r %s)", key, key);
	EVP_PKEY_free(k);
	X509_free(x);
	return r;
}

int tls_config_load(struct config *c, char *err, size_t errsize, char *warn, size_t warnsize)
{
	int type[CONFIG_TLS_PAIRS] = {0};
	struct tls_server *t;

	warn[0] = '\0';
	if (c->ntls_cert == 0)
		return 0;
	ERR_clear_error();
	if (!(t = calloc(1, sizeof *t))) {
		snprintf(err, errsize, "tls: out of memory");
		return -1;
	}
	if (!(t->ctx = ctx_new(err, errsize))) {
		free(t);
		return -1;
	}
	for (int i = 0; i < c->ntls_cert && i < c->ntls_key; i++) {
		if (load_pair(t->ctx, c->tls_cert[i], c->tls_key[i], &type[i], err, errsize, warn, warnsize) < 0 ||
		    (i > 0 && type[i] == type[0] &&
		     fail(err, errsize, c->tls_cert[i], "its key is of the same type as %s's (%s): a second pair "
		          "must be of another type (RSA and ECDSA)", c->tls_cert[0], OBJ_nid2sn(type[i])) < 0)) {
			tls_server_free(t);
			return -1;
		}
	}
	c->tls = t;
	return 0;
}

void tls_server_free(struct tls_server *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

struct ssl_st *tls_server_ssl(const struct tls_server *t)
{
	SSL *ssl = SSL_new(t->ctx);

	ERR_clear_error(); /* a failure is out of memory: nothing to report later */
	return ssl;
}
