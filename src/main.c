/* main.c: the orrery binary — one executable, one subcommand per component
 * (see cli.c for the dispatch and cmd_*.c for the commands). */
#include "cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
