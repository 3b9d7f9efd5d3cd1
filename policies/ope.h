/*
 * ope.h — off-policy evaluation: what a target policy would have earned, estimated from
 * rows logged under another (the router's) policy, with the logged propensities. Pure: no
 * I/O, no clock; evaluate allocates only its own scratch (per-arm sums, bounded by
 * SY_OPE_MAX_ARMS) and frees it before returning.
 *
 * A row is (arm a_i, propensity p_i of the logged arm, reward r_i). The target pi is
 * context-free: pi(a) for each arm. With w_i = pi(a_i) / p_i and n rows:
 *
 *   IPS    V = (1/n) sum w_i r_i;          se^2 = sample variance of w_i r_i / n
 *   SNIPS  V = sum w_i r_i / sum w_i;      se^2 = sum w_i^2 (r_i - V)^2 / (sum w_i)^2
 *                                          (delta method for the ratio)
 *   DR     V = (1/n) sum d_i,  d_i = sum_a pi(a) m(a) + w_i (r_i - m(a_i));
 *                                          se^2 = sample variance of d_i / n
 *   logged V = (1/n) sum r_i                (the logging policy's own value, on-policy)
 *
 * Each with a 95% interval V +/- 1.959964 se (normal approximation). m(a) is the mean reward
 * of arm a, cross-fitted: rows are split in two folds by position (even and odd rows in the
 * caller's order, time order in practice, so that both folds span the whole period) and row
 * i's m comes from the other fold only, so that a row's own reward never enters its own
 * correction term. An arm with no row in the other fold takes that fold's overall mean.
 *
 * greedy: all mass on the arm with the best estimated mean. Chosen on the same data it is
 * judged on, its value would be biased upwards (the winner's curse: the arm that looks best
 * is partly the one that got lucky). So it is cross-fitted too: fold f's rows are judged
 * against the arm that is best in the other fold's means; the estimate is the value of "the
 * greedy choice learned from half of the data", which is what an honest out-of-sample answer
 * can be. greedy_arm is the choice on all rows (what deploying greedy would pick), and the
 * two folds' choices are reported; when they differ, SY_OPE_W_GREEDY_UNSTABLE is set.
 *
 * Effective sample size ESS = (sum w)^2 / sum w^2: how many rows of an on-policy sample the
 * weighted rows are worth. The warnings (sy_ope_warning_name) say when the answer should not
 * be trusted: propensities below min_propensity (heavy weights, unstable variance
 * estimates), ESS below min_ess (the normal approximation is doubtful), too few rows, mass
 * on an arm never logged (IPS and SNIPS cannot see it: they are biased towards 0 or ignore
 * it; only DR's model term covers it, with a fallback mean), and a mean weight far from 1
 * (the logged propensities do not explain the logged choices: a logging bug or rows missing
 * non-randomly, e.g. outcomes reported more often for one arm).
 *
 * Errors: 0 on success, -1 with a message in err (never NULL: at least "").
 */
#ifndef SY_OPE_H
#define SY_OPE_H

#include <stddef.h>

/* The most arms one evaluation handles (target arms plus arms seen only in the logs). */
#define SY_OPE_MAX_ARMS 256

/* z for a two-sided 95% normal interval. */
#define SY_OPE_Z95 1.959963984540054

typedef struct sy_ope_row_s {
  size_t arm; /* index; arms >= the target's narms get pi = 0 (e.g. a retired variant) */
  double p;   /* logged propensity of arm, in (0, 1] */
  double r;   /* reward */
} sy_ope_row_t;

typedef enum {
  SY_OPE_UNIFORM = 0, /* pi = 1/narms on each target arm */
  SY_OPE_ALWAYS,      /* pi = 1 on one arm */
  SY_OPE_SPLIT,       /* fixed weights, normalised */
  SY_OPE_GREEDY,      /* all mass on the best estimated mean (cross-fitted, above) */
} sy_ope_kind_t;

typedef struct sy_ope_target_s {
  sy_ope_kind_t kind;
  size_t narms;               /* the target's arms are 0 .. narms-1 */
  double pi[SY_OPE_MAX_ARMS]; /* for UNIFORM, ALWAYS, SPLIT; sums to 1 */
  int minimise;               /* greedy: the best mean is the smallest */
} sy_ope_target_t;

typedef struct sy_ope_opts_s {
  double min_propensity; /* warn below; default 0.01 */
  double min_ess;        /* warn below; default 100 */
  size_t min_rows;       /* warn below; default 30 */
} sy_ope_opts_t;

typedef struct sy_ope_est_s {
  double value, se, lo, hi; /* NaN when undefined (e.g. SNIPS with sum w = 0) */
} sy_ope_est_t;

enum {
  SY_OPE_W_MIN_PROPENSITY = 1u << 0, /* a row the target weighs has p < min_propensity */
  SY_OPE_W_LOW_ESS = 1u << 1,        /* ESS < min_ess */
  SY_OPE_W_FEW_ROWS = 1u << 2,       /* n < min_rows */
  SY_OPE_W_NO_SUPPORT = 1u << 3,     /* the target puts mass on an arm with no row */
  SY_OPE_W_WEIGHTS_OFF = 1u << 4,    /* mean weight is not 1 within 3 se (and by > 0.05) */
  SY_OPE_W_GREEDY_UNSTABLE = 1u << 5 /* the two folds' greedy choices differ */
};
#define SY_OPE_NWARNINGS 6

typedef struct sy_ope_result_s {
  sy_ope_est_t ips, snips, dr, logged;
  size_t n;              /* rows used */
  double ess;            /* (sum w)^2 / sum w^2; 0 when sum w = 0 */
  double sum_w, mean_w;  /* sum of weights, and sum / n (1 in expectation under full support) */
  double max_w;          /* the largest weight */
  double min_p;          /* the smallest propensity among rows with pi(a_i) > 0; NaN if none */
  unsigned warnings;     /* SY_OPE_W_* bits */
  size_t nosupport_arm;  /* the first target arm with pi > 0 and no row (NO_SUPPORT) */
  size_t greedy_arm;     /* greedy: the best arm on all rows */
  size_t greedy_fold[2]; /* greedy: the arm each fold is judged against */
} sy_ope_result_t;

/* Fills o with the defaults above. */
void sy_ope_opts_default(sy_ope_opts_t *o);

/*
 * Parses a target policy: "uniform", "always:V", "split:V=W,V=W,..." (weights >= 0, finite,
 * normalised; at least one > 0; a variant at most once; unnamed variants get 0) or "greedy",
 * over the arms named names[0 .. nnames-1]. Returns 0 and fills t (minimise = 0; the caller
 * sets it), or -1 with err naming the problem (an unknown variant, a bad weight, ...).
 */
int sy_ope_target_parse(const char *spec, const char *const *names, size_t nnames,
                        sy_ope_target_t *t, char *err, size_t errlen);

/*
 * Evaluates target t on rows[0 .. n-1] (the order defines the folds: give them in time
 * order). Every row must have arm < SY_OPE_MAX_ARMS, p in (0, 1] and a finite r; returns -1
 * with err otherwise, or when t is malformed (narms 0 or > SY_OPE_MAX_ARMS). n = 0 is not an
 * error: every estimate is NaN and FEW_ROWS is set. Fills out on success.
 */
int sy_ope_evaluate(const sy_ope_row_t *rows, size_t n, const sy_ope_target_t *t,
                    const sy_ope_opts_t *o, sy_ope_result_t *out, char *err, size_t errlen);

/* The warning's short name ("min_propensity", "low_ess", ...), bit as SY_OPE_W_*; NULL for
 * anything else. */
const char *sy_ope_warning_name(unsigned bit);

/* One sentence saying what the warning means, for people; NULL as above. */
const char *sy_ope_warning_text(unsigned bit);

#endif
