/*
 * gate.h — the statistics that promote or roll back a candidate variant against the control,
 * valid however often they are looked at. Pure: sufficient statistics in, a decision and the
 * numbers behind it out; no I/O, no allocation, no clock (the caller passes the data's age).
 *
 * What sy_gate_evaluate checks, in order (the first that fires decides):
 *   1. halts: parameters invalid ("config"), an arm missing or the data's age unknown
 *      ("missing"), older than max_age_ms ("stale"), statistics NaN, negative or inconsistent
 *      ("invalid:control", "invalid:candidate"). A halt never promotes.
 *   2. sample-ratio mismatch ("srm", a halt): Lindon & Malek's Dirichlet-multinomial test of
 *      the requests per arm against the intended shares (seqtest.h), level alpha_srm.
 *   3. guardrails, each a one-sided sequential test at alpha_guard / (guardrails on), and a
 *      breach is a roll back ("guardrail:latency_p95", "guardrail:error_rate",
 *      "guardrail:tokens"). A guardrail fails only once its sequence is sure of the breach.
 *   4. the outcome: an asymptotic confidence sequence (seqtest.h) on delta = candidate mean -
 *      control mean, level alpha, once both arms have min_n outcomes. Promote when the whole
 *      sequence is on the better side of 0 ("outcome:better"), roll back when it is all on the
 *      worse side ("outcome:worse"), else continue ("outcome:inconclusive", "min_samples",
 *      "outcome:no_variance" — both arms constant, nothing to test).
 *
 * Estimates. Each arm carries weighted sums, so one formula serves plain means (w = 1) and
 * inverse-propensity-weighted Hajek means (w = 1/propensity, when the allocation moves):
 *     m = swy / sw,    Var(m) ~ (sw2y2 - 2 m sw2y + m^2 sw2) / sw^2    (delta method),
 * with w = 1 the mean and s^2/n (s^2 with divisor n). The outcome test uses
 * delta = m_cand - m_ctl, V = Var(m_cand) + Var(m_ctl), N = n_ctl + n_cand.
 *
 * The outcome sequence. With promote_share = 0.5 it is the symmetric two-sided sequence of
 * Waudby-Smith et al. 2021 (seqtest.h), as GrowthBook computes it:
 *     half-width = sqrt(V) z2(N rho^2, alpha)
 *                = sqrt(V N) sqrt(2 (N rho^2 + 1) / (N^2 rho^2) log(sqrt(N rho^2 + 1) / alpha))
 * with rho = sy_seq_rho(tuning_n, alpha). Otherwise alpha is split between its two ends: the
 * end whose crossing promotes is a one-sided (half-normal mixture) sequence at
 * promote_share x alpha, the end whose crossing rolls back one at the rest, each with rho
 * tuned at twice its level. By the union bound P(any false decision, ever) <= alpha still.
 *
 * The tuning sample size. rho puts the narrowest point of the sequence at N = tuning_n
 * (total over both arms).
 *
 * The defaults, promote_share 0.9 (promotion at 0.045, roll back at 0.005) and tuning_n
 * 12,000, come from bench/gate-sim and the targets: A/A false decisions <= 3.5%
 * (looks every 20 users per arm up to 50,000 per arm), median stop <= 3,400 per arm for a
 * rate of 0.10 -> 0.12, power >= 0.55 by 14,760 per arm for 0.10 -> 0.11. What it measured
 * (10,000 runs each, binary A/A; standard errors ~0.2% on rates):
 *     promote_share  tuning_n   A/A     median stop 0.12   power 0.11 at 14,760
 *     0.5            7,000      3.59%   3,720              0.516
 *     0.5            14,000     3.27%   3,900              0.533
 *     0.8            10,000     3.52%   3,340              0.603
 *     0.9            12,000     3.41%   3,300              0.627
 * At the defaults the worst of the three A/A scenarios (binary, log-normal, delayed and
 * merged) is 3.42% with --seed 1 and 3.52% with --seed 2: the A/A target holds only to
 * within Monte Carlo error, at this tuning_n or any other that keeps the median <= 3,400.
 * The symmetric sequence meets neither power target at any tuning_n (median never below
 * ~3,700, near tuning_n 4,000; power never above ~0.53, near 20,000): it spends half of
 * alpha guarding against false roll backs. The realised A/A rate is set by alpha and
 * tuning_n (about 0.7 alpha here: the horizon ends before the mixture spends all of alpha),
 * hardly by the split, so moving alpha to the promoting end buys speed at no cost on that
 * count: at their narrowest the promoting end is 7% below the symmetric sequence's (z 2.81
 * against 3.04). The price is a slower roll back on the outcome (harm_008 in bench/gate-sim:
 * median 4,540 per arm for 0.10 -> 0.08): that end, one-sided at 0.005, is 18% wider (z 3.57).
 * Harm that needs a fast roll back (latency, errors, tokens) is the guardrails' job, and
 * they are untouched by this. A larger tuning_n lowers the A/A rate and slows big
 * effects; promote_share 0.5 restores the symmetric sequence.
 *
 * Guardrails (0 in a threshold turns it off):
 *   - latency p95: breached when the candidate's p95 > lat_p95_ratio_max x the control's.
 *     Equivalently, more than 5% of candidate requests are slower than the cutoff
 *     ratio x (control p95). The test statistic is the fraction f of candidate requests above
 *     that cutoff minus 0.05, breached when its one-sided lower bound is > 0; p95 and f come
 *     from the histograms' survival curves (lathist.h: a monotone cubic through the bucket
 *     bounds in log-log space, because the buckets are much coarser than 1.2x). Its variance
 *     counts both samples: f(1-f)/n_cand for the candidate's fraction, plus, because the
 *     cutoff is itself estimated from the control, kappa^2 * 0.05*0.95/n_ctl (Bahadur: the
 *     control quantile's error moves f by the density ratio kappa = g_cand(ln cutoff) /
 *     g_ctl(ln p95_ctl), g the densities of ln latency). kappa = 1 exactly when the candidate
 *     is the control slowed by the ratio (the boundary of the null); we use max(1, kappa read
 *     from the curves), which never understates the variance there. Why not a test on the
 *     quantile ratio itself: its variance needs the densities too and a quantile is not a
 *     mean, which is what the asymptotic sequences cover; a fraction is. Resolution is the
 *     buckets': the test is exact for the interpolated curves, approximate for the true
 *     distributions (bench/gate-sim measures it at the limit: guard_latency_x1.2).
 *   - error rate: errors/requests; breached when cand - ctl > error_delta_max.
 *   - tokens per request: breached when mean_cand > tokens_ratio_max x mean_ctl, tested as
 *     the linear contrast mean_cand - ratio x mean_ctl > 0 (variance Var_cand + ratio^2
 *     Var_ctl) — no ratio estimator needed.
 * Each needs min_n observations in both arms (requests, histogram counts, tokens_n).
 *
 * Bandit mode (gate_bandit.h). K arms (every variant of the
 * experiment, removed ones included), allocated by Thompson sampling with an exploration
 * floor f: every propensity a live arm is logged with is >= f. What it promises, in finite
 * samples, at every look, under any adaptive allocation:
 *     P(some truly best arm is ever removed) <= alpha     (ties and A/A included)
 * — a winner is only declared when every other live arm is removed, so a wrong winner implies
 * a best arm removed. (given_best = 1 promises only P(a given best arm is ever removed) <=
 * alpha: E_i >= 1/alpha alone removes i, without the closure below; faster, but with m tied
 * best arms the chance that one of them goes is bounded by m alpha only.)
 *
 * The derivation. Shift outcomes to y' = y - y_min in [0, R], R = y_max - y_min. Request t
 * goes to arm A_t with propensity p_t,k fixed before its outcome (predictable: it comes from
 * outcomes recorded before the choice); its pseudo-outcome for arm k is
 *     Z_t,k = y'_t 1{A_t = k} / p_t,k,     E[Z_t,k | past] = mu'_k  (inverse propensity),
 * in [0, R/f]. For two arms j, i the difference D_t = Z_t,j - Z_t,i (sign flipped when
 * minimising) has conditional mean mu'_j - mu'_i, which is <= 0 when i is at least as good as
 * j, and D_t >= -R/f. So xi_t = D_t / c with c = R/f satisfies eproc.h's conditions (xi >= -1,
 * conditional mean <= 0 under the null), and M_ji = the mixture e-process of eproc.h on
 *     S = sum D / c,   V = sum D^2 / c^2,
 *     sum D   = (swy_j - y_min sw_j) - (swy_i - y_min sw_i),
 *     sum D^2 = sum over both arms of u^2 y'^2 = sw2y2 - 2 y_min sw2y + y_min^2 sw2
 * (a request feeds only its own arm's sums, so the cross terms vanish; requests of other arms
 * add 0 and need not be counted). The increments from arm j are >= 0 and those from arm i
 * <= 0, so their squares are kept apart: V_pos = j's sum over c^2, V_neg = i's, and eproc.h's
 * split mixture charges Fan's psi(l) only on V_neg. Everything comes from the Redis sums iw*
 * (proto/KEYS.md), which is why the bets are fixed rather than predictable: the test is
 * stateless, like the canary's. For arm i the e-process against "i is a best arm" is
 *     E_i = (1 / (K - 1)) sum_{j != i, j an opponent} M_ji,
 * a mean of nonnegative supermartingales if i is best (every mu_j <= mu_i). Opponents are the
 * live arms that breach no guardrail: leaving arms out only lowers E_i below the mean over
 * all K - 1, which is the e-process the bound is about (an arm j at propensity 0 after its
 * removal adds nothing to its sums, so then D = -Z_i, mean <= 0, and M_ji stays a
 * supermartingale).
 *
 * Closed testing. Arm i is removed ("not best") once, for every set S of live arms that
 * contains i, an e-process E_S for H_S = "every arm of S is a best arm" is >= 1 / alpha:
 * log_e_closed, the smallest log E_S, is >= log(1 / alpha). Why that keeps the promise: let
 * B be the set of truly best arms; H_B is true, so P(ever E_B >= 1 / alpha) <= alpha (Ville).
 * Until the first best arm is removed, B is a set of live arms, so that first removal needs
 * E_B >= 1 / alpha at that look: P(some best arm is ever removed) <= alpha, ties and A/A
 * included (Marcus, Peritz & Gabriel's closure principle, 1976, with e-values as in Vovk &
 * Wang 2021, "E-values: calibration, combination and applications", Ann. Statist. 49(3)).
 * Each E_S must be fixed in advance (it may depend on S and K, not on the data) and be a
 * nonnegative supermartingale from 1 under H_S. The contrasts: for an arm x and a set T
 * without x, D = Z_x - mean over t in T of Z_t (signs flipped when minimising) has
 * conditional mean mu'_x - mean mu'_T, which under H_S is 0 when x is in S and T = S \ x,
 * and <= 0 when x is not in S and T = S; a request feeds one arm, so D >= -c with c = R / f
 * times the largest weight on the negative side (1 / |T| when maximising, 1 when
 * minimising), and M(x, T) = the mixture of eproc.h on D / c, squares split by sign as above,
 * is an e-process under H_S (M(j, {i}) = M_ji). With m = |S|,
 *     m = 1:   E_{i} = E_i above;
 *     m >= 2:  E_S = a sum_{s in S} M(s, S \ s) + o sum_{j not in S} M(j, S),
 *              m a + (K - m) o = 1: a = o = 1/K for m >= 3; for m = 2 (K > 2), a = 0.45 on
 *              each of the two pairs inside S and o = 0.1 / (K - 2).
 * Why these weights: with one best arm b and the rest tied below it, a set's only strong
 * contrast is b's: M(b, S \ b) if b is in S, M(b, S) if not. For m = 2 with b in S it is the
 * pair (b, l), the slowest contrast there is, and 0.45 puts the set {b, l} at M(b, l) >= 2.2 /
 * alpha, beside the singleton {l}'s (K - 1) / alpha. Every other strong contrast sets b
 * against the mean of two or more arms; near the decision those sit at the floor, where an
 * arm's term dominates the variance (mu / f), so averaging two halves it and the contrast's
 * log e grows about 1.8 times as fast (three: 2.4): a larger threshold there costs less. The
 * first closure of issue 15, the mean of the E_l over S, needed M(b, l) >= 2 (K - 1) / alpha
 * for S = {b, l}. Computing it: for K <= 8 every set is enumerated (K 2^(K - 1) contrasts).
 * Above 8 arms (fixed by K, so still fixed in advance) a pairwise design: E_S = sum_{s in S}
 * (a_m sum_{j in S, j != s} M_js + o_m sum_{j not in S} M_js), a_m = 1 / (K (m - 1)), o_m =
 * 1 / (K m), the minimax among pairwise designs for one best arm among ties (K / alpha for
 * every set); its minimum over S is bounded below by dropping the pairs inside S that do not
 * touch i, which makes it separable (a sort per m) and is exact for m <= 2 and S = every arm.
 * Contrasts whose better side x is not live or breaches a guardrail count as 0 (only lowers
 * E_S).
 *
 * Delayed outcomes: a request's outcome enters its arm's sums when it is recorded, with the
 * propensity logged at choice time; the order of recording is the e-process's time. Valid when
 * the delay does not depend on the arm (binary outcomes: it may depend on the outcome; any
 * outcome that never arrives counts as y_min, as `missing: failure` does for binary ones).
 * Assumptions, stated: propensities >= floor (checked: sum u^2 <= sum u / floor, else the gate
 * halts "invalid:arm"); outcomes in [y_min, y_max] (checked on the sums likewise; a continuous
 * metric needs a declared outcome_range, and values outside it must be clipped where they are
 * recorded); every outcome weight 1 (proxy feedback with weights w compares E[w y']).
 * Unbounded metrics have no finite-sample test here: declare a range (bench/gate-sim runs
 * log-normal outcomes, sigma up to 2, clipped at the range's top).
 *
 * Guardrails, against the control, with the same sequential tests as canary mode (per arm,
 * alpha_guard over the guardrails on): a live arm that breaches one is removed; a winner must
 * have every guardrail on tested (min_n in both) and none breached (the control needs none).
 *
 * The sample-ratio check. The router counts, when it routes a request of a bandit gate's
 * experiment (router/events.c, proto/KEYS.md), per arm k: A_k = the requests drawn for k,
 * P_k = the sum over every request t of the propensity p_t,k the drawing policy gave k (k's
 * expected count under the logged policy), Q_k = the sum of p_t,k^2, O_k = the sum of p_t,k
 * over k's own draws. Thompson sampling draws the arm from exactly the propensities it logs
 * (thompson.h), so x_t = 1{A_t = k} - p_t,k has conditional mean 0 and lies in [-1, 1];
 *     sum x = A_k - P_k,   sum x^2 = A_k - 2 O_k + Q_k,
 * and the e-process of eproc.h is run on both signs (c = 1 each), level alpha_srm over 2K
 * tests (threshold log(2K / alpha_srm)), over every arm, removed ones included (a removed arm
 * has propensity 0: any request it still gets counts against it). It is the canary's
 * check (Lindon & Malek's, seqtest.h) in the form moving propensities need: their
 * Dirichlet-multinomial Bayes factor assumes shares fixed since its baseline, which a bandit's
 * are not, and a mixture over distortions of moving shares is not a function of running
 * sums; this one is, and like theirs it is a nonnegative supermartingale under the null,
 * valid at every look (Ville). It fires when routing does not follow the logged propensities
 * (an arm served less or more than they say) or when they are logged wrong. A halt, as in
 * canary mode ("srm": the experiment stops until an operator resumes it). Requests whose arm a
 * key decided (sticky, hashed) are not counted: no random draw chose them.
 *   Data written before these counters existed has none (all zero): then the older check
 * runs instead, on outcomes, in the inverse form: for a live arm k and each recorded outcome
 * t of any arm, 1{A_t = k} / p_t,k - 1 has conditional mean 0 and lies in [-1, 1/f - 1]; its
 * sum, sw_k - N (N = outcomes of all arms), is tested in both directions (c = 1 and c = 1/f -
 * 1). It also fires on outcomes lost more often in one arm, and is off with proxy feedback
 * (weighted feedback breaks its count identity); the count check is not.
 *
 * What it costs (bench/gate-sim bandit ab --reps 1000 --seed 1): a best arm of 0.12 among
 * 0.10s, floor 0.1: median requests to a winner K = 3 29,400, K = 5 45,000 (given_best:
 * 27,600 and 44,200), against 20,000 and 28,600 for the asymptotic sequences this
 * replaced, which removed some arm in up to 95% of A/A runs (floor 0, rate 0.01, K = 10; 2%
 * to 91% with a floor). Issue 15's steps: 46,100 and 68,000 with a union bound over the K
 * possible best arms and the 6.4-octave grid; 38,600 / 55,900 with the mean of the E_l over
 * S, split squares and the 4-octave grid; 36,600 / 52,000 with the pairwise minimax closure
 * (above 8 arms still); 34,200 / 49,000 with the contrasts against a set's mean; 29,400 /
 * 45,000 with the outcome grid of eproc.h.
 * Where the rest goes: the mixture over bets (the best bet of the wide grid in hindsight, not
 * an e-process, would decide at 23,600 / 38,200); the closure, whose binding sets are the
 * singleton {loser} (M(best, loser) >= (K - 1) / alpha) and, for K = 3, {best, loser} (2.2 /
 * alpha); Fan's psi against a Gaussian l^2/2 (~12% at l ~ 0.17, tight here: the loser's
 * increments sit at -1, the floor). The information itself is the floor arm's: Thompson
 * sampling gives the losers 0.1 of the traffic each, and an inverse-propensity term's
 * variance is mu / floor; a CLT test on the same allocation has the same.
 *   Not done, as they need state or sums the router does not keep (measured with bench-only
 * patches): (1) the singleton against a predictable opponent, the arm with the largest
 * propensity among the others when the request was routed (E_{i} = M(lead, i), no 1 / (K - 1)):
 * K = 5 45,000 -> 42,000, K = 3 unchanged (there {best, loser} binds too); it needs, per arm
 * i, the sums of u y' and u^2 y'^2 over the outcomes of the requests whose arm was i's lead
 * at routing time (the trace record would carry the arm's rank among the propensities, and
 * the top arm's id when it is second). Against everything else as allocated (y' / (1 - p_i)
 * over the other arms' outcomes) it is slower: the other losers dilute the drift (K = 5
 * 66,000). (2) Bets chosen from the data, per pair (aGRAPA-style plug-in l_t = clip(mean /
 * second moment of past increments), one wealth per pair updated at each outcome): 38,600 -
 * 39,800 for K = 3 with caps 0.3 - 0.8 and shrinkage: the increments are too skewed and their
 * signal too weak for a plug-in to settle before the mixture has decided. (3) A doubly robust
 * increment, (y - m)/p with m a predictable pooled mean logged with the propensity
 * (Waudby-Smith et al. 2022, "Anytime-valid off-policy inference for contextual bandits"):
 * the common m cancels in a difference, and the variance falls from mu/p to about
 * mu(1 - mu)/p, so it gains about mu: measured before this closure and grid, 600 runs: 0.12
 * among 0.10 K = 3 38,200 -> 35,400, K = 5 54,600 -> 50,200; 0.30 among 0.25 14,600 ->
 * 11,400. It needs m in the trace record and new sums from the outcome paths (api.c, the
 * sweeper's script), and a guard for outcomes recorded without it.
 */
#ifndef SY_GATE_H
#define SY_GATE_H

#include <stddef.h>

#include "policies/seqtest.h"
#include "proto/latency.h"

#define SY_GATE_TUNING_N 12000.0 /* default tuning_n: see the header comment */

typedef struct sy_gate_arm_s {
  double n;              /* outcomes observed (unweighted count); min-sample checks use this */
  double sw;             /* sum of weights w            (plain: n)      */
  double swy;            /* sum of w*y                  (plain: sum)    */
  double sw2;            /* sum of w^2                  (plain: n)      */
  double sw2y;           /* sum of w^2*y                (plain: sum)    */
  double sw2y2;          /* sum of w^2*y^2              (plain: sumsq)  */
  double requests;       /* requests routed to the arm (for SRM)  */
  double expected_share; /* the share the allocation intended for this arm, 0..1 (for SRM);
                            constant over the counted requests (so count requests since the
                            allocation last changed). Only ratios between the arms compared
                            matter (the shares are normalised). */
  /* bandit mode's sample-ratio check (gate_bandit.h), counted by the router when it routes a
   * request, over every request of the experiment (0 everywhere: no router wrote them, and
   * the check falls back to the inverse-propensity one) */
  double assigned; /* requests assigned to this arm */
  double p_sum;    /* sum over every request of this arm's logged propensity: its expected
                      count under the logged policy */
  double p_sum2;   /* sum of their squares */
  double p_own;    /* sum of this arm's propensity over its own assignments */
  /* guardrail inputs */
  double errors;                             /* requests that failed */
  double lat_hist[SY_LAT_BUCKETS];           /* counts per bucket of proto/latency.h */
  double tokens_n, tokens_sum, tokens_sumsq; /* tokens per request */
} sy_gate_arm_t;

typedef enum {
  SY_GATE_CONTINUE = 0,
  SY_GATE_PROMOTE,
  SY_GATE_ROLLBACK,
  SY_GATE_HALT,
} sy_gate_decision_t;

typedef enum {
  SY_GATE_GUARD_LATENCY = 0, /* latency p95 ratio */
  SY_GATE_GUARD_ERRORS,      /* error rate difference */
  SY_GATE_GUARD_TOKENS,      /* tokens per request ratio */
  SY_GATE_NGUARDS,
} sy_gate_guard_id_t;

/* The statistical parameters of a gate. (router/config.h's sy_gate_conf_t is the YAML side;
 * the router copies its fields here.) */
typedef struct sy_gate_params_s {
  int minimize;             /* 1: smaller outcomes are better; default 0 */
  double alpha;             /* outcome sequence level, (0, 1); default 0.05 */
  double promote_share;     /* the share of alpha spent on the promoting end, (0, 1);
                               0.5: symmetric two-sided sequence; default 0.9 (see above) */
  double tuning_n;          /* total N where the sequence is narrowest; <= 0: the default */
  double min_n;             /* per arm, before any outcome or guardrail decision; default 100 */
  double max_age_ms;        /* older data halts; default 300,000 (5 min) */
  double alpha_guard;       /* total over the guardrails on (Bonferroni), (0, 1); default 0.05 */
  double lat_p95_ratio_max; /* > 1 or 0 (off); default 1.2 */
  double error_delta_max;   /* > 0, or 0 (off); default 0.02 */
  double tokens_ratio_max;  /* > 0 or 0 (off); default 1.5 */
  double alpha_srm;         /* SRM level, [0, 1); 0 turns the check off; default 0.001 */
  double srm_concentration; /* Dirichlet prior concentration C; default 1000 (most sensitive
                               near 16,000 requests, seqtest.h) */
  /* bandit mode only (sy_gate_bandit_check) */
  double floor;        /* the allocation's exploration floor: every logged propensity of a live
                          arm is >= floor; must be > 0 in bandit mode; default 0 */
  double y_min, y_max; /* the outcome's declared range (y_min < y_max); default [0, 1] */
  int given_best;      /* 1: bound P(a given best arm is ever removed) by alpha, E_i >=
                          1/alpha alone; 0 (default): P(any best arm is ever removed) — ties
                          and A/A included — by the closure (see above) */
} sy_gate_params_t;

/* One sequential test, as written to an audit log. A test that did not run (off, or too
 * little data) has ran = 0 and NaN numbers. */
typedef struct sy_gate_test_s {
  int ran;
  double estimate; /* outcome: delta; guardrail: excess over its limit (> 0 is a breach) */
  double se;       /* standard error of the estimate */
  double z_lower;  /* lower = estimate - z_lower * se */
  double z_upper;  /* upper = estimate + z_upper * se (+inf for a one-sided test) */
  double lower;    /* the confidence sequence at this look */
  double upper;
  double n;     /* observations behind it, both arms */
  double alpha; /* the level of this test (both ends together) */
} sy_gate_test_t;

typedef struct sy_gate_guard_s {
  int enabled;
  int breached;
  double limit;     /* the threshold from the parameters */
  double control;   /* latency: p95 ms; errors: rate; tokens: mean per request */
  double candidate; /* the same for the candidate */
  double cutoff_ms; /* latency only: limit x control p95, else NaN */
  sy_gate_test_t test;
} sy_gate_guard_t;

typedef struct sy_gate_result_s {
  sy_gate_decision_t decision;
  const char *reason; /* static string, see the header comment */
  const char *detail; /* static; for "invalid:*" what was wrong, else NULL */
  double mean_control, mean_candidate;
  double rho; /* the mixture scale of the outcome sequence's promoting end; NaN
                 until the outcome test runs */
  sy_gate_test_t outcome;
  sy_gate_guard_t guard[SY_GATE_NGUARDS];
  int srm_ran;
  double srm_log_bf;        /* log Bayes factor; >= srm_log_threshold is a mismatch */
  double srm_log_threshold; /* log(1 / alpha_srm) */
} sy_gate_result_t;

/* Fills p with the defaults documented above. */
void sy_gate_params_default(sy_gate_params_t *p);

/* Returns NULL if p is usable, else a static string saying which field is wrong. */
const char *sy_gate_params_check(const sy_gate_params_t *p);

/* The tuning_n in effect: p->tuning_n, or SY_GATE_TUNING_N when that is <= 0. */
double sy_gate_tuning_n(const sy_gate_params_t *p);

/* Adds one outcome y with weight w (1 for a plain mean, 1/propensity for IPW) to a. */
void sy_gate_arm_add(sy_gate_arm_t *a, double y, double w);

/* Adds every count and sum of src to dst (merging router instances); expected_share is
 * kept from dst. */
void sy_gate_arm_merge(sy_gate_arm_t *dst, const sy_gate_arm_t *src);

/* The arm's Hajek mean swy/sw; NaN when sw is 0. */
double sy_gate_arm_mean(const sy_gate_arm_t *a);

/* The delta-method variance of that mean (above), clamped at 0 against rounding; NaN when
 * sw is 0. */
double sy_gate_arm_var(const sy_gate_arm_t *a);

/*
 * Returns NULL if a's statistics are usable, else a static description: a field not finite,
 * a count or a sum of squares negative, expected_share outside [0, 1], sums without outcomes,
 * errors above requests, or sums that no real weights can produce (Cauchy-Schwarz:
 * sw^2 <= n sw2 and sw2y^2 <= sw2 sw2y2, tokens likewise, with a relative slack of 1e-9).
 */
const char *sy_gate_arm_check(const sy_gate_arm_t *a);

/*
 * The gate's decision for a candidate against the control, from their totals and the age of
 * those totals in ms (>= 0; NaN or negative halts as "missing"). Fills *out (every field;
 * tests that did not run have ran = 0) and returns out->decision. Never allocates; out->reason
 * and out->detail are static strings.
 */
sy_gate_decision_t sy_gate_evaluate(const sy_gate_params_t *p, const sy_gate_arm_t *control,
                                    const sy_gate_arm_t *candidate, double data_age_ms,
                                    sy_gate_result_t *out);

/* "guardrail:latency_p95", "guardrail:error_rate", "guardrail:tokens" for g in
 * [0, SY_GATE_NGUARDS); "?" otherwise. */
const char *sy_gate_guard_reason_name(int g);

/* "continue", "promote", "rollback", "halt" (or "?" for a value out of range). */
const char *sy_gate_decision_name(sy_gate_decision_t d);

/* ---- internal: shared with gate_bandit.c (policies/ only) ---- */

/* The guardrails' reasons, indexed by sy_gate_guard_id_t. */
extern const char *const sy__gate_guard_reason[SY_GATE_NGUARDS];

/* A test that did not run: ran = 0, every number NaN. */
sy_gate_test_t sy__gate_test_none(void);

/* The one-sided (lower) asymptotic sequence for est at level alpha (gate.h). */
sy_gate_test_t sy__gate_test_one(double est, double var, double n, double tuning_n, double alpha);

/* Runs the guardrails that are on, candidate t against control c, each at alpha_guard / (the
 * number on); fills g[0..SY_GATE_NGUARDS) and returns the first breached one's index or -1. */
int sy__gate_run_guards(const sy_gate_params_t *p, const sy_gate_arm_t *c, const sy_gate_arm_t *t,
                        sy_gate_guard_t *g);

/* The halts that need no statistics: parameters ("config", *detail says which), the data's
 * age ("missing", "stale"). Returns the reason or NULL. */
const char *sy__gate_setup_halt(const sy_gate_params_t *p, double age, const char **detail);

#endif
