package experiment

import (
	"context"
	"errors"
	"time"
)

// ErrDone is wrapped by a task's error to end a looping experiment
// successfully once the loop's tasks have run: a bandit that promoted a
// version has nothing left to do. The task counts as succeeded, and its
// error's text is the result's Stopped reason.
var ErrDone = errors.New("the experiment reached its end")

// ErrStopRun is wrapped by a task's error to fail the run at once, even
// when failedLoops is continue: a rollout that rolled back must not go on.
var ErrStopRun = errors.New("the run stops")

// Releases reads and changes the traffic weights of an application's
// release, made with charts/release, by helm upgrade. The core imports no
// Helm: pkg/action implements it for the bandit task.
type Releases interface {
	// Weights reads the release's newest revision: its versions in order
	// with their weights and readiness, and whether an operation on it is
	// pending.
	Weights(ctx context.Context, namespace, release string) (ReleaseState, error)
	// SetWeights upgrades the release with its own chart, reusing its
	// values, with the change's weights by version name, waiting up to
	// its timeout for the upgrade's gates; a failed upgrade is rolled back
	// to revision at once. It changes nothing and fails
	// when the newest revision is no longer the change's or not deployed,
	// or the versions are not exactly the weights' names. It returns the
	// new revision.
	SetWeights(ctx context.Context, namespace, release string, change WeightChange) (int, error)
	// RollBackPending rolls back the newest revision, pending because the
	// process that upgraded to it died, to the one before it, waiting up
	// to timeout. It changes nothing unless the newest revision is still
	// revision and pending.
	RollBackPending(ctx context.Context, namespace, release string, revision int, timeout time.Duration) error
}

// WeightChange is one upgrade of a release's weights.
type WeightChange struct {
	// Revision is the revision the weights were computed from.
	Revision int
	Weights  map[string]int
	Timeout  time.Duration
	// Description is the new revision's (`helm history` shows it).
	Description string
	// Step labels the new revision from its start, pending included (a
	// Helm release label, StepLabel), so that a later attempt knows an
	// upgrade left pending as its own.
	Step string
}

// StepLabel is the Helm release label that names the bandit step which
// made a revision.
const StepLabel = "iter8.tools/bandit-step"

// ReleaseState is a release's newest revision as Releases reads it.
type ReleaseState struct {
	Revision int
	// Status is Helm's (deployed, failed, pending-upgrade, ...); Pending
	// says that an install, upgrade or rollback is in progress.
	Status  string
	Pending bool
	// Description is the revision's, as `helm history` shows it.
	Description string
	// Step is the revision's StepLabel; Updated is when it was made.
	// PreviousStep is the StepLabel of the revision before: Helm copies a
	// release's labels into its later revisions, so a revision whose
	// label equals the one before did not set it.
	Step, PreviousStep string
	Updated            time.Time
	// Strategy is the release chart's (canary, blue-green, mirror, none).
	Strategy string
	// Versions in the release's values order.
	Versions []ReleaseVersion
}

// ReleaseVersion is one version of a release.
type ReleaseVersion struct {
	Name   string
	Weight int
	// Ready is the readiness gate's rule: its Deployment available and its
	// Service with ready endpoints; Reason says why not.
	Ready  bool
	Reason string
}

// Bandit is what the bandit task did, as `report` shows it.
type Bandit struct {
	// Release is the app's release as namespace/name.
	Release string `json:"release"`
	// Revision is the release's revision after the last loop.
	Revision int `json:"revision,omitempty"`
	// Weights are the weights after the last loop, by version.
	Weights map[string]int `json:"weights,omitempty"`
	// ProbabilityBest is the last loop's, by version.
	ProbabilityBest map[string]float64 `json:"probabilityBest,omitempty"`
	// Reason says what the last loop did and why.
	Reason string `json:"reason,omitempty"`
	// Promoted is the version given all traffic, once one is.
	Promoted string `json:"promoted,omitempty"`
}

// Rollout is what the rollout task did, as `report` and `release status`
// show it.
type Rollout struct {
	// Release is the app's release as namespace/name.
	Release   string `json:"release"`
	Candidate string `json:"candidate"`
	// Steps are the candidate's weights, one per step, the last 100.
	Steps []int `json:"steps"`
	// Step is the index in Steps of the step the candidate is at; -1
	// before the first.
	Step int `json:"step"`
	// From are the weights before the rollout's first step, which a
	// rollback restores.
	From map[string]int `json:"from,omitempty"`
	// Revision and Weights are the release's after the last loop.
	Revision int            `json:"revision,omitempty"`
	Weights  map[string]int `json:"weights,omitempty"`
	// Verdict is the last loop's analysis of the candidate: passed, or
	// why not.
	Verdict string `json:"verdict,omitempty"`
	// Reason says what the last loop did and why.
	Reason string `json:"reason,omitempty"`
	// PausedSince is when the rollout paused for an unready candidate.
	PausedSince *time.Time `json:"pausedSince,omitempty"`
	// NextStepAt is when the next loop, which may take the next step,
	// starts; nil once the rollout ended.
	NextStepAt *time.Time `json:"nextStepAt,omitempty"`
	// Outcome is set once the rollout ends: promoted or rolled back.
	Outcome string `json:"outcome,omitempty"`
}

// The outcomes of a rollout.
const (
	RolloutPromoted   = "promoted"
	RolloutRolledBack = "rolled back"
)
