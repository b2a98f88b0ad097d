/* greylist.h - greylisting's pure parts: the triplet's keys, the client
 * network, the store's parameters from the config, what the store's answer
 * means for the rules. The session asks the store (session_limits.c). */
#ifndef MOAT_GREYLIST_H
#define MOAT_GREYLIST_H

#include <stddef.h>
#include <sys/socket.h>

#include "proxy/store.h"
#include "rules/facts.h"

struct config;

/* The client's network as text: its /24 for IPv4 (an IPv4-mapped IPv6
 * address counts as IPv4), its /64 for IPv6 ("192.0.2.0/24",
 * "2001:db8:1:2::/64"). 0, or -1 for another family. */
int greylist_network(const struct sockaddr *sa, char *out, size_t size);

/* The store's keys: triplet "g:NET|SENDER|RCPT" and the network's pass count
 * "ga:NET", each STORE_KEY_MAX bytes. sender and rcpt as the rules see them
 * (local part as sent, domain in A-labels), lower-cased here; the null
 * sender is "<>". A pair too long for a key is replaced by its hash (still
 * one key per pair, the same in every replica). */
void greylist_keys(const char *net, const char *sender, const char *rcpt, char triplet[STORE_KEY_MAX],
                   char client[STORE_KEY_MAX]);

/* greylist_delay and friends. */
void greylist_params(const struct config *cfg, struct store_grey_params *p);

/* The rules' word for the store's answer. */
enum rule_grey greylist_state(enum store_grey g);

#endif
