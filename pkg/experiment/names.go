package experiment

import "regexp"

// versionName is the character set of a version's name: it reaches
// terminals, file names, HTTP headers and Kubernetes labels, so it is kept
// to what is safe in all of them (the release chart's dnsLabel names fit).
var versionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// VersionNameRule says what ValidVersionName accepts, for error messages.
const VersionNameRule = "must be 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit"

// ValidVersionName reports whether s may name a version.
func ValidVersionName(s string) bool {
	return versionName.MatchString(s)
}

// VersionName shows a version's name in messages and reports: the unnamed
// version is "default".
func VersionName(v string) string {
	if v == "" {
		return "default"
	}
	return v
}
