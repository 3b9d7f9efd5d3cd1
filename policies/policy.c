/*
 * policy.c — the parts every policy shares: the arrays of the common header, validation of
 * totals and active sets, and the public wrappers around the vtable.
 *
 * The wrappers keep one rule: a policy's state changes only through vt->update, which gets
 * the complete totals and the complete active set. set_active and add therefore build the
 * new state in scratch space on the stack and hand it over whole; a policy never sees a
 * half-changed state and can reject it without having touched anything.
 */
#include "policies/policy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Allocates the policy and its shared arrays; all arms start active with zero totals. */
sy_policy_t *sy__policy_alloc(size_t size, const sy_policy_vtable_t *vt, size_t narms) {
  if (narms == 0 || narms > SY_POLICY_MAX_ARMS || size < sizeof(sy_policy_t))
    return NULL;
  sy_policy_t *p = calloc(1, size);
  if (p == NULL)
    return NULL;
  p->vt = vt;
  p->narms = narms;
  p->nactive = narms;
  p->active = malloc(narms);
  p->stats = calloc(narms, sizeof *p->stats);
  p->prop = calloc(narms, sizeof *p->prop);
  if (p->active == NULL || p->stats == NULL || p->prop == NULL) {
    sy__policy_free(p);
    return NULL;
  }
  memset(p->active, 1, narms);
  return p;
}

/* Frees what sy__policy_alloc allocated. */
void sy__policy_free(sy_policy_t *p) {
  if (p == NULL)
    return;
  free(p->active);
  free(p->stats);
  free(p->prop);
  free(p);
}

/* 1 if s is a usable total: finite, non-negative, and (binary) successes within n. */
static int valid_stats(const sy_arm_stats_t *s, int binary) {
  if (!isfinite(s->n) || !isfinite(s->sum) || s->n < 0)
    return 0;
  if (binary)
    return s->sum >= 0 && s->sum <= s->n;
  return isfinite(s->sumsq) && s->sumsq >= 0;
}

/* Validates, then stores totals and active flags; see policy.h for the return values. */
int sy__policy_store(sy_policy_t *p, const sy_arm_stats_t *totals, const unsigned char *active,
                     int binary) {
  size_t nactive = 0;
  for (size_t i = 0; i < p->narms; i++) {
    if (!valid_stats(&totals[i], binary))
      return -1;
    nactive += active[i] != 0;
  }
  if (nactive == 0)
    return -1;
  int changed = memcmp(p->stats, totals, p->narms * sizeof *totals) != 0 ||
                memcmp(p->active, active, p->narms) != 0;
  /* memmove: the caller may pass p->stats or p->active themselves. */
  memmove(p->stats, totals, p->narms * sizeof *totals);
  for (size_t i = 0; i < p->narms; i++)
    p->active[i] = active[i] != 0;
  p->nactive = nactive;
  return changed;
}

/* Sets new totals with the current active set (policy.h). */
int sy_policy_update(sy_policy_t *p, const sy_arm_stats_t *totals) {
  return p->vt->update(p, totals, p->active);
}

/* Adds increments to the stored totals and updates with the sum (policy.h). */
int sy_policy_add(sy_policy_t *p, const sy_arm_stats_t *increments) {
  sy_arm_stats_t sum[SY_POLICY_MAX_ARMS];
  for (size_t i = 0; i < p->narms; i++) {
    sum[i].n = p->stats[i].n + increments[i].n;
    sum[i].sum = p->stats[i].sum + increments[i].sum;
    sum[i].sumsq = p->stats[i].sumsq + increments[i].sumsq;
  }
  return p->vt->update(p, sum, p->active);
}

/* Changes one arm's active flag through vt->update, which may refuse (policy.h). */
int sy_policy_set_active(sy_policy_t *p, size_t arm, int on) {
  if (arm >= p->narms)
    return -1;
  unsigned char active[SY_POLICY_MAX_ARMS];
  memcpy(active, p->active, p->narms);
  active[arm] = on != 0;
  return p->vt->update(p, p->stats, active) < 0 ? -1 : 0;
}

/* Returns the cached propensity of arm, 0 if out of range (policy.h). */
double sy_policy_propensity(const sy_policy_t *p, size_t arm) {
  return arm < p->narms ? p->prop[arm] : 0.0;
}

/* Returns 1 if arm is in range and active (policy.h). */
int sy_policy_arm_active(const sy_policy_t *p, size_t arm) {
  return arm < p->narms && p->active[arm];
}

/* Returns the sum of n over all arms (policy.h). */
double sy_policy_observations(const sy_policy_t *p) {
  double total = 0;
  for (size_t i = 0; i < p->narms; i++)
    total += p->stats[i].n;
  return total;
}

/* Frees p through its vtable; NULL is a no-op (policy.h). */
void sy_policy_destroy(sy_policy_t *p) {
  if (p != NULL)
    p->vt->destroy(p);
}
