/* main.c: the orrery binary — one executable, one subcommand per component
 * (see cli.c for the dispatch and each component's cmd.c for its command). */
#include "cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
