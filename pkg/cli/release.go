package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

const releaseDesc = `Show, promote, roll out and roll back an app's release of the release
chart (charts/release), which routes the app's versions through a Gateway
API HTTPRoute or an Istio VirtualService named after the app.

Examples:
  %[1]s release status app -n team-a
  %[1]s release promote app v2 --wait
  %[1]s release rollout app v2 --url v2=http://app-v2.team-a:8080/ --slo http/error-rate<=0.01
  %[1]s release rollback app --wait`

const releaseStatusDesc = `Show what an app's route sends where, and how ready each version is.

For each version (each backend of the HTTPRoute, else the VirtualService,
named APP) it shows the backend, weight and share of traffic, header
matches, mirror percent, and readiness: its Deployment Available at its
current generation with ready/desired replicas, and its Service's ready
endpoints. Then the last verdict of each gate of the release, the bandit
experiments in the namespace that move the release's weights (state, last
weights and P(best), the reason and why it stopped), the rollouts that step
them (step, next step, last verdict, pause, reason), and the conditions a
controller set on the route.

Exits 2 when APP has no route in the namespace.

Examples:
  %[1]s release status app
  %[1]s release status app -n team-a -o json`

const releasePromoteDesc = `Send all of an app's traffic to VERSION: the equivalent of

  helm upgrade RELEASE CHART --reuse-values   (with VERSION's weight 100
                                               and every other version's 0)

with the release's own chart from its last revision. RELEASE is the one that
owns the route named APP. The release's gates run as in any upgrade; with
--atomic a failed gate rolls the weights back. Prints what changed.

Examples:
  %[1]s release promote app v2 --wait
  %[1]s release promote app v2 --atomic --timeout 3m`

const releaseRollbackDesc = `Roll the release of an app back, as helm rollback does: to REVISION, or
by default to the revision before the newest.

Examples:
  %[1]s release rollback app --wait
  %[1]s release rollback app 3`

func newReleaseCmd(e *cmdEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Show, promote, roll out and roll back an app's release (charts/release)",
		Long:  fmt.Sprintf(releaseDesc, e.name),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newReleaseStatusCmd(e), newReleasePromoteCmd(e), newReleaseRollbackCmd(e), newReleaseRolloutCmd(e))
	return cmd
}

// addOutputFlag adds -o for text, json or yaml.
func addOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "text", "output format: text, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp
	})
}
