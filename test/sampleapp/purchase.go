package sampleapp

import (
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
)

// PurchaseHeader carries the amount a converting user spends, on the
// answers to their requests (see [Options.Conversion]).
const PurchaseHeader = "X-Purchase"

// UserParam is the query parameter that names the user, as in /buy?user=U.
const UserParam = "user"

// Amounts of purchases are whole numbers in [MinAmount, MaxAmount].
const (
	MinAmount = 10
	MaxAmount = 99
)

// Purchase reports whether user converts on version when a share conversion
// of users does, and the amount they spend.
//
// Conversion is per user, not per request: the answer is a pure function of
// (version, user, conversion), a hash of the version and the user compared
// with conversion, so a user who converts does so on every request, and
// exactly the users whose hash falls below conversion do. Over many users
// the share that converts is conversion. The hash ignores the handler's
// Seed, so tests in other processes can predict every answer; the same user
// draws independently on different versions, and a user who converts at
// some share also converts at any higher one. The amount, from the same
// hash, is uniform over [MinAmount, MaxAmount] and fixed per (version, user).
func Purchase(version, user string, conversion float64) (amount int, ok bool) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(version))
	_, _ = h.Write([]byte{0}) // ("v1", "2") and ("v12", "") differ
	_, _ = h.Write([]byte(user))
	x := mix(h.Sum64())
	// The top 53 bits as a fraction in [0, 1).
	if float64(x>>11)/(1<<53) >= conversion {
		return 0, false
	}
	return MinAmount + int(mix(x)%(MaxAmount-MinAmount+1)), true
}

// validConversion checks Options.Conversion.
func validConversion(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 1 {
		return fmt.Errorf("conversion %v: want a fraction in [0, 1]", p)
	}
	return nil
}

// purchaseHeader returns the X-Purchase value for the request's user, or
// nil when the user does not convert or the request names none. The query is
// parsed only when some users convert, so the default costs nothing.
func (h *Handler) purchaseHeader(req *http.Request) []string {
	if h.conversion == 0 {
		return nil
	}
	user := req.URL.Query().Get(UserParam)
	if user == "" {
		return nil
	}
	a, ok := Purchase(h.version[0], user, h.conversion)
	if !ok {
		return nil
	}
	return []string{strconv.Itoa(a)}
}
