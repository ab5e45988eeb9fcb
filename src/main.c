/* main.c: the orrery binary (placeholder until the CLI lands). */
#include <stdio.h>

#include "base.h"

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("orrery %s\n", ORRERY_VERSION);
  return 0;
}
