// Package boltledger is the single-replica ledger.Ledger, kept in one bbolt
// file.
//
// # Durability
//
// bbolt fsyncs every committed transaction (NoSync is never set), and
// Record and Expose return nil only after their transaction committed.
// Concurrent Record calls are coalesced with DB.Batch, so that one fsync
// acknowledges many callers; Expose calls (the service's exposer sends
// batches already) run one at a time, each in a transaction of its own.
// Batch may run a call's function again (alone,
// when another function of the batch failed), so each function starts from
// what the transaction holds: inputs are validated before, the dedupe check
// and every read-modify-write happen inside the transaction.
//
// # Layout
//
// Summaries are aggregated on write: a write touches a handful of small
// keys, and Summary reads O(versions × metrics × (buckets + histogram
// bins)) keys, never the writes themselves.
//
//	meta/                      format → "2"; check → time of the last Check
//	ids/<app>\x00<id>          → recorded at (8 bytes, Unix ns)
//	idtimes/<at><app>\x00<id>  → "" (the same IDs in the order they were recorded)
//	journal/<seq>              → cohort (a time key), then app and version
//	                             each after its length (uvarint), then user:
//	                             new users that Expose recorded, until a
//	                             merge round trims them
//	apps/<app>/\x00touched     → when a write or exposure was last recorded (Forget)
//	apps/<app>/<version>/
//	    exposed                → users exposed to the version (int64)
//	    users/<user>           → the user's cohort (a time key)
//	    cohorts/<start>        → users first exposed in the bucket (int64)
//	    metrics/<metric>/
//	        summary            → transactions (count, sum, sum of squares,
//	                             min, max) and users (count, sum, sum of
//	                             squares): 64 bytes
//	        histogram/<bin>    → count (int64); bin "z" is zero, "p" or "n"
//	                             and the index (int32) a sign's bin
//	        buckets/<start>    → transactions and users moments: 48 bytes
//	        sums/<user>        → the sum of the user's writes (float64)
//
// # Journal
//
// Putting a new user under users/ costs a page of that bucket: user IDs
// are random, so each lands on a page that the batch has not touched,
// which bbolt reads, rewrites and fsyncs whole. Expose, which records
// every new user the service sees, therefore appends them to the journal
// (dirtying only its last pages) and counts them at once. The ledger keeps
// an in-memory hint from a hash of (app, version, user) to its entry,
// checked against the entry itself, so that a lookup finds a user in
// either place, users/ first. A hint is the low 32 bits of the hash and of
// the entry's sequence number (10-20 bytes a user in memory).
//
// Once the journal holds 65,536 hinted users, a merge round starts; each
// Expose call then does one step of it: read and sort a part of the
// round's entries (keeping their sequence numbers only, 8 bytes a user,
// and reading each sorted run's smallest key back from the journal when
// merging); put some of them, smallest first, into users/, where
// many share each page, in up to 4 transactions of about 64 or more; or,
// at the end, delete the round's entries, oldest first (a call that runs
// out of users to merge trims too). Reading and trimming cover at least four
// times as many users as the call added, merging twice as many, so the
// journal stays bounded. A failed step is Check's error, and Check
// retries it. Record's own new users go straight to users/: DB.Batch may
// run its functions twice. Open reads the journal back, so nothing in it
// is lost by a crash; users a round had merged before a crash are merged
// again, harmlessly. Format 1 files (no journal) are upgraded by Open.
//
// Integers are big-endian; floats are their IEEE 754 bits, so that what is
// read back is bit for bit what was computed. A time key is the Unix
// seconds with the sign bit flipped followed by the nanoseconds (12
// bytes), so that keys sort in time order and Summary needs no sort.
//
// The arithmetic is the model's (ledgertest.Model): ledger.Moments.Add and
// Replace, Transactions.Add, Histogram.Add and Options.BucketOf, applied
// in the order of the writes, so sums agree with it bit for bit.
//
// # Dedupe
//
// A write's ID is remembered, per application, with the time it was recorded (ids and
// idtimes). A write whose ID is remembered is acknowledged and not counted,
// whatever it holds. IDs recorded more than Options.DedupeWindow ago are
// forgotten lazily: each Record transaction deletes at most 2×len(writes)+64
// of the oldest expired IDs, which bounds its extra work and still forgets
// IDs faster than they arrive. A retry later than the window may therefore
// count twice (as ledger.Options says), and an ID may be remembered somewhat
// longer than the window when the ledger is idle.
package boltledger
