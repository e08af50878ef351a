package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReadLog reads the log lines kept with the result of revision (0: the
// newest). When the run stored none (it failed before it could), it reads
// the log of the run's Pod, where a kubelet serves it, which says why.
func (s *Secrets) ReadLog(ctx context.Context, revision int) ([]string, error) {
	r, err := s.ReadRevision(ctx, revision)
	switch {
	case err == nil && len(r.Log) > 0:
		return r.Log, nil
	case err == nil:
		revision = r.Revision // the Pod of that run, not of a newer one
		err = fmt.Errorf("the result of %s holds no log", s)
	case !errors.Is(err, ErrNoResult):
		return nil, err
	}
	lines, perr := s.podLog(ctx, revision)
	if perr != nil {
		return nil, fmt.Errorf("%w; and the pod log: %w", err, perr)
	}
	return lines, nil
}

// podLog reads the log of the newest Pod of the experiment's runs (of
// revision, when not 0). It needs a kubelet that serves logs.
func (s *Secrets) podLog(ctx context.Context, revision int) ([]string, error) {
	sel := LabelExperiment + "=" + s.Release + ",!" + LabelWorker
	if revision != 0 {
		sel += fmt.Sprintf(",%s=%d", LabelRevision, revision)
	}
	pods, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("no pod of experiment %s in namespace %s", s.Release, s.Namespace)
	}
	newest := slices.MaxFunc(pods.Items, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	data, err := s.Client.CoreV1().Pods(s.Namespace).GetLogs(newest.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("log of pod %s: %w", newest.Name, err)
	}
	text := strings.TrimRight(string(data), "\n")
	if text == "" {
		return nil, fmt.Errorf("log of pod %s is empty", newest.Name)
	}
	return strings.Split(text, "\n"), nil
}
