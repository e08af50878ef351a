package assign

import (
	"encoding/binary"
	"math"
)

// keyString is the fixed SipHash key. It is a contract: changing it
// reassigns almost every user (see the package documentation).
const keyString = "iter8.tools/abn1"

// k0 and k1 are keyString as two little-endian words, as SipHash reads a
// 16-byte key.
var (
	k0 = binary.LittleEndian.Uint64([]byte(keyString[:8]))
	k1 = binary.LittleEndian.Uint64([]byte(keyString[8:]))
)

// Candidate is a version that may serve a user, with its relative weight.
// Versions are identified by Name only.
type Candidate struct {
	// Name identifies the version; it is hashed, so renaming a version
	// reshuffles its users.
	Name string
	// Weight is relative to the other candidates' weights. NaN, ±Inf,
	// zero and negative weights count as 0: the version never wins.
	Weight float64
}

// stackMsg is the size of the stack buffer for the encoded message; typical
// app, version and user names fit, longer ones are streamed.
const stackMsg = 192

// hash is SipHash-2-4 under the fixed key of the length-prefixed encoding
// of (app, version, user). It never allocates: short messages are encoded
// into a stack buffer and hashed in one pass (fast), longer ones are
// streamed through the hash state (same result, tested).
func hash(app, version, user string) uint64 {
	if len(app)+len(version)+len(user)+3*binary.MaxVarintLen64 <= stackMsg {
		var buf [stackMsg]byte
		msg := buf[:0]
		msg = binary.AppendUvarint(msg, uint64(len(app)))
		msg = append(msg, app...)
		msg = binary.AppendUvarint(msg, uint64(len(version)))
		msg = append(msg, version...)
		msg = binary.AppendUvarint(msg, uint64(len(user)))
		msg = append(msg, user...)
		return sipHash24(k0, k1, msg)
	}
	return hashStream(app, version, user)
}

// hashStream is hash for messages of any length, streamed through the
// hash state.
func hashStream(app, version, user string) uint64 {
	s := newSip(k0, k1)
	s.writeUvarint(uint64(len(app)))
	s.writeString(app)
	s.writeUvarint(uint64(len(version)))
	s.writeString(version)
	s.writeUvarint(uint64(len(user)))
	s.writeString(user)
	return s.sum64()
}

// Unit returns the pseudo-random number in (0,1) that Pick draws for user
// of app on version. It is exported so that golden vectors can pin it: it
// must never change between releases, processes or replicas.
func Unit(app, version, user string) float64 {
	return unitFromHash(hash(app, version, user))
}

// unitFromHash maps a hash to u = ((h >> 11) + 0.5) / 2^53. The top 53 bits
// fill a float64 mantissa exactly and the half offset keeps u off 0. In
// float64, though, x + 0.5 rounds to an integer once x >= 2^52, and for the
// single value x = 2^53-1 it rounds up to 2^53, which would give u = 1 and
// ln(u) = 0; that one value is pinned to the largest float64 below 1 so
// that u stays strictly inside (0,1).
func unitFromHash(h uint64) float64 {
	u := (float64(h>>11) + 0.5) / (1 << 53)
	if u >= 1 {
		u = 1 - 0x1p-53
	}
	return u
}

// usable reports whether w can win: finite and positive.
func usable(w float64) bool {
	return w > 0 && !math.IsInf(w, 1) // NaN fails w > 0
}

// Pick returns the version that serves user of app among candidates, by
// weighted rendezvous hashing: the same inputs always give the same
// version, each version wins for a share of users equal to its share of
// the total weight, and changing weights moves as few users as possible.
// ok is false when no candidate has a usable (finite, positive) weight.
// Pick does not allocate.
func Pick(app, user string, candidates []Candidate) (name string, ok bool) {
	best := math.Inf(-1)
	for _, c := range candidates {
		if !usable(c.Weight) {
			continue
		}
		// ln(u) < 0 since u < 1, so the score is positive and grows with
		// the weight; -w/ln(u) is w times an Exp(1)-reciprocal, which makes
		// P(win) = w / Σw.
		score := -c.Weight / math.Log(Unit(app, c.Name, user))
		if !ok || score > best || (score == best && c.Name < name) {
			best, name, ok = score, c.Name, true
		}
	}
	return name, ok
}
