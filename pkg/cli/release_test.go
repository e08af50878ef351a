package cli

import (
	"strings"
	"testing"
)

// TestReleaseCommands checks the release commands' arguments and flags; none
// of these cases reaches a cluster.
func TestReleaseCommands(t *testing.T) {
	noCluster := []string{"--kubeconfig", "/nonexistent/kubeconfig"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{name: "release help", args: []string{"release"}, stdout: "Available Commands:"},
		{name: "release unknown sub-command", args: []string{"release", "promotee"}, code: 2, stderr: `unknown command "promotee"`},
		{name: "status needs an app", args: []string{"release", "status"}, code: 2, stderr: "accepts 1 arg(s), received 0"},
		{name: "status one app", args: []string{"release", "status", "a", "b"}, code: 2, stderr: "accepts 1 arg(s), received 2"},
		{name: "status bad format", args: []string{"release", "status", "app", "-o", "html"}, code: 2, stderr: `release status: -o: unknown output format "html"`},
		{name: "status bad app", args: []string{"release", "status", "App_1"}, code: 2, stderr: `release status: app name "App_1"`},
		{name: "status without a cluster", args: append([]string{"release", "status", "app"}, noCluster...), code: 2, stderr: "release status app: connect to the cluster"},
		{name: "promote needs a version", args: []string{"release", "promote", "app"}, code: 2, stderr: "accepts 2 arg(s), received 1"},
		{name: "promote bad version", args: []string{"release", "promote", "app", "V2"}, code: 2, stderr: `release promote: version "V2"`},
		{name: "promote zero timeout", args: []string{"release", "promote", "app", "v2", "--timeout", "0s"}, code: 2, stderr: "--timeout must be above 0"},
		{name: "promote bad timeout", args: []string{"release", "promote", "app", "v2", "--timeout", "soon"}, code: 2, stderr: `invalid argument "soon" for "--timeout"`},
		{name: "promote bad format", args: []string{"release", "promote", "app", "v2", "-o", "xml"}, code: 2, stderr: `unknown output format "xml"`},
		{name: "promote without a cluster", args: append([]string{"release", "promote", "app", "v2", "--atomic", "--wait"}, noCluster...), code: 2, stderr: "release promote app v2: connect to the cluster"},
		{name: "rollback needs an app", args: []string{"release", "rollback"}, code: 2, stderr: "accepts between 1 and 2 arg(s), received 0"},
		{name: "rollback bad revision", args: []string{"release", "rollback", "app", "two"}, code: 2, stderr: `revision "two": want a whole number of at least 1`},
		{name: "rollback revision zero", args: []string{"release", "rollback", "app", "0"}, code: 2, stderr: `revision "0"`},
		{name: "rollback negative timeout", args: []string{"release", "rollback", "app", "--timeout", "-1s"}, code: 2, stderr: "--timeout must be above 0"},
		{name: "rollback without a cluster", args: append([]string{"release", "rollback", "app", "2", "--wait"}, noCluster...), code: 2, stderr: "release rollback app: connect to the cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := execute(t, tt.args...)
			if code != tt.code {
				t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", tt.args, code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("%v: stderr %q, want it to contain %q", tt.args, stderr, tt.stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("%v: stdout %q, want it to contain %q", tt.args, stdout, tt.stdout)
			}
		})
	}
}

// TestReleaseHelmFrontend checks that the helm front-end has the same
// commands, named as helm iter8.
func TestReleaseHelmFrontend(t *testing.T) {
	var out strings.Builder
	root := NewRootCmd(Helm(), IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	root.SetArgs([]string{"release", "promote", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"helm iter8 release promote APP VERSION", "--atomic", "--wait", "--timeout"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("helm iter8 release promote --help: no %q in\n%s", want, out.String())
		}
	}
}
