/*
 * dataset.h — `switchyard dataset build`: a reproducible slice of the warehouse's `trace`
 * table as rows.jsonl plus manifest.json (the format is in proto/DATASET.md), and the
 * rebuild of a dataset from its manifest.
 */
#ifndef SY_DATASET_H
#define SY_DATASET_H

/*
 * `switchyard dataset build --from sqlite:FILE --to DIR [--where FILTER]` and
 * `switchyard dataset build --manifest DIR/manifest.json --to DIR2 [--from URL]`.
 * argv[0..argc) are the arguments after the word `dataset`. Writes DIR/rows.jsonl and
 * DIR/manifest.json (each through a temporary file renamed into place). Returns the exit
 * status: 0 done (also --help), 1 a read or write error, or a rebuild whose rows differ from
 * the manifest's (the warehouse changed since: said on stderr, the new files written),
 * 2 bad input (a flag missing or unknown, a bad filter, an unreadable manifest or source).
 */
int sy_dataset_main(int argc, char **argv);

#endif
