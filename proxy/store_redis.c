/* store_redis.c - a worker's connection to Redis (issue 17, step 2: not
 * yet built; `redis` is not a config key yet, so no store asks for it). */
#include <errno.h>
#include <stddef.h>

#include "proxy/store_req.h"

struct store_redis *store_redis_new(struct event_base *base, const struct store_config *cfg, struct store *st)
{
	errno = ENOSYS;
	return NULL;
}

void store_redis_free(struct store_redis *rd)
{
}

int store_redis_send(struct store_redis *rd, struct store_req *r)
{
	return -1;
}

int store_redis_state(const struct store_redis *rd)
{
	return 0;
}
