/* test_httpreq.c - the HTTP/1.x request head of metrics_listen */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/httpreq.h"

static enum http_parse parse(const char *s, struct http_request *r)
{
	return http_parse_request(s, strlen(s), 4096, r);
}

static void test_good(void **state)
{
	struct http_request r;
	const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: Prometheus/2.42.0\r\n\r\n";

	assert_int_equal(parse(get, &r), HTTP_DONE);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/metrics");
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.len, strlen(get));
	assert_int_equal(parse("HEAD /readyz?verbose=1 HTTP/1.0\n\n", &r), HTTP_DONE);
	assert_string_equal(r.method, "HEAD");
	assert_string_equal(r.path, "/readyz");
	assert_int_equal(r.minor, 0);
	/* a body after the head is not part of it */
	assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", &r), HTTP_DONE);
	assert_int_equal(r.len, strlen("POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n"));
}

static void test_more(void **state)
{
	struct http_request r;
	const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

	for (size_t n = 0; n < strlen(get); n++)
		assert_int_equal(http_parse_request(get, n, 4096, &r), HTTP_MORE);
	assert_int_equal(http_parse_request(get, strlen(get), 4096, &r), HTTP_DONE);
}

static void test_bad(void **state)
{
	struct http_request r;
	static const char *const bad[] = {
		"\x16\x03\x01\x00",                       /* a TLS ClientHello */
		"GET /metrics\r\n\r\n",                    /* HTTP/0.9 */
		"GET /metrics HTTP/2.0\r\n\r\n",
		"GET /metrics SMTP/1.1\r\n\r\n",
		"GET metrics HTTP/1.1\r\n\r\n",            /* not origin-form */
		"GET http://x/metrics HTTP/1.1\r\n\r\n",
		"GET  /metrics HTTP/1.1\r\n\r\n",
		"GET /me trics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nX: a\x01b\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
		"VERYLONGMETHODNAMEXX /metrics HTTP/1.1\r\n\r\n",
		"\r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(parse(bad[i], &r), HTTP_BAD);
}

static void test_too_big(void **state)
{
	struct http_request r;
	char buf[5000];

	memset(buf, 'a', sizeof buf);
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(http_parse_request(buf, 4095, 4096, &r), HTTP_MORE);
	assert_int_equal(http_parse_request(buf, 4096, 4096, &r), HTTP_TOO_BIG);
	/* a head that ends past max is too big too, whatever follows */
	memcpy(buf + 4200, "\r\n\r\n", 4);
	assert_int_equal(http_parse_request(buf, sizeof buf, 4096, &r), HTTP_TOO_BIG);
	/* a path longer than HTTP_PATH_MAX */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'p', 300);
	memcpy(buf + 305, " HTTP/1.1\r\n\r\n", 14);
	assert_int_equal(http_parse_request(buf, 319, 4096, &r), HTTP_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_more),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_too_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
