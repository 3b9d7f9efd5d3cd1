/*
 * ope.c — off-policy evaluation estimators (ope.h): IPS, self-normalised IPS and doubly
 * robust with a cross-fitted per-arm mean model, their normal intervals, the effective
 * sample size and the warnings; and the parser of target policy specs.
 *
 * Two passes over the rows: the first sums what the point estimates need, the second the
 * squared deviations from them (sums of squares minus squared sums lose the variance to
 * cancellation when weights are large).
 */
#include "policies/ope.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-arm sums of one fold (or of all rows). */
typedef struct ope_fold_s {
  double sum[SY_OPE_MAX_ARMS];
  double cnt[SY_OPE_MAX_ARMS];
  double tot, totn;
} ope_fold_t;

/* Everything the two passes share. */
typedef struct ope_ctx_s {
  const sy_ope_row_t *rows;
  size_t n;
  ope_fold_t fold[2], all;
  double pi[2][SY_OPE_MAX_ARMS]; /* the target as seen by each fold's rows */
  double dm[2];                  /* sum_a pi(a) m(a) for each fold's rows */
  size_t narms;                  /* the target's */
} ope_ctx_t;

static const char *const warn_names[SY_OPE_NWARNINGS] = {
    "min_propensity", "low_ess", "few_rows", "no_support", "weights_off", "greedy_unstable"};

static const char *const warn_texts[SY_OPE_NWARNINGS] = {
    "some rows the target weighs were logged with a very small propensity: their weights "
    "dominate the estimate and its variance estimate is unreliable",
    "the effective sample size is small: the weighted rows are worth few on-policy rows and "
    "the normal interval may under-cover",
    "too few rows for the normal approximation",
    "the target puts mass on a variant the logs never chose: IPS and SNIPS cannot see it, "
    "DR covers it only with its model's fallback mean",
    "the mean weight is not 1: the logged propensities do not explain the logged choices "
    "(a logging problem, or outcomes missing more often for some variants)",
    "the two halves of the data disagree on the best variant: greedy's choice is not settled"};

/* Fills o with the defaults (ope.h). */
void sy_ope_opts_default(sy_ope_opts_t *o) {
  o->min_propensity = 0.01;
  o->min_ess = 100;
  o->min_rows = 30;
}

/* Returns the warning's name (ope.h). */
const char *sy_ope_warning_name(unsigned bit) {
  for (unsigned k = 0; k < SY_OPE_NWARNINGS; k++)
    if (bit == 1u << k)
      return warn_names[k];
  return NULL;
}

/* Returns the warning's sentence (ope.h). */
const char *sy_ope_warning_text(unsigned bit) {
  for (unsigned k = 0; k < SY_OPE_NWARNINGS; k++)
    if (bit == 1u << k)
      return warn_texts[k];
  return NULL;
}

/* ---- parsing ---- */

static int find_name(const char *s, size_t len, const char *const *names, size_t nnames) {
  for (size_t i = 0; i < nnames; i++)
    if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
      return (int)i;
  return -1;
}

/* "a=70,b=30" into t->pi; -1 with err on any problem. */
static int parse_split(const char *s, const char *const *names, size_t nnames,
                       sy_ope_target_t *t, char *err, size_t errlen) {
  unsigned char seen[SY_OPE_MAX_ARMS] = {0};
  double total = 0;
  while (*s) {
    const char *eq = strchr(s, '=');
    const char *end = strchr(s, ',');
    if (end == NULL)
      end = s + strlen(s);
    if (eq == NULL || eq > end || eq == s) {
      snprintf(err, errlen, "--policy split: expected VARIANT=WEIGHT, got '%.*s'",
               (int)(end - s), s);
      return -1;
    }
    int a = find_name(s, (size_t)(eq - s), names, nnames);
    if (a < 0) {
      snprintf(err, errlen, "--policy split: unknown variant '%.*s'", (int)(eq - s), s);
      return -1;
    }
    if (seen[a]) {
      snprintf(err, errlen, "--policy split: variant '%s' given twice", names[a]);
      return -1;
    }
    seen[a] = 1;
    char num[64];
    size_t nl = (size_t)(end - eq - 1);
    char *stop = NULL;
    if (nl == 0 || nl >= sizeof num) {
      snprintf(err, errlen, "--policy split: bad weight for '%s'", names[a]);
      return -1;
    }
    memcpy(num, eq + 1, nl);
    num[nl] = 0;
    double w = strtod(num, &stop);
    if (*stop != 0 || !isfinite(w) || w < 0) {
      snprintf(err, errlen, "--policy split: weight of '%s' must be a number >= 0, got '%s'",
               names[a], num);
      return -1;
    }
    t->pi[a] = w;
    total += w;
    s = *end ? end + 1 : end;
  }
  if (!(total > 0) || !isfinite(total)) {
    snprintf(err, errlen, "--policy split: the weights must sum to more than 0");
    return -1;
  }
  for (size_t a = 0; a < nnames; a++)
    t->pi[a] /= total;
  return 0;
}

/* Parses a target spec (ope.h). */
int sy_ope_target_parse(const char *spec, const char *const *names, size_t nnames,
                        sy_ope_target_t *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  if (err && errlen)
    err[0] = 0;
  if (nnames == 0 || nnames > SY_OPE_MAX_ARMS) {
    snprintf(err, errlen, "--policy: the experiment has %zu variants (1..%d supported)", nnames,
             SY_OPE_MAX_ARMS);
    return -1;
  }
  t->narms = nnames;
  if (strcmp(spec, "uniform") == 0) {
    t->kind = SY_OPE_UNIFORM;
    for (size_t a = 0; a < nnames; a++)
      t->pi[a] = 1.0 / (double)nnames;
    return 0;
  }
  if (strcmp(spec, "greedy") == 0) {
    t->kind = SY_OPE_GREEDY;
    return 0;
  }
  if (strncmp(spec, "always:", 7) == 0) {
    int a = find_name(spec + 7, strlen(spec + 7), names, nnames);
    if (a < 0) {
      snprintf(err, errlen, "--policy always: unknown variant '%s'", spec + 7);
      return -1;
    }
    t->kind = SY_OPE_ALWAYS;
    t->pi[a] = 1;
    return 0;
  }
  if (strncmp(spec, "split:", 6) == 0) {
    t->kind = SY_OPE_SPLIT;
    return parse_split(spec + 6, names, nnames, t, err, errlen);
  }
  snprintf(err, errlen,
           "--policy: unknown policy '%s' (uniform, always:V, split:V=W,..., greedy)", spec);
  return -1;
}

/* ---- estimation ---- */

/* Fold mean of arm a; the fold's overall mean when it has no row of a; 0 when empty. */
static double fold_mean(const ope_fold_t *f, size_t a) {
  if (f->cnt[a] > 0)
    return f->sum[a] / f->cnt[a];
  return f->totn > 0 ? f->tot / f->totn : 0;
}

/* The target arm with the best mean in f (ties: the lowest index); 0 if f has none. */
static size_t best_arm(const ope_fold_t *f, size_t narms, int minimise) {
  size_t best = 0;
  int found = 0;
  double bv = 0;
  for (size_t a = 0; a < narms; a++) {
    if (!(f->cnt[a] > 0))
      continue;
    double v = f->sum[a] / f->cnt[a];
    if (!found || (minimise ? v < bv : v > bv)) {
      best = a;
      bv = v;
      found = 1;
    }
  }
  return best;
}

static void fold_add(ope_fold_t *f, size_t a, double r) {
  f->sum[a] += r;
  f->cnt[a] += 1;
  f->tot += r;
  f->totn += 1;
}

static sy_ope_est_t est(double v, double se) {
  return (sy_ope_est_t){v, se, v - SY_OPE_Z95 * se, v + SY_OPE_Z95 * se};
}

/* Fills c->pi and c->dm for both folds, and the greedy choices into out. */
static void set_target(ope_ctx_t *c, const sy_ope_target_t *t, sy_ope_result_t *out) {
  for (int f = 0; f < 2; f++) {
    if (t->kind == SY_OPE_GREEDY) {
      out->greedy_fold[f] = best_arm(&c->fold[1 - f], t->narms, t->minimise);
      c->pi[f][out->greedy_fold[f]] = 1;
    } else {
      memcpy(c->pi[f], t->pi, t->narms * sizeof(double));
    }
    c->dm[f] = 0;
    for (size_t a = 0; a < t->narms; a++)
      c->dm[f] += c->pi[f][a] * fold_mean(&c->fold[1 - f], a);
  }
  if (t->kind == SY_OPE_GREEDY) {
    out->greedy_arm = best_arm(&c->all, t->narms, t->minimise);
    if (c->n >= 2 && out->greedy_fold[0] != out->greedy_fold[1])
      out->warnings |= SY_OPE_W_GREEDY_UNSTABLE;
  }
}

/* Row i's weight, IPS term and DR term. */
static void row_terms(const ope_ctx_t *c, size_t i, double *w, double *ips, double *dr) {
  const sy_ope_row_t *r = &c->rows[i];
  int f = (int)(i % 2);
  double pi = r->arm < c->narms ? c->pi[f][r->arm] : 0;
  *w = pi / r->p;
  *ips = *w * r->r;
  *dr = c->dm[f] + *w * (r->r - fold_mean(&c->fold[1 - f], r->arm));
}

static int check_rows(const sy_ope_row_t *rows, size_t n, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (rows[i].arm >= SY_OPE_MAX_ARMS) {
      snprintf(err, errlen, "row %zu: arm %zu out of range", i, rows[i].arm);
      return -1;
    }
    if (!(rows[i].p > 0 && rows[i].p <= 1)) {
      snprintf(err, errlen, "row %zu: propensity %g not in (0, 1]", i, rows[i].p);
      return -1;
    }
    if (!isfinite(rows[i].r)) {
      snprintf(err, errlen, "row %zu: reward is not finite", i);
      return -1;
    }
  }
  return 0;
}

static void set_nan(sy_ope_result_t *out) {
  sy_ope_est_t nan_est = {NAN, NAN, NAN, NAN};
  out->ips = out->snips = out->dr = out->logged = nan_est;
  out->min_p = NAN;
  out->mean_w = NAN;
}

/* The warnings that depend on the sums (ope.h). */
static void set_warnings(const ope_ctx_t *c, const sy_ope_opts_t *o, double se_w,
                         sy_ope_result_t *out) {
  if (!isnan(out->min_p) && out->min_p < o->min_propensity)
    out->warnings |= SY_OPE_W_MIN_PROPENSITY;
  if (out->ess < o->min_ess)
    out->warnings |= SY_OPE_W_LOW_ESS;
  for (size_t a = 0; a < c->narms; a++)
    if ((c->pi[0][a] > 0 || c->pi[1][a] > 0) && !(c->all.cnt[a] > 0)) {
      out->warnings |= SY_OPE_W_NO_SUPPORT;
      out->nosupport_arm = a;
      break;
    }
  double off = fabs(out->mean_w - 1);
  if (!(out->warnings & SY_OPE_W_NO_SUPPORT) && off > 0.05 && off > 3 * se_w)
    out->warnings |= SY_OPE_W_WEIGHTS_OFF;
}

/* Evaluates t on rows (ope.h). */
int sy_ope_evaluate(const sy_ope_row_t *rows, size_t n, const sy_ope_target_t *t,
                    const sy_ope_opts_t *o, sy_ope_result_t *out, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = 0;
  memset(out, 0, sizeof *out);
  if (t->narms == 0 || t->narms > SY_OPE_MAX_ARMS) {
    snprintf(err, errlen, "target has %zu arms (1..%d supported)", t->narms, SY_OPE_MAX_ARMS);
    return -1;
  }
  if (check_rows(rows, n, err, errlen) < 0)
    return -1;
  set_nan(out);
  out->n = n;
  ope_ctx_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  c->rows = rows;
  c->n = n;
  c->narms = t->narms;
  for (size_t i = 0; i < n; i++) {
    fold_add(&c->fold[i % 2], rows[i].arm, rows[i].r);
    fold_add(&c->all, rows[i].arm, rows[i].r);
  }
  set_target(c, t, out);
  double sw = 0, sw2 = 0, swr = 0, sips = 0, sdr = 0, sr = 0;
  for (size_t i = 0; i < n; i++) {
    double w, ips, dr;
    row_terms(c, i, &w, &ips, &dr);
    sw += w;
    sw2 += w * w;
    swr += w * rows[i].r;
    sips += ips;
    sdr += dr;
    sr += rows[i].r;
    if (w > out->max_w)
      out->max_w = w;
    if (w > 0 && (isnan(out->min_p) || rows[i].p < out->min_p))
      out->min_p = rows[i].p;
  }
  out->sum_w = sw;
  out->ess = sw2 > 0 ? sw * sw / sw2 : 0;
  double dn = (double)n;
  double v_ips = sips / dn, v_dr = sdr / dn, v_r = sr / dn;
  double v_sn = sw > 0 ? swr / sw : NAN;
  out->mean_w = sw / dn;
  double q_ips = 0, q_dr = 0, q_r = 0, q_sn = 0, q_w = 0;
  for (size_t i = 0; i < n; i++) {
    double w, ips, dr;
    row_terms(c, i, &w, &ips, &dr);
    q_ips += (ips - v_ips) * (ips - v_ips);
    q_dr += (dr - v_dr) * (dr - v_dr);
    q_r += (rows[i].r - v_r) * (rows[i].r - v_r);
    q_w += (w - out->mean_w) * (w - out->mean_w);
    if (sw > 0)
      q_sn += w * w * (rows[i].r - v_sn) * (rows[i].r - v_sn);
  }
  /* Sample variances (n - 1); with one row they are undefined and se is NaN. */
  double vden = n > 1 ? dn - 1 : NAN;
  if (n > 0) {
    out->ips = est(v_ips, sqrt(q_ips / vden / dn));
    out->dr = est(v_dr, sqrt(q_dr / vden / dn));
    out->logged = est(v_r, sqrt(q_r / vden / dn));
    out->snips = est(v_sn, sw > 0 ? sqrt(q_sn) / sw : NAN);
  }
  if (n < o->min_rows || n == 0)
    out->warnings |= SY_OPE_W_FEW_ROWS;
  if (n > 0)
    set_warnings(c, o, sqrt(q_w / vden / dn), out);
  free(c);
  return 0;
}
