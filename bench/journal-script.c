/*
 * journal-script.c — prints the journal's Lua script (stats/scripts.h, SY_LUA_JOURNAL)
 * exactly as the router loads it, for bench/journal-ablate.
 */
#include <stdio.h>

#include "stats/scripts.h"

int main(void) {
  fputs(SY_LUA_JOURNAL, stdout);
  return 0;
}
