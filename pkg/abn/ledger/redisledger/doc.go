// Package redisledger is the ledger.Ledger that several replicas of the
// A/B/n service share: every write is aggregated into running summaries
// inside Redis by one Lua script call, so replicas never read, modify and
// write summaries themselves and cannot race.
//
// # Durability
//
// A write is acknowledged only once durable. Open therefore reads the
// server's settings with CONFIG GET and accepts only
//
//	appendonly yes
//	appendfsync always
//	maxmemory-policy noeviction
//
// With appendfsync always, Redis writes each command to the append-only
// file and fsyncs it before it sends the reply, so an acknowledged write
// survives a crash of Redis or of its machine. With everysec, up to a
// second of acknowledged writes is lost on a crash; with no, more; and
// RDB snapshots alone lose everything since the last one. Redis 7.0 (the
// version Debian ships) has no WAITAOF to ask for fsync per call, so the
// setting is the only way. Open fails, naming the setting, its value and
// what is needed, when it differs, and says so when CONFIG is disabled
// (as managed Redis services often do): the settings cannot be checked.
// Any eviction policy but noeviction would drop keys when memory runs
// short (acknowledged summaries, or the write IDs that keep retries from
// counting twice); with noeviction a full Redis refuses writes, which the
// service reports as unavailable and clients retry. Replication is not
// durability here: a replica that is promoted after a
// crash may lack the last acknowledged writes.
//
// # Keys
//
// All keys of one application live in one hash slot, with the hash tag
// {namespace/name}, so that one script call can touch all of them (Redis
// Cluster requires it). Names inside keys are joined with the byte 0x1f,
// which ledger names cannot hold (they refuse control characters), so no
// two different (version, metric, user) tuples share a key or field. With
// P = "iter8:abn" 0x1f "{" app "}":
//
//	P 0x1f "versions"                         set: the app's versions (the index Summary reads)
//	P 0x1f "v" 0x1f ver 0x1f "users"          hash: user → cohort bucket (Unix ns)
//	P 0x1f "v" 0x1f ver 0x1f "cohorts"        hash: "c" 0x1f bucket → users first exposed then
//	P 0x1f "v" 0x1f ver 0x1f "metrics"        set: the version's metrics
//	P 0x1f "m" 0x1f ver 0x1f metric 0x1f "agg"  hash: the metric's running summary
//	P 0x1f "m" 0x1f ver 0x1f metric 0x1f "sums" hash: user → sum of the user's values
//	"iter8:abn" 0x1f "touched"                sorted set: app → when last written or exposed (Unix ms; Forget)
//	P 0x1f "id" 0x1f id                       string with a TTL: the write was counted
//
// An application whose name holds '{' or '}' would not make a usable hash
// tag; its tag is then a hash of the name, and the name follows the tag.
//
// # Arithmetic
//
// Lua numbers in Redis are IEEE doubles, as Go's float64 are, and the
// script computes exactly what ledger.Moments and ledger.Transactions do,
// operation for operation; it stores each number with %.17g, which reads
// back as the same double. HINCRBYFLOAT is not used: it computes in long
// double and prints with 17 digits, which differs from float64 sums in the
// last bits. The histogram bucket of a value is computed in Go with
// ledger.HistogramBucket and passed to the script, so Go and Lua cannot
// disagree on logarithms.
//
// # Retries
//
// A write's ID is remembered (SET NX with the dedupe window as TTL) in the
// same script call that counts it, so a write is counted exactly when its
// ID is first stored. The Redis client (package resp, a small RESP2
// client of our own in place of go-redis, whose size the binary could not
// afford) sends a call again, up to three times on a new connection, when
// the connection broke or timed out or Redis is briefly unable (LOADING,
// READONLY and the like), as go-redis did; the service's clients retry
// requests too. Either way a retried write finds its ID and counts
// nothing, and every other call is idempotent (exposures, ZADD of the
// touched time, reads, Forget's DEL), so retries are safe. A call whose
// ctx ends is not retried. IDs are remembered per application: the same
// ID in two applications counts in both.
//
// # Atomicity
//
// Writes are validated before anything is sent, and an invalid write fails
// the whole Record with its *ledger.FieldError. Each script call applies
// the writes of one application (at most MaxScriptWrites of them) as one
// atomic step; a Record that spans applications or is longer sends several
// calls in one pipeline. If Record fails part way, some calls may have
// been applied; retrying the same writes completes it without counting
// any twice.
package redisledger
