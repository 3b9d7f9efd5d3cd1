/*
 * evaluate.h — `switchyard evaluate`: off-policy evaluation of a target policy from the
 * warehouse's `trace` rows and their logged propensities (the estimators are in
 * policies/ope.h; this file reads, maps variants and reports).
 */
#ifndef SY_EVALUATE_H
#define SY_EVALUATE_H

/*
 * `switchyard evaluate EXP --config FILE --from sqlite:FILE --policy P [--json]
 *  [--min-propensity X] [--min-ess N]`.
 * argv[0..argc) are the arguments after the word `evaluate`. The report goes to stdout,
 * problems to stderr. Returns the exit status: 0 done (warnings included; also --help),
 * 1 a read error or no usable row of EXP in the warehouse, 2 bad input (a missing or
 * unknown flag, a bad config, EXP not in the config, a policy naming an unknown variant or
 * with weights not summing to more than 0, a --from that cannot be opened or is not a
 * supported warehouse).
 */
int sy_evaluate_main(int argc, char **argv);

#endif
