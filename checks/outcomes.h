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

/* ---- DMARC, RFC 7489 (data, after SPF and DKIM) ---- */
enum dmarc_res {
	DMARC_RES_NONE,      /* no policy published (or no DMARC for this message) */
	DMARC_RES_PASS,      /* an aligned identifier passed SPF or DKIM */
	DMARC_RES_FAIL,
	DMARC_RES_TEMPERROR, /* the policy lookup failed for now */
	DMARC_RES_PERMERROR, /* a broken record, or no single author domain */
};
enum dmarc_pol { DMARC_POL_UNSET, DMARC_POL_NONE, DMARC_POL_QUARANTINE, DMARC_POL_REJECT };
struct dmarc_outcome {
	enum dmarc_res res;
	int have_record;            /* a record was found and parsed */
	enum dmarc_pol published;   /* p, or sp for a subdomain found through its organizational domain */
	enum dmarc_pol policy;      /* what the domain asks for this message: published, lowered
	                             * one step when pct sampling leaves it out (RFC 7489 6.6.4) */
	int used_sp;                /* published is sp */
	int pct;                    /* 0..100 */
	int sample;                 /* 0..99: the message's draw (pct applies when sample < pct) */
	int strict_spf, strict_dkim;
	int spf_aligned, dkim_aligned;
	int org_fallback;           /* the record is the organizational domain's */
	char from_domain[256];      /* the RFC5322.From domain (A-labels), "" if none */
	char policy_domain[256];    /* where the record was found */
	char reason[128];           /* short, for logs */
};
#endif
