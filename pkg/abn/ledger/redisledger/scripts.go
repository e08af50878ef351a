package redisledger

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
)

// script is a Lua script that calls run by its SHA1 (EVALSHA), so that
// its source crosses the network only when Redis loads it. SHA1 is what
// Redis names scripts by, not a choice of ours.
type script struct{ src, sha string }

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}

// evalSha is the EVALSHA command that runs s on keys and args.
func (s *script) evalSha(keys, args []string) []string {
	cmd := make([]string, 0, 3+len(keys)+len(args))
	cmd = append(cmd, "EVALSHA", s.sha, strconv.Itoa(len(keys)))
	return append(append(cmd, keys...), args...)
}

// loadScripts loads the scripts into Redis' script cache (SCRIPT LOAD),
// which a restart empties.
func (l *Ledger) loadScripts(ctx context.Context) error {
	scripts := []*script{recordScript, exposeScript}
	cmds := make([][]string, len(scripts))
	for i, s := range scripts {
		cmds[i] = []string{"SCRIPT", "LOAD", s.src}
	}
	replies, err := l.client.Pipeline(ctx, cmds...)
	if err != nil {
		return fmt.Errorf("load script: %w", err)
	}
	for i, s := range scripts {
		// Redis names a script by the SHA1 of its source, as newScript does.
		if sha, ok := replies[i].(string); !ok || sha != s.sha {
			return fmt.Errorf("load script: Redis answered %v, want its SHA1 %s", replies[i], s.sha)
		}
	}
	return nil
}

// recordScript counts the writes of one application (see recordCall for
// KEYS and ARGV). For each write whose ID is new it does what
// ledgertest.Model.Record does, in the same order of floating-point
// operations, so that the sums equal the model's bit for bit:
//
//   - exposes the user in the write's bucket unless exposed before;
//   - adds the value to the transactions' moments, extremes, histogram and
//     the moments of the write's bucket;
//   - replaces the user's sum (old → old+v) in the users' moments and in
//     those of the user's cohort bucket, as ledger.Moments.Replace does.
//
// A batch mostly updates the same few summaries, so the script reads each
// field of a summary (and each user's sum) once, keeps it as a Lua number,
// and writes them all back with one HSET per hash at the end; numbers go
// out with %.17g, which reads back as the same double. The "#!lua" line
// makes Redis refuse the whole call up front when it is out of memory,
// instead of at its first write. It returns how many writes were new.
var recordScript = newScript(`#!lua
local function f(x) return string.format('%.17g', x) end
local function table_of(t, key)
  local c = t[key]
  if not c then c = {}; t[key] = c end
  return c
end
local aggs, sums, cohort_of, added, hist = {}, {}, {}, {}, {}
-- load caches the fields of the hash key, as numbers (0 when missing).
local function load(key, fields)
  local c, missing = table_of(aggs, key), {}
  for _, fl in ipairs(fields) do
    if c[fl] == nil then missing[#missing + 1] = fl end
  end
  if #missing > 0 then
    local got = redis.call('HMGET', key, unpack(missing))
    for j, fl in ipairs(missing) do c[fl] = tonumber(got[j]) or 0 end
  end
  return c
end
local function sadd(key, member)
  local k = key .. '\31' .. member
  if not added[k] then
    added[k] = true
    redis.call('SADD', key, member)
  end
end

local ttl, n = ARGV[1], 0
for i = 0, (#KEYS - 1) / 6 - 1 do
  local k, a = 1 + 6 * i, 1 + 6 * i
  if redis.call('SET', KEYS[k + 1], '1', 'PX', ttl, 'NX') then
    n = n + 1
    local users, cohorts, metrics, agg, sk = KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6]
    local version, user, metric, bucket, h = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 6]
    local v = tonumber(ARGV[a + 5])
    sadd(KEYS[1], version)
    sadd(metrics, metric)

    local cu = table_of(cohort_of, users)
    local cohort = cu[user]
    if not cohort then
      if redis.call('HSETNX', users, user, bucket) == 1 then
        redis.call('HINCRBY', cohorts, 'c\31' .. bucket, 1)
        cohort = bucket
      else
        cohort = redis.call('HGET', users, user)
      end
      cu[user] = cohort
    end

    local s = table_of(sums, sk)
    local old = s[user]
    if old == nil then
      local x = redis.call('HGET', sk, user)
      old = x and tonumber(x) or false
    end
    local first = old == false
    if first then old = 0 end
    local new = old + v
    s[user] = new

    local bt, bu = 'b\31' .. bucket .. '\31', 'b\31' .. cohort .. '\31'
    local btc, bts, btq, buc, bus, buq = bt .. 'tc', bt .. 'ts', bt .. 'tq', bu .. 'uc', bu .. 'us', bu .. 'uq'
    local g = load(agg, {'tc', 'ts', 'tq', 'tmin', 'tmax', 'uc', 'us', 'uq', btc, bts, btq, buc, bus, buq})
    if g.tc == 0 or v < g.tmin then g.tmin = v end
    if g.tc == 0 or v > g.tmax then g.tmax = v end
    g.tc, g.ts, g.tq = g.tc + 1, g.ts + v, g.tq + v * v
    g[btc], g[bts], g[btq] = g[btc] + 1, g[bts] + v, g[btq] + v * v
    if first then
      g.uc, g[buc] = g.uc + 1, g[buc] + 1
    end
    g.us, g.uq = g.us + (new - old), g.uq + (new * new - old * old)
    g[bus], g[buq] = g[bus] + (new - old), g[buq] + (new * new - old * old)
    local hk = table_of(hist, agg)
    hk[h] = (hk[h] or 0) + 1
  end
end

-- Every cached field was changed by some write: write them all back.
for key, c in pairs(aggs) do
  local args = {}
  for fl, x in pairs(c) do
    args[#args + 1] = fl
    args[#args + 1] = f(x)
  end
  redis.call('HSET', key, unpack(args))
end
for key, c in pairs(sums) do
  local args = {}
  for u, x in pairs(c) do
    args[#args + 1] = u
    args[#args + 1] = f(x)
  end
  redis.call('HSET', key, unpack(args))
end
for key, c in pairs(hist) do
  for fl, x in pairs(c) do redis.call('HINCRBY', key, fl, x) end
end
return n
`)

// exposeScript exposes users of one application: each user joins the
// cohort of the exposure's bucket unless exposed to the version before
// (see exposeCall for KEYS and ARGV). It returns how many were new.
var exposeScript = newScript(`#!lua
local n = 0
for i = 0, (#KEYS - 1) / 2 - 1 do
  local k, a = 1 + 2 * i, 3 * i
  redis.call('SADD', KEYS[1], ARGV[a + 1])
  if redis.call('HSETNX', KEYS[k + 1], ARGV[a + 2], ARGV[a + 3]) == 1 then
    redis.call('HINCRBY', KEYS[k + 2], 'c\31' .. ARGV[a + 3], 1)
    n = n + 1
  end
end
return n
`)
