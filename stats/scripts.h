/*
 * scripts.h — the Lua scripts switchyard runs in Redis. Each is atomic there, which
 * is what makes the statistics exact when many routers write at once and when a
 * batch is sent twice. The key layout they write is proto/KEYS.md.
 *
 * The scripts build key names from the experiment id they are given, and the trace
 * records' names from the trace id, so they are for a single Redis server (or a
 * Sentinel-managed primary); the keys carry one hash tag per experiment for dashboards
 * and for a later Cluster mode. Which keys a script names itself is listed in
 * proto/KEYS.md; the fixed names are spliced in from proto/keys.h.
 */
#ifndef SY_SCRIPTS_H
#define SY_SCRIPTS_H

#include "proto/keys.h"

/*
 * The fence every script runs first, before it reads or writes anything: one
 * multi-key command on KEYS[1] and a key of the same slot that never exists. On one
 * server, or on a cluster slot that is not being migrated, it is a no-op. While the
 * slot is migrating (resharding), Redis refuses it on the source (the probe is
 * missing: ASK) and on the target (multi-key with a missing key: TRYAGAIN), so the
 * script fails before its first write instead of writing half of its keys on one
 * node and half on the other; stats/cluster.c holds and resends it until the slot has
 * moved. proto/KEYS.md: "KEYS[1]:~" is never written.
 */
#define SY_LUA_FENCE "redis.call('EXISTS', KEYS[1], KEYS[1] .. ':~')\n"

/*
 * The trace records (proto/KEYS.md, "sy:tr:"): hashed buckets of one hour's slice of
 * traces, in generations that double (nothing is ever moved), each bucket about 40
 * records so that Redis keeps it a listpack (its compact encoding: about 50 bytes a
 * record). TR_LIB reads them (tr_get, which also reads schema 4's sy:trace:T hashes);
 * TR_PUT writes them (the journal script).
 */
#define SY_LUA_TR_LIB                                                                                  \
  "local TR_SLICE, TR_N0, TR_LOAD = " SY_TRACE_SLICE_MS_STR ", 8, 40\n"                                \
  "local TR_SL, TR_REFS, TR_LEGACY = '" SY_KEY_TRACE_SLICE "', '" SY_KEY_REFS "', true\n"              \
  "local function tr_use(pre)\n"                                                                       \
  "  if pre and pre ~= '' and pre ~= 'sy:' then\n"                                                     \
  "    TR_SL, TR_REFS, TR_LEGACY = pre .. 'tr:', pre .. 'refs', false\n"                               \
  "  end\n"                                                                                            \
  "end\n"                                                                                              \
  "local function tr_hash(tid)\n"                                                                      \
  "  if #tid < 6 then tid = string.rep('\\0', 6 - #tid) .. tid end\n"                                  \
  "  local a, b, c, d, e, f = string.byte(tid, -6, -1)\n"                                              \
  "  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f\n"                             \
  "end\n"                                                                                              \
  "local function tr_unesc(s)\n"                                                                       \
  "  return (string.gsub(s, '%%(%x%x)', function(x) return string.char(tonumber(x, 16)) end))\n"       \
  "end\n"                                                                                              \
  "local function tr_split_bar(s)\n"                                                                   \
  "  local out = {}\n"                                                                                 \
  "  for piece in string.gmatch(s .. '|', '([^|]*)|') do out[#out + 1] = piece end\n"                  \
  "  return out\n"                                                                                     \
  "end\n"                                                                                              \
  "local function tr_find(tid, now, back_ms)\n"                                                        \
  "  local h = tr_hash(tid)\n"                                                                         \
  "  local top, low = math.floor((now + 300000) / TR_SLICE), math.floor((now - back_ms) / TR_SLICE)\n" \
  "  for sl = top, low, -1 do\n"                                                                       \
  "    local key = TR_SL .. sl\n"                                                   \
  "    local st = redis.call('HMGET', key, 'g0', 'g')\n"                                               \
  "    if st[1] then\n"                                                                                \
  "      for g = tonumber(st[2]), tonumber(st[1]), -1 do\n"                                            \
  "        local v = redis.call('HGET', key .. ':' .. g .. ':' .. (h % (TR_N0 * 2 ^ g)), tid)\n"       \
  "        if v then return v end\n"                                                                   \
  "      end\n"                                                                                        \
  "    end\n"                                                                                          \
  "  end\n"                                                                                            \
  "  return nil\n"                                                                                     \
  "end\n"                                                                                              \
  "local TR_CONSENT = {['0'] = 'none', ['1'] = 'metrics', ['2'] = 'content'}\n"                        \
  "local function tr_get(tid, hex, now, back_ms)\n"                                                    \
  "  local v = tr_find(tid, now, back_ms)\n"                                                           \
  "  if not v then\n"                                                                                  \
  "    if not TR_LEGACY then return nil end\n"                                                     \
  "    local old = redis.call('HGETALL', '" SY_KEY_TRACE_PREFIX "' .. hex)\n"                          \
  "    if #old == 0 then return nil end\n"                                                             \
  "    local r = {}\n"                                                                                 \
  "    for i = 1, #old, 2 do r[old[i]] = old[i + 1] end\n"                                             \
  "    return r\n"                                                                                     \
  "  end\n"                                                                                            \
  "  local f = tr_split_bar(v)\n"                                                                      \
  "  local t, w = tonumber(f[2]) or 0, tonumber(f[3]) or 0\n"                                          \
  "  if now > t + (w + math.min(w, 3600)) * 1000 then return nil end\n"                                \
  "  local def = tr_split_bar(redis.call('HGET', TR_REFS, f[1]) or '')\n"                    \
  "  return {ref = f[1], t = f[2], w = f[3], p = f[4], s = tr_unesc(f[5] or ''),\n"                    \
  "          tn = tr_unesc(f[6] or ''), cs = TR_CONSENT[f[7] or '1'] or 'metrics',\n"                  \
  "          e = tr_unesc(def[1] or ''), v = tr_unesc(def[2] or ''), ver = tr_unesc(def[3] or '')}\n"  \
  "end\n"

#define SY_LUA_TR_PUT                                                                                             \
  "local tr_states = {}\n"                                                                                        \
  "local function tr_make(st, g, b)\n"                                                                            \
  "  local k = st.key .. ':' .. g .. ':' .. b\n"                                                                  \
  "  redis.call('HSET', k, '_', '')\n"                                                                            \
  "  redis.call('PEXPIREAT', k, st.x)\n"                                                                          \
  "end\n"                                                                                                         \
  "local function tr_state(sl, x)\n"                                                                              \
  "  local st = tr_states[sl]\n"                                                                                  \
  "  if not st then\n"                                                                                            \
  "    local key = TR_SL .. sl\n"                                                              \
  "    local r = redis.call('HMGET', key, 'g0', 'g', 'n', 'total', 'x', 'c')\n"                                   \
  "    if r[1] then\n"                                                                                            \
  "      st = {key = key, g0 = tonumber(r[1]), g = tonumber(r[2]), n = tonumber(r[3]),\n"                         \
  "            total = tonumber(r[4]), x = tonumber(r[5]), c = tonumber(r[6])}\n"                                 \
  "    else\n"                                                                                                    \
  "      local prev, g = tonumber(redis.call('HGET', TR_SL .. (sl - 1), 'total') or '0'), 0\n" \
  "      while TR_LOAD * TR_N0 * 2 ^ g < prev do g = g + 1 end\n"                                                 \
  "      st = {key = key, g0 = g, g = g, n = 0, total = 0, x = x, c = 0, dirty = true}\n"                         \
  "      redis.call('HSET', key, 'x', x)\n"                                                                       \
  "      redis.call('PEXPIREAT', key, x)\n"                                                                       \
  "    end\n"                                                                                                     \
  "    st.nb, st.pre = TR_N0 * 2 ^ st.g, key .. ':' .. st.g .. ':'\n"                                             \
  "    tr_states[sl] = st\n"                                                                                      \
  "  end\n"                                                                                                       \
  "  if x > st.x then\n"                                                                                          \
  "    st.x, st.dirty = x, true\n"                                                                                \
  "    for g = st.g0, st.g do\n"                                                                                  \
  "      for b = 0, (g < st.g and TR_N0 * 2 ^ g or st.c) - 1 do\n"                                                \
  "        redis.call('PEXPIREAT', st.key .. ':' .. g .. ':' .. b, x)\n"                                          \
  "      end\n"                                                                                                   \
  "    end\n"                                                                                                     \
  "    redis.call('PEXPIREAT', st.key, x)\n"                                                                      \
  "  end\n"                                                                                                       \
  "  return st\n"                                                                                                 \
  "end\n"                                                                                                         \
  "local tr_last_sl, tr_last_x, tr_last_st\n"                                                                     \
  "local function tr_put(tid, sl, x, val)\n"                                                                      \
  "  local st = tr_last_st\n"                                                                                     \
  "  if sl ~= tr_last_sl or x ~= tr_last_x then\n"                                                                \
  "    st = tr_state(tonumber(sl), tonumber(x))\n"                                                                \
  "    tr_last_sl, tr_last_x, tr_last_st = sl, x, st\n"                                                           \
  "  end\n"                                                                                                       \
  "  redis.call('HSET', st.pre .. (tr_hash(tid) % st.nb), tid, val)\n"                                            \
  "  st.n, st.total, st.dirty = st.n + 1, st.total + 1, true\n"                                                   \
  "  if st.n >= TR_LOAD * st.nb then\n"                                                                           \
  "    for b = st.c, st.nb - 1 do tr_make(st, st.g, b) end\n"                                                     \
  "    st.g, st.n, st.c, st.nb = st.g + 1, 0, 0, st.nb * 2\n"                                                     \
  "    st.pre = st.key .. ':' .. st.g .. ':'\n"                                                                   \
  "  end\n"                                                                                                       \
  "end\n"                                                                                                         \
  "local function tr_save()\n"                                                                                    \
  "  for _, st in pairs(tr_states) do\n"                                                                          \
  "    local upto = math.min(st.nb, st.c + 128)\n"                                                                \
  "    for b = st.c, upto - 1 do tr_make(st, st.g, b) end\n"                                                      \
  "    if upto > st.c then st.c, st.dirty = upto, true end\n"                                                     \
  "    if st.dirty then\n"                                                                                        \
  "      redis.call('HSET', st.key, 'g0', st.g0, 'g', st.g, 'n', st.n, 'total', st.total,\n"                      \
  "                 'x', st.x, 'c', st.c)\n"                                                                      \
  "    end\n"                                                                                                     \
  "  end\n"                                                                                                       \
  "end\n"

/*
 * Applies one journal batch exactly once.
 *   KEYS[1] sy:journal:INSTANCE   KEYS[2] the events stream
 *   ARGV[1] batch sequence number (consecutive per instance, from 1: a missing key
 *   means none applied, so only batch 1 may come first)   ARGV[2] stream MAXLEN
 *   ARGV[3] "1" to apply even after a gap (never a batch at or below the last
 *   applied)   ARGV[4..] operations:
 *     E value (XADD a schema 5 event: field e)   K trace slice expire value (a trace
 *     record: 16-byte trace id, its hour, when its slice may expire (ms))
 *     R id definition (HSET sy:refs)   H key field delta (HINCRBYFLOAT)
 *     Z key score member (ZADD)
 *   and schema 4's, which spooled batches of an older router still hold:
 *     X n f1 v1 ... (XADD an event of n strings)   T key ttl n f1 v1 ... (HSET + EXPIRE)
 * Returns "OK" (applied), "DUP" (this batch or a later one was applied already) or
 * {"GAP", last} (an earlier batch of this instance is missing: the router resends it,
 * or, if it no longer holds it, this batch with ARGV[3] = "1").
 */
#define SY_LUA_JOURNAL SY_LUA_FENCE SY_LUA_TR_LIB SY_LUA_TR_PUT                                       \
  "tr_use(string.match(KEYS[1], '^(.*)journal:[^:]*$'))\n"                                \
  "local last = tonumber(redis.call('GET', KEYS[1]) or '0')\n"                            \
  "local seq = tonumber(ARGV[1])\n"                                                       \
  "if seq <= last then return 'DUP' end\n"                                                \
  "if seq ~= last + 1 and ARGV[3] ~= '1' then return {'GAP', last} end\n"                 \
  "local i, n, added = 4, #ARGV, false\n"                                                 \
  "while i <= n do\n"                                                                     \
  "  local op = ARGV[i]\n"                                                                \
  "  if op == 'E' then\n"                                                                 \
  "    redis.call('XADD', KEYS[2], '*', 'e', ARGV[i+1]); i = i + 2; added = true\n"       \
  "  elseif op == 'K' then\n"                                                             \
  "    tr_put(ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]); i = i + 5\n"                   \
  "  elseif op == 'H' then\n"                                                             \
  "    redis.call('HINCRBYFLOAT', ARGV[i+1], ARGV[i+2], ARGV[i+3]); i = i + 4\n"          \
  "  elseif op == 'R' then\n"                                                             \
  "    redis.call('HSET', TR_REFS, ARGV[i+1], ARGV[i+2]); i = i + 3\n"          \
  "  elseif op == 'Z' then\n"                                                             \
  "    redis.call('ZADD', ARGV[i+1], ARGV[i+2], ARGV[i+3]); i = i + 4\n"                  \
  "  elseif op == 'X' then\n"                                                             \
  "    local k = tonumber(ARGV[i+1])\n"                                                   \
  "    redis.call('XADD', KEYS[2], '*', unpack(ARGV, i+2, i+1+k))\n"                      \
  "    i = i + 2 + k; added = true\n"                                                     \
  "  elseif op == 'T' then\n"                                                             \
  "    local k = tonumber(ARGV[i+3])\n"                                                   \
  "    redis.call('HSET', ARGV[i+1], unpack(ARGV, i+4, i+3+k))\n"                         \
  "    redis.call('EXPIRE', ARGV[i+1], ARGV[i+2]); i = i + 4 + k\n"                       \
  "  else return redis.error_reply('journal: bad operation ' .. tostring(op)) end\n"      \
  "end\n"                                                                                 \
  "tr_save()\n"                                                                           \
  "if added then redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', ARGV[2]) end\n"              \
  "redis.call('SET', KEYS[1], seq, 'EX', 2592000)\n"                                      \
  "return 'OK'\n"

/*
 * Reads trace T's record (any schema): a flat array of field/value strings as schema
 * 4's HGETALL gave (e, v, ver, tn, t, p, s, cs, w; ref for a schema 5 record), or an
 * empty array when there is none.
 *   KEYS[1] the refs hash: sy:refs, or sy:{E}:refs in cluster mode (its prefix says
 *   where the trace records are)
 *   ARGV[1] the 16-byte trace id   ARGV[2] its 32 hex digits   ARGV[3] how far back to
 *   look (ms: the longest window and its grace)
 */
#define SY_LUA_TRACE_GET SY_LUA_FENCE SY_LUA_TR_LIB                                                    \
  "tr_use(string.sub(KEYS[1], 1, -5))\n"                                                  \
  "local tm = redis.call('TIME')\n"                                                       \
  "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"             \
  "local r = tr_get(ARGV[1], ARGV[2], now, tonumber(ARGV[3]))\n"                          \
  "if not r then return {} end\n"                                                         \
  "local out = {}\n"                                                                      \
  "for _, f in ipairs({'e', 'v', 'ver', 'tn', 't', 'p', 's', 'cs', 'w', 'ref'}) do\n"     \
  "  if r[f] then out[#out + 1] = f; out[#out + 1] = r[f] end\n"                          \
  "end\n"                                                                                 \
  "return out\n"

/*
 * Applies one feedback or outcome call, once per (trace, type or metric).
 *   KEYS[1] the refs hash: sy:refs, or sy:{E}:refs in cluster mode (its prefix says
 *   where the trace records are; schema 4's sy:trace:T, T from KEYS[2], is read on one
 *   server only)
 *   KEYS[2] sy:{E}:applied:T   KEYS[3] sy:{E}:v:V
 *   KEYS[4] sy:{E}:v:V:s:S (without a segment, any key of E: not written)
 *   KEYS[5] sy:{E}:segments   KEYS[6] sy:{E}:pending
 *   KEYS[7] the events stream
 *   ARGV[1] tenant of the caller's key   ARGV[2] the applied field (fb:TYPE / out:METRIC)
 *   ARGV[3] event id   ARGV[4] pending member to remove, or ""   ARGV[5] segment, or ""
 *   ARGV[6] stream MAXLEN   ARGV[7] variant the router read (must still match)
 *   ARGV[8] the 16-byte trace id   ARGV[9] how far back to look for it (ms)
 *   ARGV[10] k: then k (field, delta, scope) triples, scope "v" (variant only) or "vs"
 *   (variant and segment); then the event's field/value strings.
 * Returns {"OK"}, {"DUP", first event id}, {"404"}, {"410"} or {"403", tenant}.
 */
#define SY_LUA_FEEDBACK SY_LUA_FENCE SY_LUA_TR_LIB                                                                        \
  "local tm = redis.call('TIME')\n"                                                                          \
  "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"                                \
  "tr_use(string.sub(KEYS[1], 1, -5))\n"                                                                     \
  "local r = tr_get(ARGV[8], string.sub(KEYS[2], -32), now, tonumber(ARGV[9]))\n" \
  "if not r or not r.t or not r.w or r.v ~= ARGV[7] then return {'404'} end\n"                               \
  "local t, w = tonumber(r.t), tonumber(r.w)\n"                                                              \
  "if now > t + w * 1000 then return {'410'} end\n"                                                          \
  "if r.tn and r.tn ~= '' and r.tn ~= ARGV[1] then return {'403', r.tn} end\n"                               \
  "if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then\n"                                           \
  "  return {'DUP', redis.call('HGET', KEYS[2], ARGV[2])}\n"                                                 \
  "end\n"                                                                                                    \
  "redis.call('PEXPIREAT', KEYS[2], t + (w + math.min(w, 3600)) * 1000)\n"                                   \
  "local k = tonumber(ARGV[10])\n"                                                                           \
  "for j = 0, k - 1 do\n"                                                                                    \
  "  local f, d, sc = ARGV[11+3*j], ARGV[12+3*j], ARGV[13+3*j]\n"                                            \
  "  redis.call('HINCRBYFLOAT', KEYS[3], f, d)\n"                                                            \
  "  if sc == 'vs' and ARGV[5] ~= '' then redis.call('HINCRBYFLOAT', KEYS[4], f, d) end\n"                   \
  "end\n"                                                                                                    \
  "if ARGV[5] ~= '' then redis.call('SADD', KEYS[5], ARGV[5]) end\n"                                         \
  "if ARGV[4] ~= '' then redis.call('ZREM', KEYS[6], ARGV[4]) end\n"                                         \
  "redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[6], '*', unpack(ARGV, 11 + 3 * k))\n"                     \
  "return {'OK'}\n"

/*
 * Counts as failures the trials of one experiment whose window closed without an
 * outcome (binary metric, missing: failure), and records an outcome event for each.
 *   KEYS[1] sy:{E}:pending   KEYS[2] the events stream
 *   ARGV[1] "sy:{E}:"   ARGV[2] at most this many   ARGV[3] stream MAXLEN
 *   ARGV[4] experiment id   ARGV[5] metric name   ARGV[6] router instance
 *   ARGV[7] schema version   ARGV[8] the router's time (RFC 3339), the events' timestamp
 *   ARGV[9] how far back to look for a trace record (ms)
 *   ARGV[10] (cluster mode) "sy:{E}:", where E's trace records are
 * Returns the number counted.
 */
#define SY_LUA_SWEEP SY_LUA_FENCE SY_LUA_TR_LIB                                                                  \
  "tr_use(ARGV[10])\n"                                                                              \
  "local tm = redis.call('TIME')\n"                                                                 \
  "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"                       \
  "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])\n"            \
  "for _, m in ipairs(due) do\n"                                                                    \
  "  local t, v, s = string.match(m, '^([^|]*)|([^|]*)|(.*)$')\n"                                   \
  "  if t then\n"                                                                                   \
  "    local vk = ARGV[1] .. 'v:' .. v\n"                                                           \
  "    redis.call('HINCRBYFLOAT', vk, 'n', 1)\n"                                                    \
  "    redis.call('HINCRBYFLOAT', vk, 'missing_failures', 1)\n"                                     \
  "    local tid = string.gsub(t, '%x%x', function(x) return string.char(tonumber(x, 16)) end)\n"   \
  "    local rec = tr_get(tid, t, now, tonumber(ARGV[9]))\n"                                        \
  "    local pr = rec and tonumber(rec.p or '')\n"                                                  \
  "    if pr and pr > 0 and pr <= 1 then\n"                                                         \
  "      redis.call('HINCRBYFLOAT', vk, 'iw', 1 / pr)\n"                                            \
  "      redis.call('HINCRBYFLOAT', vk, 'iw2', 1 / (pr * pr))\n"                                    \
  "    end\n"                                                                                       \
  "    if s ~= '' then\n"                                                                           \
  "      redis.call('HINCRBYFLOAT', vk .. ':s:' .. s, 'n', 1)\n"                                    \
  "      redis.call('HINCRBYFLOAT', vk .. ':s:' .. s, 'missing_failures', 1)\n"                     \
  "      redis.call('SADD', ARGV[1] .. 'segments', s)\n"                                            \
  "    end\n"                                                                                       \
  "    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'event_id', 'missing-' .. t,\n"     \
  "      'event_type', 'outcome', 'schema_version', ARGV[7], 'router_instance', ARGV[6],\n"         \
  "      'timestamp', ARGV[8], 'trace_id', t, 'experiment', ARGV[4], 'variant', v,\n"               \
  "      'outcome_metric_name', ARGV[5], 'outcome_metric_value', '0', 'outcome_missing', 'true')\n" \
  "  end\n"                                                                                         \
  "  redis.call('ZREM', KEYS[1], m)\n"                                                              \
  "end\n"                                                                                           \
  "return #due\n"

/*
 * One experiment's posterior refresh, and the router's view written for dashboards.
 *   KEYS[1] sy:{E}:meta   KEYS[2] (one server only) sy:experiments, which gets E
 *   ARGV[1] "sy:{E}:"   ARGV[2] experiment id
 *   ARGV[3] k variants, then their ids, then meta field/value strings
 * Returns {{n, sum, sumsq} per variant, {{segment, {n, sum, sumsq} per variant}, ...}}.
 */
#define SY_LUA_SYNC SY_LUA_FENCE                                                         \
  "local p, k = ARGV[1], tonumber(ARGV[3])\n"                                            \
  "if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[2]) end\n"                               \
  "if #ARGV > 3 + k then redis.call('HSET', KEYS[1], unpack(ARGV, 4 + k)) end\n"         \
  "local vs = {}\n"                                                                      \
  "for j = 1, k do\n"                                                                    \
  "  vs[j] = redis.call('HMGET', p .. 'v:' .. ARGV[3 + j], 'n', 'sum', 'sumsq')\n"       \
  "end\n"                                                                                \
  "local segs = redis.call('SRANDMEMBER', p .. 'segments', 1000)\n"                      \
  "local ss = {}\n"                                                                      \
  "for i, s in ipairs(segs) do\n"                                                        \
  "  local row = {s}\n"                                                                  \
  "  for j = 1, k do\n"                                                                  \
  "    row[j + 1] = redis.call('HMGET', p .. 'v:' .. ARGV[3 + j] .. ':s:' .. s, 'n', 'sum', 'sumsq')\n" \
  "  end\n"                                                                              \
  "  ss[i] = row\n"                                                                      \
  "end\n"                                                                                \
  "return {vs, ss}\n"

/*
 * An experiment's control state (proto/KEYS.md: sy:{E}:state), created by the first
 * router that serves it; later routers add only the variants it lacks.
 *   KEYS[1] sy:{E}:state   KEYS[2] sy:{E}:audit
 *   ARGV[1] now (ms)   ARGV[2] who (router instance)   ARGV[3] gate mode
 *   ARGV[4] experiment id   ARGV[5] k, then k (variant, initial stage) pairs
 * Returns the state's version.
 */
#define SY_LUA_STATE_INIT SY_LUA_FENCE                                                   \
  "local created = redis.call('HSETNX', KEYS[1], 'status', 'running')\n"                 \
  "local added = {}\n"                                                                   \
  "for j = 0, tonumber(ARGV[5]) - 1 do\n"                                                \
  "  local v, st = ARGV[6 + 2 * j], ARGV[7 + 2 * j]\n"                                   \
  "  if redis.call('HSETNX', KEYS[1], 'v:' .. v, st) == 1 then\n"                        \
  "    redis.call('HSET', KEYS[1], 'step:' .. v, '0', 'since:' .. v, ARGV[1])\n"          \
  "    added[#added + 1] = v\n"                                                          \
  "  end\n"                                                                              \
  "end\n"                                                                                \
  "redis.call('HSET', KEYS[1], 'mode', ARGV[3])\n"                                       \
  "if created == 1 then redis.call('HSET', KEYS[1], 'winner', '') end\n"                 \
  "if created == 0 and #added == 0 then return redis.call('HGET', KEYS[1], 'version') end\n" \
  "local ver = redis.call('HINCRBY', KEYS[1], 'version', 1)\n"                           \
  "redis.call('HSET', KEYS[1], 'changed_ms', ARGV[1])\n"                                  \
  "redis.call('XADD', KEYS[2], 'MAXLEN', '~', '10000', '*', 'decision', 'start',\n"      \
  "  'variant', table.concat(added, ','), 'by', ARGV[2], 'reason',\n"                    \
  "  created == 1 and 'first router serving the experiment' or 'new variants in the config',\n" \
  "  'stats', '{}', 'ts_ms', ARGV[1], 'version', tostring(ver))\n"                       \
  "redis.call('PUBLISH', '" SY_KEY_CONTROL "', cjson.encode({experiment = ARGV[4],\n"   \
  "  version = ver,\n"                                                                    \
  "  decision = 'start'}))\n"                                                            \
  "return tostring(ver)\n"

/*
 * A change of an experiment's control state, by the gate or an operator, with its
 * audit entry, its decision event and a message on the channel sy:control.
 *   KEYS[1] sy:{E}:state   KEYS[2] sy:{E}:audit   KEYS[3] the events stream
 *   ARGV[1] the version the change was computed from ("" = whatever it is now)
 *   ARGV[2] experiment id   ARGV[3] stream MAXLEN
 *   ARGV[4] n, then n state field/value pairs
 *   then m, then m audit field/value pairs (decision, variant, by, reason, stats, ts_ms)
 *   then the decision event's field/value pairs (may be none)
 * Returns {"OK", new version, audit entry id} or {"CONFLICT", current version}.
 */
#define SY_LUA_CONTROL SY_LUA_FENCE                                                      \
  "local cur = redis.call('HGET', KEYS[1], 'version') or '0'\n"                          \
  "if ARGV[1] ~= '' and ARGV[1] ~= cur then return {'CONFLICT', cur} end\n"              \
  "local n = tonumber(ARGV[4])\n"                                                        \
  "if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * n)) end\n"          \
  "local ver = redis.call('HINCRBY', KEYS[1], 'version', 1)\n"                           \
  "local tm = redis.call('TIME')\n"                                                      \
  "redis.call('HSET', KEYS[1], 'changed_ms',\n"                                           \
  "  tostring(tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)))\n"           \
  "local a = 5 + 2 * n\n"                                                                \
  "local m = tonumber(ARGV[a])\n"                                                        \
  "local f = {unpack(ARGV, a + 1, a + 2 * m)}\n"                                         \
  "f[#f + 1] = 'version'\n"                                                              \
  "f[#f + 1] = tostring(ver)\n"                                                          \
  "local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', '10000', '*', unpack(f))\n"     \
  "if #ARGV > a + 2 * m then\n"                                                          \
  "  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, a + 2 * m + 1))\n" \
  "end\n"                                                                                \
  "local msg = {experiment = ARGV[2], version = ver}\n"                                  \
  "for j = 0, m - 1 do msg[ARGV[a + 1 + 2 * j]] = ARGV[a + 2 + 2 * j] end\n"             \
  "redis.call('PUBLISH', '" SY_KEY_CONTROL "', cjson.encode(msg))\n"                      \
  "return {'OK', tostring(ver), id}\n"

/*
 * The gate's lease: one decider per experiment at a time. Taken if free, extended
 * if held by the caller.
 *   KEYS[1] sy:{E}:gate:lease   ARGV[1] the caller (router instance)   ARGV[2] TTL (ms)
 * Returns 1 if the caller holds the lease now, else 0.
 */
#define SY_LUA_LEASE SY_LUA_FENCE                                                        \
  "local cur = redis.call('GET', KEYS[1])\n"                                             \
  "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"        \
  "if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"    \
  "return 0\n"

/*
 * What the gate reads, in one round trip and one instant: the state, the Redis
 * clock and every variant's statistics hash.
 *   KEYS[1] sy:{E}:state   ARGV[1] "sy:{E}:"   ARGV[2..] variant ids
 * Returns {state (HGETALL), {sec, usec}, meta's updated_ms or "", HGETALL of each
 * variant in ARGV order}.
 */
#define SY_LUA_GATE_READ SY_LUA_FENCE                                                    \
  "local out = {redis.call('HGETALL', KEYS[1]), redis.call('TIME'),\n"                   \
  "  redis.call('HGET', ARGV[1] .. 'meta', 'updated_ms') or ''}\n"                       \
  "for j = 2, #ARGV do\n"                                                                \
  "  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'v:' .. ARGV[j])\n"                \
  "end\n"                                                                                \
  "return out\n"

/*
 * The sample-ratio check's baseline for the current allocation: every variant's
 * request count once routers have applied the state's latest version. Written only if
 * the state is still at that version; does not change the version.
 *   KEYS[1] sy:{E}:state   ARGV[1] version   ARGV[2..] field/value pairs (base:V)
 * Returns 1 if written, 0 if the state moved on.
 */
#define SY_LUA_BASELINE SY_LUA_FENCE                                                     \
  "if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end\n"             \
  "if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end\n"                 \
  "redis.call('HSET', KEYS[1], 'srm_version', ARGV[1])\n"                                \
  "return 1\n"

/*
 * The version registry (proto/KEYS.md: sy:{E}:versions): marks each (config hash,
 * variant, variant version) of E as serving now, keeping the first time any router did.
 *   KEYS[1] sy:{E}:versions   ARGV[1] now (ms)   ARGV[2..] fields CONFIG|VARIANT|VERSION
 * Returns how many fields it touched.
 */
#define SY_LUA_VERSIONS SY_LUA_FENCE                                                     \
  "for i = 2, #ARGV do\n"                                                                \
  "  local v = redis.call('HGET', KEYS[1], ARGV[i])\n"                                   \
  "  local first = v and string.match(v, '^(%d+)|') or ARGV[1]\n"                        \
  "  redis.call('HSET', KEYS[1], ARGV[i], first .. '|' .. ARGV[1])\n"                    \
  "end\n"                                                                                \
  "return #ARGV - 1\n"

#endif
