/*
 * evaluate.c — `switchyard evaluate` (evaluate.h): reads one experiment's `trace` rows in
 * time order, keeps those with a logged propensity and a reward, maps their variants onto
 * the config's (a variant the config no longer has becomes an extra arm the target never
 * chooses), runs the estimators of policies/ope.h and prints a table or JSON.
 *
 * Reward (the warehouse contract): outcome_value when present; 0 when the sweeper counted
 * the outcome missing (outcome_missing = 1); a row with neither is not used, and the report
 * says how many rows were seen and why each unused one was left out.
 */
#include "warehouse/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policies/ope.h"
#include "router/config.h"
#include "warehouse/wh_read.h"

static const char usage_eval[] =
    "usage: switchyard evaluate EXP --config FILE --from sqlite:FILE --policy P [--json]\n"
    "                           [--min-propensity X] [--min-ess N]\n"
    "\n"
    "Estimates, from the warehouse's trace rows of experiment EXP and their logged\n"
    "propensities, the mean reward the target policy P would have had: inverse\n"
    "propensity (IPS), self-normalised IPS (SNIPS) and doubly robust (DR), each with a\n"
    "95% interval, the effective sample size, and warnings when the answer is not to be\n"
    "trusted. The logged policy's own mean reward is shown for comparison.\n"
    "\n"
    "policies (over the config's variants of EXP):\n"
    "  uniform            each variant equally\n"
    "  always:V           all traffic to V\n"
    "  split:a=70,b=30    fixed weights (normalised)\n"
    "  greedy             all traffic to the best mean reward, cross-fitted: each half of\n"
    "                     the rows is judged against the best variant of the other half\n"
    "\n"
    "Sources: sqlite:FILE or postgresql://USER@HOST/DB (password from PGPASSWORD or\n"
    "~/.pgpass). Reward: outcome_value, or 0 when the outcome was counted missing; rows with no\n"
    "outcome yet are not used. Exit: 0 done, 1 nothing to evaluate or a read error,\n"
    "2 bad input.\n"
    "\n"
    "example:\n"
    "  switchyard evaluate chat --config prod.yaml --from sqlite:/var/lib/switchyard/"
    "warehouse.db --policy always:a\n";

typedef struct eval_args_s {
  const char *exp, *config, *from, *policy;
  char shown_from[512]; /* from without a password, for reports */
  int json;
  sy_ope_opts_t opts;
} eval_args_t;

/* What was read: the rows used and why the others were not. */
typedef struct eval_data_s {
  sy_ope_row_t *rows;
  size_t n, cap;
  size_t seen, no_propensity, no_outcome, bad_propensity;
  char *names[SY_OPE_MAX_ARMS]; /* the config's variants, then any others logged */
  size_t narms;
  double cnt[SY_OPE_MAX_ARMS], sum[SY_OPE_MAX_ARMS], minp[SY_OPE_MAX_ARMS];
} eval_data_t;

static int parse_double_flag(const char *flag, const char *v, double *out) {
  char *end = NULL;
  double d = strtod(v, &end);
  if (*v == 0 || *end != 0 || !isfinite(d) || d < 0) {
    fprintf(stderr, "switchyard evaluate: %s must be a number >= 0, got '%s'\n", flag, v);
    return -1;
  }
  *out = d;
  return 0;
}

/* 0 ok, 1 --help shown, 2 bad arguments (said on stderr). */
static int parse_args(int argc, char **argv, eval_args_t *a) {
  memset(a, 0, sizeof *a);
  sy_ope_opts_default(&a->opts);
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
      fputs(usage_eval, stdout);
      return 1;
    }
    if (strcmp(s, "--json") == 0) {
      a->json = 1;
      continue;
    }
    const char **dst = strcmp(s, "--config") == 0   ? &a->config
                       : strcmp(s, "--from") == 0   ? &a->from
                       : strcmp(s, "--policy") == 0 ? &a->policy
                                                    : NULL;
    int is_num = strcmp(s, "--min-propensity") == 0 || strcmp(s, "--min-ess") == 0;
    if ((dst != NULL || is_num) && v == NULL) {
      fprintf(stderr, "switchyard evaluate: %s needs a value\n", s);
      return 2;
    }
    if (dst != NULL) {
      *dst = v;
      i++;
    } else if (strcmp(s, "--min-propensity") == 0) {
      if (parse_double_flag(s, v, &a->opts.min_propensity) < 0)
        return 2;
      i++;
    } else if (strcmp(s, "--min-ess") == 0) {
      if (parse_double_flag(s, v, &a->opts.min_ess) < 0)
        return 2;
      i++;
    } else if (s[0] == '-' || a->exp != NULL) {
      fprintf(stderr, "switchyard evaluate: unknown argument '%s'\n\n%s", s, usage_eval);
      return 2;
    } else {
      a->exp = s;
    }
  }
  const char *missing = a->exp == NULL      ? "EXP (the experiment)"
                        : a->config == NULL ? "--config FILE"
                        : a->from == NULL   ? "--from sqlite:FILE"
                        : a->policy == NULL ? "--policy P"
                                            : NULL;
  if (missing != NULL) {
    fprintf(stderr, "switchyard evaluate: %s is required\n\n%s", missing, usage_eval);
    return 2;
  }
  return 0;
}

/* The arm of variant name, adding it after the config's when new; -1 when full. */
static int arm_of(eval_data_t *d, const char *name) {
  for (size_t i = 0; i < d->narms; i++)
    if (strcmp(d->names[i], name) == 0)
      return (int)i;
  if (d->narms == SY_OPE_MAX_ARMS)
    return -1;
  d->names[d->narms] = strdup(name);
  d->minp[d->narms] = INFINITY;
  return d->names[d->narms] ? (int)d->narms++ : -1;
}

static int push_row(eval_data_t *d, sy_ope_row_t r) {
  if (d->n == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 1024;
    sy_ope_row_t *nr = realloc(d->rows, cap * sizeof *nr);
    if (nr == NULL)
      return -1;
    d->rows = nr;
    d->cap = cap;
  }
  d->rows[d->n++] = r;
  d->cnt[r.arm] += 1;
  d->sum[r.arm] += r.r;
  if (r.p < d->minp[r.arm])
    d->minp[r.arm] = r.p;
  return 0;
}

/* Reads exp's rows from w into d. Returns 0, or -1 with err. */
static int read_rows(sy_whr_t *w, const char *exp, eval_data_t *d, char *err, size_t errlen) {
  sy_whr_param_t p = {0, 0, exp};
  if (sy_whr_query(w,
                  "SELECT variant, propensity, outcome_value, outcome_missing FROM trace "
                  "WHERE experiment = ? ORDER BY ts_ms, trace_id",
                  &p, 1, err, errlen) < 0)
    return -1;
  int rc;
  while ((rc = sy_whr_step(w, err, errlen)) == 1) {
    d->seen++;
    if (sy_whr_type(w, 0) == SY_WHR_NULL || sy_whr_type(w, 1) == SY_WHR_NULL) {
      d->no_propensity++; /* no request event (yet), or one logged without a propensity */
      continue;
    }
    double prop = sy_whr_real(w, 1), r;
    if (sy_whr_type(w, 2) != SY_WHR_NULL)
      r = sy_whr_real(w, 2);
    else if (sy_whr_type(w, 3) != SY_WHR_NULL && sy_whr_int(w, 3) == 1)
      r = 0;
    else {
      d->no_outcome++;
      continue;
    }
    if (!(prop > 0 && prop <= 1) || !isfinite(r)) {
      d->bad_propensity++;
      continue;
    }
    int arm = arm_of(d, sy_whr_text(w, 0));
    if (arm < 0 || push_row(d, (sy_ope_row_t){(size_t)arm, prop, r}) < 0) {
      snprintf(err, errlen, "too many variants or out of memory");
      return -1;
    }
  }
  return rc;
}

static void data_free(eval_data_t *d) {
  for (size_t i = 0; i < d->narms; i++)
    free(d->names[i]);
  free(d->rows);
}

/* ---- reports ---- */

/* The target's weight on arm a as the report shows it (greedy: the all-rows choice). */
static double shown_pi(const sy_ope_target_t *t, const sy_ope_result_t *r, size_t a) {
  if (a >= t->narms)
    return 0;
  if (t->kind == SY_OPE_GREEDY)
    return a == r->greedy_arm ? 1 : 0;
  return t->pi[a];
}

static json_t *jnum(double v) {
  return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jest(const sy_ope_est_t *e) {
  return json_pack("{s:o,s:o,s:o,s:o}", "value", jnum(e->value), "se", jnum(e->se), "lo",
                   jnum(e->lo), "hi", jnum(e->hi));
}

static void print_json(const eval_args_t *a, const eval_data_t *d, const sy_ope_target_t *t,
                       const sy_ope_result_t *r) {
  json_t *vars = json_array();
  for (size_t i = 0; i < d->narms; i++)
    json_array_append_new(
        vars, json_pack("{s:s,s:b,s:I,s:o,s:o,s:f}", "variant", d->names[i], "in_config",
                        i < t->narms, "rows", (json_int_t)d->cnt[i],
                        "mean_reward", jnum(d->cnt[i] > 0 ? d->sum[i] / d->cnt[i] : NAN),
                        "min_propensity", jnum(d->cnt[i] > 0 ? d->minp[i] : NAN),
                        "target_pi", shown_pi(t, r, i)));
  json_t *warn = json_array();
  for (unsigned k = 0; k < SY_OPE_NWARNINGS; k++)
    if (r->warnings & (1u << k))
      json_array_append_new(warn, json_pack("{s:s,s:s}", "name", sy_ope_warning_name(1u << k),
                                            "text", sy_ope_warning_text(1u << k)));
  json_t *o = json_pack(
      "{s:s,s:s,s:s,s:{s:I,s:I,s:I,s:I,s:I},s:o,s:{s:o,s:o,s:o,s:o},s:o,s:o,s:o,s:o,s:o,s:o}",
      "experiment", a->exp, "policy", a->policy, "from", a->shown_from, "rows", "seen",
      (json_int_t)d->seen, "used", (json_int_t)d->n, "no_outcome", (json_int_t)d->no_outcome,
      "no_propensity", (json_int_t)d->no_propensity, "bad_propensity",
      (json_int_t)d->bad_propensity, "variants", vars, "estimates", "ips", jest(&r->ips),
      "snips", jest(&r->snips), "dr", jest(&r->dr), "logged", jest(&r->logged), "ess",
      jnum(r->ess), "sum_w", jnum(r->sum_w), "mean_w", jnum(r->mean_w), "max_w", jnum(r->max_w),
      "min_propensity", jnum(r->min_p), "warnings", warn);
  if (t->kind == SY_OPE_GREEDY)
    json_object_set_new(o, "greedy",
                        json_pack("{s:s,s:[s,s]}", "choice", d->names[r->greedy_arm],
                                  "fold_choices", d->names[r->greedy_fold[0]],
                                  d->names[r->greedy_fold[1]]));
  json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  fputc('\n', stdout);
  json_decref(o);
}

static void print_est(const char *name, const sy_ope_est_t *e, const char *note) {
  printf("  %-8s %10.4f   [%8.4f, %8.4f]  %8.4f%s%s\n", name, e->value, e->lo, e->hi, e->se,
         note[0] ? "  " : "", note);
}

static void print_text(const eval_args_t *a, const eval_data_t *d, const sy_ope_target_t *t,
                       const sy_ope_result_t *r) {
  printf("experiment %s, target policy %s, from %s\n", a->exp, a->policy, a->shown_from);
  printf("rows: %zu used of %zu seen (%zu without an outcome yet, %zu without a propensity, "
         "%zu with a propensity outside (0, 1])\n\n",
         d->n, d->seen, d->no_outcome, d->no_propensity, d->bad_propensity);
  printf("  %-10s %8s %12s %10s %10s\n", "variant", "rows", "mean reward", "min p", "target pi");
  for (size_t i = 0; i < d->narms; i++) {
    printf("  %-10s %8.0f %12.4f %10.4g %10.4g%s\n", d->names[i], d->cnt[i],
           d->cnt[i] > 0 ? d->sum[i] / d->cnt[i] : NAN, d->cnt[i] > 0 ? d->minp[i] : NAN,
           shown_pi(t, r, i), i < t->narms ? "" : "  (not in the config)");
  }
  if (t->kind == SY_OPE_GREEDY)
    printf("\ngreedy chooses %s on all rows; the halves were judged against %s and %s\n",
           d->names[r->greedy_arm], d->names[r->greedy_fold[0]], d->names[r->greedy_fold[1]]);
  printf("\n  %-8s %10s   %-20s  %8s\n", "estimator", "estimate", "95% interval", "se");
  print_est("IPS", &r->ips, "");
  print_est("SNIPS", &r->snips, "");
  print_est("DR", &r->dr, "");
  print_est("logged", &r->logged, "(the logging policy's own mean reward)");
  printf("\neffective sample size %.1f of %zu rows (sum of weights %.4g, mean weight %.4f, "
         "largest weight %.4g)\n",
         r->ess, r->n, r->sum_w, r->mean_w, r->max_w);
  printf("smallest propensity among rows the target weighs: %.4g\n", r->min_p);
  if (r->warnings == 0) {
    printf("warnings: none\n");
    return;
  }
  printf("warnings:\n");
  for (unsigned k = 0; k < SY_OPE_NWARNINGS; k++)
    if (r->warnings & (1u << k)) {
      printf("  %s: %s", sy_ope_warning_name(1u << k), sy_ope_warning_text(1u << k));
      if ((1u << k) == SY_OPE_W_NO_SUPPORT)
        printf(" (variant %s)", d->names[r->nosupport_arm]);
      if ((1u << k) == SY_OPE_W_LOW_ESS)
        printf(" (ESS %.1f < %g)", r->ess, a->opts.min_ess);
      if ((1u << k) == SY_OPE_W_MIN_PROPENSITY)
        printf(" (%.4g < %g)", r->min_p, a->opts.min_propensity);
      putchar('\n');
    }
}

/* Loads the config, finds EXP and parses the policy over its variants; 0 or 2 (said). */
static int setup(const eval_args_t *a, sy_config_t **cfg, eval_data_t *d, sy_ope_target_t *t) {
  char err[1024];
  if (sy_config_load(a->config, cfg, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard evaluate: --config: %s\n", err);
    return 2;
  }
  const sy_experiment_conf_t *e = NULL;
  for (size_t i = 0; i < (*cfg)->nexperiments; i++)
    if (strcmp((*cfg)->experiments[i].id, a->exp) == 0)
      e = &(*cfg)->experiments[i];
  if (e == NULL) {
    fprintf(stderr, "switchyard evaluate: unknown experiment '%s' (not in %s)\n", a->exp,
            a->config);
    return 2;
  }
  if (e->nvariants > SY_OPE_MAX_ARMS) {
    fprintf(stderr, "switchyard evaluate: %s has too many variants\n", a->exp);
    return 2;
  }
  const char *names[SY_OPE_MAX_ARMS];
  for (size_t i = 0; i < e->nvariants; i++) {
    names[i] = e->variants[i].id;
    if (arm_of(d, names[i]) < 0)
      return 2;
  }
  if (sy_ope_target_parse(a->policy, names, e->nvariants, t, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard evaluate: %s\n", err);
    return 2;
  }
  t->minimise = e->outcome.minimise;
  return 0;
}

/* The command (evaluate.h). */
int sy_evaluate_main(int argc, char **argv) {
  eval_args_t a;
  int rc = parse_args(argc, argv, &a);
  if (rc != 0)
    return rc == 1 ? 0 : rc;
  sy_whr_redact_url(a.from, a.shown_from, sizeof a.shown_from);
  sy_config_t *cfg = NULL;
  eval_data_t *d = calloc(1, sizeof *d);
  sy_ope_target_t *t = calloc(1, sizeof *t);
  sy_whr_t *w = NULL;
  char err[1024];
  if (d == NULL || t == NULL) {
    fprintf(stderr, "switchyard evaluate: out of memory\n");
    rc = 1;
    goto out;
  }
  if ((rc = setup(&a, &cfg, d, t)) != 0)
    goto out;
  if (sy_whr_open(a.from, &w, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard evaluate: %s\n", err);
    rc = 2;
    goto out;
  }
  if (read_rows(w, a.exp, d, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard evaluate: %s: %s\n", a.shown_from, err);
    rc = 1;
    goto out;
  }
  if (d->n == 0) {
    fprintf(stderr,
            "switchyard evaluate: no usable row of experiment '%s' in %s (%zu seen: %zu "
            "without an outcome, %zu without a propensity, %zu with a bad propensity)\n",
            a.exp, a.shown_from, d->seen, d->no_outcome, d->no_propensity, d->bad_propensity);
    rc = 1;
    goto out;
  }
  sy_ope_result_t r;
  if (sy_ope_evaluate(d->rows, d->n, t, &a.opts, &r, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard evaluate: %s\n", err);
    rc = 1;
    goto out;
  }
  if (a.json)
    print_json(&a, d, t, &r);
  else
    print_text(&a, d, t, &r);
  rc = 0;
out:
  sy_whr_close(w);
  if (d != NULL)
    data_free(d);
  free(d);
  free(t);
  if (cfg != NULL)
    sy_config_free(cfg);
  return rc;
}
