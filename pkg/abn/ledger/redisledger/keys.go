package redisledger

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// sep joins names inside keys and fields; ledger names cannot hold it.
const sep = "\x1f"

// root starts every key, so that the ledger can share a database.
const root = "iter8:abn"

// appKeys builds the keys of one application.
type appKeys struct{ prefix string }

func keysOf(app string) appKeys {
	// Redis hashes the text between the first '{' and the next '}'; an app
	// holding braces would cut that short, or leave it empty (then the whole
	// key is hashed and an app's keys scatter), so such an app is tagged by
	// the hash of its name and named after the tag.
	if !strings.ContainsAny(app, "{}") {
		return appKeys{root + sep + "{" + app + "}"}
	}
	h := sha256.Sum256([]byte(app))
	return appKeys{root + sep + "{" + hex.EncodeToString(h[:16]) + "}" + sep + app}
}

func (k appKeys) versions() string { return k.prefix + sep + "versions" }

func (k appKeys) version(v, what string) string {
	return k.prefix + sep + "v" + sep + v + sep + what
}

func (k appKeys) users(v string) string   { return k.version(v, "users") }
func (k appKeys) cohorts(v string) string { return k.version(v, "cohorts") }
func (k appKeys) metrics(v string) string { return k.version(v, "metrics") }
func (k appKeys) id(id string) string     { return k.prefix + sep + "id" + sep + id }
func (k appKeys) agg(v, m string) string  { return k.metric(v, m, "agg") }
func (k appKeys) sums(v, m string) string { return k.metric(v, m, "sums") }
func (k appKeys) metric(v, m, what string) string {
	return k.prefix + sep + "m" + sep + v + sep + m + sep + what
}

// checkKey is written by Check; it expires, so checks leave nothing behind.
const checkKey = root + sep + "check"

// bucketField names a bucket in fields: its start in Unix nanoseconds.
// Lua keeps it a string (a double could not hold it exactly).
func bucketField(start time.Time) string { return strconv.FormatInt(start.UnixNano(), 10) }

// bucketStart reads bucketField back.
func bucketStart(f string) (time.Time, error) {
	ns, err := strconv.ParseInt(f, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, ns).UTC(), nil
}
