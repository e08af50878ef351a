package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// The cluster contract shared with the experiment chart and its Job.
const (
	// LabelExperiment labels both Secrets of an experiment with its release.
	LabelExperiment = "iter8.tools/experiment"
	// LabelRevision labels the Pods of a run with the release's revision.
	LabelRevision = "iter8.tools/revision"
	// LabelWorker marks the Pods of a load task's workers, which are not
	// the run's own.
	LabelWorker = "iter8.tools/worker"
	// LabelPart labels a worker's part Secret with the worker's index.
	LabelPart = "iter8.tools/part"
	// LabelManagedBy is set to "Helm" on both Secrets by the chart.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// SpecKey is the key of the rendered spec in the spec Secret.
	SpecKey = "experiment.yaml"
	// ResultsKey is the key of the results in the result Secret: a JSON
	// array of experiment.Result, one per revision, oldest first.
	ResultsKey = "results.json"
	// ResultBudget bounds the encoded results, well under the 1 MiB that
	// the API server allows a Secret's data, leaving room for the base64
	// of a JSON request and for the object's metadata.
	ResultBudget = 768 << 10
)

// SpecSecretName is the name of the Secret holding release's spec.
func SpecSecretName(release string) string { return release + "-spec" }

// ResultSecretName is the name of the Secret holding release's results.
func ResultSecretName(release string) string { return release + "-result" }

// conflictBackoff spreads concurrent writers out more than
// retry.DefaultRetry (5 steps), so that a handful of writers racing for one
// Secret all land: each round lets at least one of them through.
var conflictBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5}

// Secrets keeps an experiment that runs in a cluster: its spec in the Secret
// <release>-spec (created by Helm) and its results in <release>-result
// (created empty by the chart; only ever read and updated here, so that the
// Job's Role can name both Secrets and never needs create).
type Secrets struct {
	// Client reaches the cluster.
	Client kubernetes.Interface
	// Namespace and Release name the experiment.
	Namespace, Release string
	// Revision is the release revision of this run; WriteResult stores a
	// result whose Revision is 0 under it.
	Revision int
}

// String names the experiment and its namespace.
func (s *Secrets) String() string {
	return fmt.Sprintf("experiment %s in namespace %s", s.Release, s.Namespace)
}

// SpecDir is the working folder: a spec in a cluster names files of the
// Job's container (or of the machine that runs it).
func (s *Secrets) SpecDir() string { return "." }

// ReadSpec reads the rendered spec from the spec Secret.
func (s *Secrets) ReadSpec(ctx context.Context) ([]byte, error) {
	op := s.op("read spec")
	name := SpecSecretName(s.Release)
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s: secret %s not found: %w", op, name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get secret %s: %w", op, name, err)
	}
	data, ok := sec.Data[SpecKey]
	if !ok || len(data) == 0 {
		return nil, fmt.Errorf("%s: secret %s has no key %s", op, name, SpecKey)
	}
	return data, nil
}

// AdoptJob makes the result Secret the owner of the Job job (the chart's
// hook Job running this experiment), so that uninstalling the release
// garbage-collects the Job and its Pod even when the run fails and Helm
// keeps the Job. A strategic merge patch adds the reference to any the Job
// has, so the Role needs only patch on that one Job.
func (s *Secrets) AdoptJob(ctx context.Context, job string) error {
	op := s.op("adopt job")
	name := ResultSecretName(s.Release)
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: get secret %s: %w", op, name, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: name, UID: sec.UID}},
	}})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = s.Client.BatchV1().Jobs(s.Namespace).Patch(ctx, job, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("%s: patch job %s: %w", op, job, err)
	}
	return nil
}

// ReadResult reads the result of the newest revision; the error wraps
// ErrNoResult when there is none.
func (s *Secrets) ReadResult(ctx context.Context) (*experiment.Result, error) {
	return s.ReadRevision(ctx, 0)
}

// Watch reports changes of the result Secret on the returned channel (one
// pending signal at most) until ctx ends or the API server ends the watch,
// when the channel closes. Start it before reading, so that no change
// between the read and the watch is missed.
func (s *Secrets) Watch(ctx context.Context) (<-chan struct{}, error) {
	name := ResultSecretName(s.Release)
	w, err := s.Client.CoreV1().Secrets(s.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: watch secret %s: %w", s.op("watch result"), name, err)
	}
	changes := make(chan struct{}, 1)
	go func() {
		defer close(changes)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.ResultChan():
				if !ok {
					return
				}
				signal(changes)
			}
		}
	}()
	return changes, nil
}

// ReadRevision reads the result of revision (0: the newest); the error
// names the kept revisions when it is not one of them.
func (s *Secrets) ReadRevision(ctx context.Context, revision int) (*experiment.Result, error) {
	rs, err := s.ReadResults(ctx)
	if err != nil {
		return nil, err
	}
	if revision == 0 {
		return &rs[len(rs)-1], nil
	}
	kept := make([]string, len(rs))
	for i := range rs {
		if rs[i].Revision == revision {
			return &rs[i], nil
		}
		kept[i] = fmt.Sprint(rs[i].Revision)
	}
	return nil, fmt.Errorf("%s: no result of revision %d (kept: %s): %w",
		s.op("read result"), revision, strings.Join(kept, ", "), ErrNoResult)
}

// ReadResults reads the results of every kept revision, oldest first; the
// error wraps ErrNoResult when there are none.
func (s *Secrets) ReadResults(ctx context.Context) ([]experiment.Result, error) {
	op := s.op("read result")
	_, rs, err := s.get(ctx, op)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%s: secret %s: %w", op, ResultSecretName(s.Release), ErrNoResult)
	}
	return rs, nil
}

// WriteResult stores r in the result Secret: it replaces the entry of the
// same revision or appends one, keeping the entries ordered by revision. On
// a conflict it re-reads the Secret and tries again. When the results would
// exceed ResultBudget it drops, in turn, the histograms of older revisions
// (oldest first), older revisions (oldest first), and the histograms of r;
// it fails only when r alone is still over the budget.
func (s *Secrets) WriteResult(ctx context.Context, r *experiment.Result) error {
	op := s.op("write result")
	if r == nil {
		return fmt.Errorf("%s: no result", op)
	}
	if s.Revision != 0 && r.Revision != 0 && s.Revision != r.Revision {
		return fmt.Errorf("%s: result of revision %d given to the writer of revision %d", op, r.Revision, s.Revision)
	}
	revision := cmp.Or(r.Revision, s.Revision)
	return s.modify(ctx, op, revision, func(cur *experiment.Result) error {
		*cur = *r // modify sets its revision
		return nil
	})
}

// Update reads the result of the writer's revision (a zero Result of that
// revision when there is none), lets change modify it and stores it; on a
// conflict it reads again and calls change again, so that a concurrent
// writer's change is kept.
func (s *Secrets) Update(ctx context.Context, change func(*experiment.Result) error) error {
	if s.Revision == 0 {
		return fmt.Errorf("%s: the writer has no revision", s.op("update result"))
	}
	return s.modify(ctx, s.op("update result"), s.Revision, change)
}

// modify reads the results, lets change modify the entry of revision (a new
// one when there is none), and writes them back within ResultBudget,
// retrying on a conflict.
func (s *Secrets) modify(ctx context.Context, op string, revision int, change func(*experiment.Result) error) error {
	name := ResultSecretName(s.Release)
	err := retry.RetryOnConflict(conflictBackoff, func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		sec, rs, err := s.get(ctx, op)
		if err != nil {
			return err
		}
		i, found := slices.BinarySearchFunc(rs, revision, func(e experiment.Result, rev int) int { return e.Revision - rev })
		if !found {
			rs = slices.Insert(rs, i, experiment.Result{Revision: revision})
		}
		if err := change(&rs[i]); err != nil {
			return err
		}
		rs[i].Revision = revision
		data, err := fitBudget(rs, revision, ResultBudget)
		if err != nil {
			return fmt.Errorf("%s: secret %s: %w", op, name, err)
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[ResultsKey] = data
		_, err = s.Client.CoreV1().Secrets(s.Namespace).Update(ctx, sec, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return err // retried; named below if it persists
		}
		if err != nil {
			return fmt.Errorf("%s: update secret %s: %w", op, name, err)
		}
		return nil
	})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%s: update secret %s: gave up after %d conflicts: %w", op, name, conflictBackoff.Steps, err)
	}
	return err
}

// op names an operation on this experiment for errors.
func (s *Secrets) op(verb string) string {
	return verb + " of " + s.String()
}

// get reads the result Secret and decodes its results, sorted by revision.
func (s *Secrets) get(ctx context.Context, op string) (*corev1.Secret, []experiment.Result, error) {
	name := ResultSecretName(s.Release)
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("%s: secret %s not found: %w", op, name, ErrNoResult)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: get secret %s: %w", op, name, err)
	}
	rs, err := decodeResults(sec.Data[ResultsKey])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: secret %s key %s: %w", op, name, ResultsKey, err)
	}
	return sec, rs, nil
}

// decodeResults decodes the results array, sorted by revision; empty data is
// no results.
func decodeResults(data []byte) ([]experiment.Result, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var rs []experiment.Result
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("not a valid results array: %w", err)
	}
	slices.SortStableFunc(rs, func(a, b experiment.Result) int { return a.Revision - b.Revision })
	return rs, nil
}

// fitBudget encodes rs (sorted by revision) as a JSON array of at most budget
// bytes, dropping what WriteResult documents, never the entry of revision
// current. It may change rs.
func fitBudget(rs []experiment.Result, current, budget int) ([]byte, error) {
	enc := make([][]byte, len(rs))
	for i := range rs {
		b, err := json.Marshal(&rs[i])
		if err != nil {
			return nil, fmt.Errorf("encode result of revision %d: %w", rs[i].Revision, err)
		}
		enc[i] = b
	}
	size := func() int {
		n := 2 + max(len(enc)-1, 0) // brackets and commas
		for _, b := range enc {
			n += len(b)
		}
		return n
	}
	stripAt := func(i int) error {
		if !hasHistograms(&rs[i]) {
			return nil
		}
		stripHistograms(&rs[i])
		b, err := json.Marshal(&rs[i])
		if err != nil {
			return fmt.Errorf("encode result of revision %d: %w", rs[i].Revision, err)
		}
		enc[i] = b
		return nil
	}
	// Histograms of older revisions, oldest first.
	for i := 0; i < len(rs) && size() > budget; i++ {
		if rs[i].Revision == current {
			continue
		}
		if err := stripAt(i); err != nil {
			return nil, err
		}
	}
	// Older revisions, oldest first.
	for i := 0; i < len(rs) && size() > budget; {
		if rs[i].Revision == current {
			i++
			continue
		}
		rs = slices.Delete(rs, i, i+1)
		enc = slices.Delete(enc, i, i+1)
	}
	// The current revision's histograms.
	for i := 0; i < len(rs) && size() > budget; i++ {
		if err := stripAt(i); err != nil {
			return nil, err
		}
	}
	if n := size(); n > budget {
		return nil, fmt.Errorf("result of revision %d takes %d bytes without histograms, over the budget of %d", current, n, budget)
	}
	return append(append([]byte{'['}, bytes.Join(enc, []byte{','})...), ']'), nil
}

func hasHistograms(r *experiment.Result) bool {
	for _, v := range r.Versions {
		if len(v.Histograms) > 0 {
			return true
		}
	}
	return false
}

// stripHistograms drops r's histograms without touching the maps that r
// shares with its caller.
func stripHistograms(r *experiment.Result) {
	r.Versions = slices.Clone(r.Versions)
	for i := range r.Versions {
		r.Versions[i].Histograms = nil
	}
}

// Summary describes one experiment in a cluster, for listing.
type Summary struct {
	// Release and Namespace name the experiment.
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// Revision is the newest revision with a result; 0 when there is none.
	Revision int `json:"revision"`
	// Result is the newest revision's result; nil when there is none.
	Result *experiment.Result `json:"result,omitempty"`
	// Error says why the results could not be read; the others are still
	// listed.
	Error string `json:"error,omitempty"`
}

// listPageSize bounds each list call: result Secrets may be large.
const listPageSize = 50

// ListExperiments lists the experiments in namespace ("" for all namespaces)
// by their result Secrets (those labelled LabelExperiment and named
// ResultSecretName of its value), sorted by namespace and release. A result
// Secret that cannot be decoded is listed with its Error.
func ListExperiments(ctx context.Context, client kubernetes.Interface, namespace string) ([]Summary, error) {
	where := "all namespaces"
	if namespace != "" {
		where = "namespace " + namespace
	}
	out := []Summary{}
	// Workers' parts carry the label too, but are no experiments.
	opts := metav1.ListOptions{LabelSelector: LabelExperiment + ",!" + LabelPart, Limit: listPageSize}
	for {
		list, err := client.CoreV1().Secrets(namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list experiments in %s: %w", where, err)
		}
		for i := range list.Items {
			sec := &list.Items[i]
			release := sec.Labels[LabelExperiment]
			if release == "" || sec.Name != ResultSecretName(release) {
				continue // the spec Secret, or not ours
			}
			sum := Summary{Release: release, Namespace: sec.Namespace}
			rs, err := decodeResults(sec.Data[ResultsKey])
			switch {
			case err != nil:
				sum.Error = fmt.Sprintf("secret %s key %s: %v", sec.Name, ResultsKey, err)
			case len(rs) > 0:
				sum.Result = &rs[len(rs)-1]
				sum.Revision = sum.Result.Revision
			}
			out = append(out, sum)
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	slices.SortFunc(out, func(a, b Summary) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Release, b.Release)
	})
	return out, nil
}
