package action

import (
	"context"
	"errors"
	"fmt"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/pkg/store"
)

// ClusterExperiment is the experiment of release name in the cluster the
// front-end's flags choose; revision is the run's revision when it writes a
// result (0 otherwise).
func (c *Configuration) ClusterExperiment(name string, revision int) (store.Experiment, error) {
	cl, err := c.cluster()
	if err != nil {
		return nil, err
	}
	return &clusterExperiment{
		Secrets: &store.Secrets{Client: cl.Client, Namespace: cl.Namespace, Release: name, Revision: revision},
		cfg:     c,
	}, nil
}

var _ store.Experiment = (*clusterExperiment)(nil)

// clusterExperiment is an experiment kept in its release's Secrets, deleted
// by Helm's uninstall.
type clusterExperiment struct {
	*store.Secrets
	cfg *Configuration
}

// Delete uninstalls the release, within ctx's deadline (DefaultTimeout
// without one), and deletes what its runs created, which a garbage
// collector would remove in time: the hook Jobs that Helm keeps after a
// failed run, and their Pods.
func (e *clusterExperiment) Delete(ctx context.Context) ([]string, error) {
	cl, helm, err := e.cfg.helmAction()
	if err != nil {
		return nil, err
	}
	un := helmaction.NewUninstall(helm)
	un.Timeout = DefaultTimeout
	if deadline, ok := ctx.Deadline(); ok {
		un.Timeout = time.Until(deadline)
	}
	var removed []string
	_, uerr := un.Run(e.Release)
	notFound := uerr != nil && errors.Is(uerr, driver.ErrReleaseNotFound)
	switch {
	case uerr == nil:
		removed = append(removed, "release/"+e.Release)
	case !notFound:
		return nil, fmt.Errorf("uninstall %s in namespace %s: %w", e.Release, cl.Namespace, uerr)
	}
	leftovers, err := deleteRunObjects(ctx, cl, e.Release)
	removed = append(removed, leftovers...)
	if err != nil {
		return removed, fmt.Errorf("delete %s in namespace %s: %w", e.Release, cl.Namespace, err)
	}
	if notFound && len(leftovers) == 0 {
		return nil, fmt.Errorf("release %s not found in namespace %s", e.Release, cl.Namespace)
	}
	return removed, nil
}

// deleteRunObjects deletes the Jobs and Pods labelled with the experiment.
func deleteRunObjects(ctx context.Context, cl *Cluster, rel string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: store.LabelExperiment + "=" + rel}
	var removed []string
	jobs, err := cl.Client.BatchV1().Jobs(cl.Namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	// Background: a garbage collector, where there is one, takes the Pods;
	// they are deleted below for clusters (and tests) without one.
	bg := metav1.DeletePropagationBackground
	for _, j := range jobs.Items {
		err := cl.Client.BatchV1().Jobs(cl.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		switch {
		case err == nil:
			removed = append(removed, "Job/"+j.Name)
		case !apierrors.IsNotFound(err): // else gone meanwhile
			return removed, fmt.Errorf("delete job %s: %w", j.Name, err)
		}
	}
	pods, err := cl.Client.CoreV1().Pods(cl.Namespace).List(ctx, sel)
	if err != nil {
		return removed, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		err := cl.Client.CoreV1().Pods(cl.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		switch {
		case err == nil:
			removed = append(removed, "Pod/"+p.Name)
		case !apierrors.IsNotFound(err): // else gone meanwhile
			return removed, fmt.Errorf("delete pod %s: %w", p.Name, err)
		}
	}
	// The parts of load workers (podworkers), owned by the result Secret.
	partSel := metav1.ListOptions{LabelSelector: sel.LabelSelector + "," + store.LabelPart}
	parts, err := cl.Client.CoreV1().Secrets(cl.Namespace).List(ctx, partSel)
	if err != nil {
		return removed, fmt.Errorf("list worker parts: %w", err)
	}
	for _, p := range parts.Items {
		err := cl.Client.CoreV1().Secrets(cl.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		switch {
		case err == nil:
			removed = append(removed, "Secret/"+p.Name)
		case !apierrors.IsNotFound(err):
			return removed, fmt.Errorf("delete secret %s: %w", p.Name, err)
		}
	}
	return removed, nil
}
