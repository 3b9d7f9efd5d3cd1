/*
 * privacy.h — the stats layer's privacy helpers: scrubbing personal data out of free
 * text (feedback comments and the like) before it is stored, naming what was removed
 * (the events' `redaction_flags`), and keyed hashing for pseudonymous ids and
 * `input_hash`. Pure: no I/O, no event loop, no global state; the hashes use libsodium
 * (pkg-config libsodium).
 */
#ifndef SY_PRIVACY_H
#define SY_PRIVACY_H

#include <stddef.h>

/* Redaction flags, as bits; sy_redaction_name / sy_redaction_json give their names
 * for events (proto/EVENTS.md, field redaction_flags). */
enum {
  SY_REDACT_EMAIL = 1u << 0,   /* "email" */
  SY_REDACT_PHONE = 1u << 1,   /* "phone" */
  SY_REDACT_API_KEY = 1u << 2, /* "api_key" */
  SY_REDACT_COMMENT = 1u << 3, /* "comment": free text dropped entirely (consent); never
                                  set by sy_scrub, the caller sets it */
  SY_REDACT_CARD = 1u << 4,    /* "card": payment card numbers (Luhn-valid 13..19 digits) */
};

/* Room that sy_redaction_json needs for every flag set, NUL included. */
#define SY_REDACTION_JSON_MAX 64

/*
 * Returns the name of one flag bit ("email", "phone", "api_key", "comment", "card"),
 * or NULL if flag is not exactly one of the bits above. The string is static.
 */
const char *sy_redaction_name(unsigned flag);

/*
 * Writes the names of the flags set in `flags` as a JSON array of strings, in bit
 * order, e.g. ["email","phone"], or [] if none is set; bits that are not flags are
 * ignored. out is NUL-terminated. Returns the length written (without the NUL), or -1
 * if it does not fit in outlen bytes (SY_REDACTION_JSON_MAX always fits) or out is
 * NULL; on -1 the contents of out are unspecified.
 */
int sy_redaction_json(unsigned flags, char *out, size_t outlen);

/*
 * Copies text (n bytes, any bytes: NULs and invalid UTF-8 are allowed; text may be
 * NULL when n is 0) into a new malloc'd buffer, replacing e-mail addresses, payment
 * card numbers, phone numbers and API-key-like strings by "[email]", "[card]",
 * "[phone]" and "[api_key]". Every byte outside a match is copied unchanged, so UTF-8
 * passes through untouched and text with nothing to scrub comes back identical.
 *
 * Returns the new buffer, NUL-terminated (the caller frees it), or NULL if out of
 * memory (or text is NULL with n > 0). *outlen (if outlen is not NULL) gets the
 * output length without the NUL; it equals strlen() of the result when the input has
 * no NUL byte. *flags (if not NULL) is ORed with the SY_REDACT_* bits of what was
 * replaced; bits already set are kept. Output is at most n + n/6 bytes (only a
 * 6-byte address can grow, by one byte).
 *
 * Detection, tried at each position in this order (the first that matches wins; all
 * character classes are ASCII, bytes >= 0x80 belong to none):
 *
 * 1. Keys with a well-known prefix, at a token start (previous byte not
 *    [A-Za-z0-9_-]): the prefix and the maximal run of [A-Za-z0-9_-] after it
 *    become "[api_key]" when the run is at least 16 bytes long, for sk-, sk_live_,
 *    sk_test_, pk_live_, rk_live_, ghp_, gho_, github_pat_, glpat-, xoxb-, xoxp-,
 *    xoxa-, xoxs-; "AKIA" needs exactly 16 of [A-Z0-9] (AWS access key id); "AIza"
 *    at least 35 (Google API key). "Bearer" (any case) followed by spaces or tabs and
 *    a token of at least 16 of [A-Za-z0-9._~+/=-] keeps "Bearer " and replaces the
 *    token. A run followed by '@' is left to the e-mail rule.
 * 2. E-mail, at a start of [A-Za-z0-9._%+-] (previous byte not in that class):
 *    local@domain where local is the maximal run of that class (with at least one
 *    letter or digit) and domain is labels of [A-Za-z0-9-]+ joined by single dots,
 *    at least two labels, the last all letters and >= 2 long. The longest such domain
 *    is taken, so "a.b+c@example.co.uk." keeps its final dot.
 * 3. Numbers, at a number start: a digit, '(' before a digit, or '+' before a digit
 *    or '(', whose previous byte is not [A-Za-z0-9_] and not one of ".,-/" that
 *    itself follows [A-Za-z0-9_] (so nothing starts inside "v1.2.3", "abc-123",
 *    "2024/01/15"). From there a run of digit groups is read: an optional leading
 *    '+', groups of digits (optionally in parentheses), separated by one of ' ', '-',
 *    '.' (or nothing right after a ')'), up to 19 digits in all. Then:
 *    a. Date: the first three groups shaped YYYY-MM-DD / YYYY.MM.DD (month 1..12,
 *       day 1..31) or DD-MM-YYYY / DD.MM.YYYY / MM-DD-YYYY, with the same separator
 *       twice and no '+' or parentheses, are copied as they are.
 *    b. Card: the longest prefix of the run (no '+', no parentheses, separators only
 *       ' ' or '-') with 13..19 digits that passes the Luhn check becomes "[card]".
 *       A card-shaped run that fails Luhn (13..19 digits, no '+' or parentheses,
 *       separators ' ' or '-', every group at least 4 digits, e.g. a mistyped card
 *       number or a 13..15-digit id) is copied as it is: neither card nor phone.
 *    c. Phone: the longest prefix of the run (the whole run, or one that stops before
 *       a ' ' separator) such that it has 7..15 digits, at most one group of a
 *       single digit, and is not followed by [A-Za-z0-9_] nor by '.' or ',' and a
 *       digit (a unit or decimal part: "1500000ms", "1234567.89"). In addition an
 *       unseparated run needs a leading '+' or at least 10 digits ("took 1500000 ms"
 *       stays); a run separated only by dots (and without parentheses) needs 3 or
 *       more groups of 2..4 digits (the first 1..3 after '+'), and is not a dotted
 *       quad of numbers <= 255 (an IPv4 address) nor thousands grouping like
 *       "12.345.678"; and a currency sign or code ($, €, £, ¥, EUR, USD, GBP, after
 *       it also %) right before or after it, with at most one space between, means
 *       an amount, not a phone. It becomes "[phone]".
 * 4. Generic token, at a token start: a maximal run of at least 32 bytes of
 *    [A-Za-z0-9_-] holding at least one letter and one digit (and not followed by
 *    '@') becomes "[api_key]". This also catches UUIDs and long hex digests, which
 *    is acceptable for stored feedback.
 *
 * Known over-scrubbing: any 10..12-digit number (unix timestamps, order numbers),
 * numbers written with spaces "1 500 000 people", and space-separated numbers that
 * run together ("2023 1500 people"). Known misses: phone numbers written with other
 * separators ("415/555-0100") or with an extension glued on ("555-0100x12"), dotted
 * two-group numbers ("555.0100"), and anything in non-ASCII digits.
 */
char *sy_scrub(const char *text, size_t n, size_t *outlen, unsigned *flags);

/*
 * Initialises libsodium (idempotent, thread-safe). Returns 0, or -1 if libsodium
 * cannot initialise (no random source). Call once at startup and check; the key
 * functions below call it as well.
 */
int sy_privacy_init(void);

/* Key of the keyed hashes: 32 bytes for BLAKE2b (libsodium crypto_generichash), and
 * the 16 bytes derived from them for the body hash's SipHash. */
typedef struct sy_hash_key_s {
  unsigned char k[32];
  unsigned char body[16];
} sy_hash_key_t;

/* Size of sy_keyed_hash_hex's output: 32 lowercase hex digits and a NUL. */
#define SY_KEYED_HASH_HEX_SIZE 33

/*
 * Derives *key from a secret string of any length (e.g. from an environment
 * variable): BLAKE2b-256 of the secret keyed with the context string
 * "switchyard-id-v1", so equal secrets give equal keys on every router. Returns 0, or
 * -1 if key or secret is NULL, secret is empty, or libsodium cannot initialise.
 */
int sy_hash_key_from_secret(sy_hash_key_t *key, const char *secret);

/*
 * Fills *key with random bytes (libsodium randombytes_buf), for a process that has
 * no configured secret: its hashes are then stable only for its own lifetime.
 */
void sy_hash_key_random(sy_hash_key_t *key);

/*
 * Writes the keyed hash of data (n bytes; data may be NULL when n is 0) into out:
 * BLAKE2b with key->k as the key and a 16-byte digest, as 32 lowercase hex digits
 * and a NUL. Same key and data give the same string; without the key it cannot be
 * reversed or recomputed from a guess of the data.
 */
void sy_keyed_hash_hex(const sy_hash_key_t *key, const void *data, size_t n,
                       char out[SY_KEYED_HASH_HEX_SIZE]);

/*
 * The keyed hash of a request body (an event's input_hash, schema 5): SipHash-2-4 with
 * a 128-bit digest (libsodium crypto_shorthash_siphashx24), keyed with key->body (a
 * key derived from key->k), as 32 lowercase hex digits and a NUL. A tenth of BLAKE2b's
 * cost on a short body, and, like it, not reversible or recomputable without the key.
 * (Schema 4 hashed bodies with sy_keyed_hash_hex: compare input hashes within a schema.)
 */
void sy_body_hash_hex(const sy_hash_key_t *key, const void *data, size_t n,
                      char out[SY_KEYED_HASH_HEX_SIZE]);

#endif
