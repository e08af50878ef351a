// Package assign decides, without any shared state, which version of an
// application serves a user in an A/B/n test. Every replica, in every
// process, before and after a restart, computes the same answer from the
// same inputs, so assignments are sticky without a session store.
//
// # Algorithm
//
// Pick uses weighted rendezvous hashing (highest random weight). For a user
// u of application a, each candidate version i with weight w_i > 0 gets
//
//	score_i = -w_i / ln(u_i)
//
// where u_i in (0,1) is derived from a 64-bit SipHash-2-4 of (a, version
// name, user); see Unit. The highest score wins; ties, practically
// impossible, go to the lexically smaller name. The winner is version i
// with probability w_i / Σw, and, because a version's score depends only on
// its own name and weight, changing weights moves the fewest users:
// raising one weight only pulls users into that version, adding a version
// only pulls users into it, removing a version only moves its own users.
//
// Weights are relative (75/25 picks like 3/1). Weights that are NaN,
// infinite, zero or negative are treated as 0: such a version never wins.
// Validating weights is the caller's job; Pick does not report them.
//
// # Hash key (a contract)
//
// The SipHash key is fixed: the 16 ASCII bytes "iter8.tools/abn1", read
// as two little-endian 64-bit words k0 = "iter8.to", k1 = "ols/abn1".
// Changing the key, the encoding below or the mapping to u reassigns
// (almost) every user of every running experiment, so all of them are part
// of the contract and pinned by golden tests.
//
// # Encoding
//
// The hashed message is, for each of app, version and user in that order,
// the uvarint (encoding/binary) of the string's length in bytes followed by
// its bytes. Length prefixes make the encoding unambiguous: ("ab", "c") and
// ("a", "bc") hash differently. The message is streamed through the hash
// state, so hashing allocates nothing whatever the string lengths.
//
// The 64-bit hash h becomes u = ((h >> 11) + 0.5) / 2^53: the top 53 bits
// fill a float64 mantissa exactly and the half offset keeps u strictly
// inside (0,1), so ln(u) is finite and negative. (In float64 the sum
// rounds to even once h >> 11 >= 2^52; the one value it would round to 1,
// h >> 11 = 2^53-1, gives instead the largest float64 below 1.)
package assign
