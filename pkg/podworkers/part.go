package podworkers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// Worker is one worker Pod's side: where it puts its part.
type Worker struct {
	Client kubernetes.Interface
	// Namespace and Release name the experiment.
	Namespace, Release string
	// Index is the worker's (the Pod's JOB_COMPLETION_INDEX).
	Index int
	// Start is the load's start, as the experiment's run gave it.
	Start time.Time
	// Owner is the UID of the experiment's result Secret, which owns the
	// parts.
	Owner types.UID
}

// ParseStart reads a start given by the experiment's run (--worker-start).
func ParseStart(s string) (time.Time, error) {
	t, err := time.Parse(startLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not a time in RFC 3339 form (%s): %q", startLayout, s)
	}
	return t, nil
}

// Role is the worker's experiment.WorkerRole.
func (w *Worker) Role() *experiment.WorkerRole {
	return &experiment.WorkerRole{Index: w.Index, Start: w.Start, Put: w.put}
}

// put creates the worker's part Secret, or replaces an earlier one (of a
// retried Pod, or of an earlier run): the workers' Role may update its
// parts but not read them, and a Secret may be updated unconditionally.
func (w *Worker) put(ctx context.Context, part []byte) error {
	name := PartName(w.Release, w.Index)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: w.Namespace,
			Labels: map[string]string{
				store.LabelExperiment: w.Release,
				store.LabelManagedBy:  "iter8",
				store.LabelPart:       strconv.Itoa(w.Index),
			},
			Annotations:     map[string]string{annotationStart: w.Start.UTC().Format(startLayout)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: store.ResultSecretName(w.Release), UID: w.Owner}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{PartKey: part},
	}
	secrets := w.Client.CoreV1().Secrets(w.Namespace)
	_, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return nil
}
