/* replay.h - "moat replay": the transactions of record_dir judged again */
#ifndef MOAT_REPLAY_H
#define MOAT_REPLAY_H

/* argv[0] is "replay". Returns the exit status. */
int replay_main(int argc, char **argv, const char *default_config);

#endif
