package experiment

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SecretNameRule says what CheckSecretName accepts, for error messages.
const SecretNameRule = "an environment variable (letters, digits, '_', '.' and '-', not starting with a digit)"

// CheckSecretName validates the name of a user's secret, which a task looks
// up through Env.Secret: locally an environment variable, in a cluster an env
// entry of the Job (secretKeyRef or envFrom). The rule is Kubernetes's for a
// container's env name (validation.IsEnvVarName), so every name it accepts
// can be set on a Job, and names with '.' or '-' that a Secret's keys often
// have are not refused. A URL, a "Bearer ..." header or a token with '/',
// '+' or '=' fails it, so a value pasted where its name belongs is caught;
// the error never shows what was written, as it may be the secret itself.
func CheckSecretName(name string, path *field.Path) *field.Error {
	switch {
	case name == "":
		return field.Required(path, "the name of a secret: "+SecretNameRule)
	case len(validation.IsEnvVarName(name)) > 0:
		return field.Invalid(path, field.OmitValueType{}, "must be the name of a secret, not its value: "+SecretNameRule)
	}
	return nil
}

// LookupSecret returns the value of a user's secret through lookup
// (Env.Secret; nil finds none). An empty value is an error too: it would
// only fail later, at the service, for a reason that names no secret. The
// error names the secret and where it comes from, never a value.
func LookupSecret(lookup func(string) (string, bool), name string) (string, error) {
	var v string
	var ok bool
	if lookup != nil {
		v, ok = lookup(name)
	}
	switch {
	case !ok:
		return "", fmt.Errorf("secret %s is not set (locally an environment variable; in a cluster an env entry of the Job, from a Secret)", name)
	case v == "":
		return "", fmt.Errorf("secret %s is empty", name)
	}
	return v, nil
}
