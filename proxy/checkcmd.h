/* checkcmd.h - "moat check": explain what moat would decide for a transaction */
#ifndef MOAT_CHECKCMD_H
#define MOAT_CHECKCMD_H

/* argv[0] is "check". Returns the exit status. */
int check_main(int argc, char **argv, const char *default_config);

#endif
