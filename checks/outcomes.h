/* outcomes.h - what each check finds, in its own terms (the rules see these
 * through the vocabulary its registry row declares) */
#ifndef MOAT_CHECKS_OUTCOMES_H
#define MOAT_CHECKS_OUTCOMES_H

/* ---- reverse DNS (connect) ---- */
enum rdns_res {
	RDNS_OK,       /* name holds a confirmed name */
	RDNS_NONE,     /* no PTR, or no PTR name resolves back to the address */
	RDNS_TEMPFAIL, /* a lookup failed: unknown, for now */
};

/* ---- sender domain (mail) ---- */
enum sender_res {
	SD_PASS,      /* MX, or A/AAAA when there is no MX */
	SD_NONE,      /* null sender or address literal: not checked */
	SD_NXDOMAIN,  /* the domain does not exist: 550 5.1.8 */
	SD_NORECORDS, /* no MX, A or AAAA: 550 5.1.8 */
	SD_NULLMX,    /* "MX 0 ." (RFC 7505): 550 5.7.27 */
	SD_TEMPFAIL,  /* a lookup failed or timed out: 451 4.4.3 */
};

/* ---- SPF, RFC 7208 (mail) ---- */
enum spf_res {
	SPF_RES_NONE, SPF_RES_NEUTRAL, SPF_RES_PASS, SPF_RES_FAIL, SPF_RES_SOFTFAIL,
	SPF_RES_TEMPERROR, SPF_RES_PERMERROR,
};

struct spf_outcome {
	enum spf_res res;
	int helo_identity;        /* 1: checked the HELO identity (null sender) */
	char identity[320];       /* the checked sender "local@domain" as the client wrote it
	                           * (UTF-8 with SMTPUTF8), or "postmaster@helo" */
	char domain[256];         /* the domain whose policy was evaluated (A-labels for an IDN) */
	char explanation[512];    /* for fail: the domain's exp= text, or a default */
	int exp_default;          /* for fail: 1 = explanation is moat's default text;
	                           * 0 = the domain's exp= (untrusted, printable ASCII) */
	char reason[256];         /* short, for logs: "mechanism -all matched", "void lookup limit" */
	int passes, lookups;      /* for logs: libspf2 runs, DNS answers used */
};

/* ---- DKIM, RFC 6376 (data) ---- */
enum dkim_res {
	DKIM_RES_NONE,      /* no signature */
	DKIM_RES_PASS,
	DKIM_RES_FAIL,      /* signature or body hash did not verify, or key revoked/missing (RFC 8601) */
	DKIM_RES_NEUTRAL,   /* e.g. a signature we cannot evaluate (unsupported algorithm) */
	DKIM_RES_TEMPERROR, /* key lookup failed temporarily */
	DKIM_RES_PERMERROR, /* malformed signature or key */
};

#define DKIM_MAX_SIGS 8 /* signatures evaluated per message; more are reported as permerror */
struct dkim_sig_result {
	enum dkim_res res;
	char domain[256];   /* d= */
	char selector[256]; /* s= */
	char b[16];         /* first 8+ chars of b=, for header.b (RFC 6008) */
	char algo[32];      /* "rsa-sha256", "ed25519-sha256" */
	char reason[128];   /* "body hash mismatch", "key revoked", "no key", ... */
};

struct dkim_outcome {
	int nsigs;
	struct dkim_sig_result sig[DKIM_MAX_SIGS];
	enum dkim_res summary; /* pass if any passed; else fail if any failed; else temperror/permerror/neutral/none */
	int nextra;            /* DKIM-Signature fields past DKIM_MAX_SIGS: not evaluated, count as permerror */
};

#endif
