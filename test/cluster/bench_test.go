package cluster_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/podworkers"
	"github.com/iter8-tools/iter8/pkg/store"
)

// BenchmarkInstallToResult measures what a cluster experiment adds to its
// load: the time from starting `helm install` (hook Job included) to a
// readable completed result, minus the http task's own duration and minus
// the node harness's measured latency (it stands in for a kubelet and the
// Job controller). It reports the median of the iterations (run with
// -benchtime=5x for the median of 5) as s-overhead, and the medians of the
// parts.
func BenchmarkInstallToResult(b *testing.B) {
	benchToResult(b, "bench", func(release string, values ...string) outcome {
		return helm(b, append([]string{"install", release, chartDir, "-n", "bench", "--timeout", "90s"}, values...)...)
	})
}

// BenchmarkLaunchToResult is BenchmarkInstallToResult through `kubectl
// iter8 launch` (the built kubectl-iter8, as kubectl runs it).
func BenchmarkLaunchToResult(b *testing.B) {
	benchToResult(b, "bench-launch", func(release string, values ...string) outcome {
		args := append([]string{"launch", release, "-n", "bench-launch", "--kubeconfig", env.Kubeconfig}, values...)
		return command(b, nil, filepath.Join(binDir, "kubectl-iter8"), args...)
	})
}

// benchToResult measures install(release, values...) to a readable result
// in namespace ns; see BenchmarkInstallToResult.
func benchToResult(b *testing.B, ns string, install func(release string, values ...string) outcome) {
	namespace(b, ns)
	app := sampleApp(b, "fixed:1ms")
	var totals, loads, harnessLat, overheads, runs []time.Duration
	for i := 0; b.Loop(); i++ {
		release := "b" + itoa(i)
		start := time.Now()
		o := install(release, "--set", "tasks={http}", "--set", "http.url="+app.URL+"/",
			"--set", "http.numRequests=200", "--set", "http.connections=2")
		if o.Code != 0 {
			b.Fatalf("install: %s", o)
		}
		s := &store.Secrets{Client: env.Clientset, Namespace: ns, Release: release}
		res, err := s.ReadResult(context.Background())
		if err != nil || !res.Completed() || res.Failed() {
			b.Fatalf("result after helm install: %+v, %v", res, err)
		}
		total := time.Since(start)
		r := lastRun(b, ns, release)
		load := res.Tasks[0].Duration
		totals, loads, harnessLat = append(totals, total), append(loads, load), append(harnessLat, r.Overhead())
		overheads = append(overheads, total-load-r.Overhead())
		runs = append(runs, r.Exited.Sub(r.Started)-load)
	}
	b.ReportMetric(median(overheads).Seconds(), "s-overhead")
	b.ReportMetric(median(totals).Seconds(), "s-total")
	b.ReportMetric(median(loads).Seconds(), "s-load")
	b.ReportMetric(median(harnessLat).Seconds(), "s-harness")
	// The run's process without its load: start-up, Secrets, result writes.
	b.ReportMetric(median(runs).Seconds(), "s-run")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkWorkerPods measures the Indexed Job path of a load task with
// workers on the node harness: each worker sends one request, so the http
// task's duration is the path's own cost (the Job made, its Pods run, each
// part stored, read and merged) plus the fixed lead before the workers'
// common start (podworkers.DefaultLead), which is taken off. It reports
// the median over the iterations as s-path and, divided by the workers,
// ms-per-worker.
func BenchmarkWorkerPods(b *testing.B) {
	app := sampleApp(b, "fixed:1ms")
	for _, n := range []int{2, 8, 32} {
		b.Run("workers="+itoa(n), func(b *testing.B) {
			ns := "bench-workers-" + itoa(n)
			namespace(b, ns)
			var paths []time.Duration
			for i := 0; b.Loop(); i++ {
				release := "w" + itoa(i)
				o := helm(b, "install", release, chartDir, "-n", ns, "--timeout", "120s",
					"--set", "tasks={http}", "--set", "http.url="+app.URL+"/",
					"--set", "http.numRequests="+itoa(n), "--set", "http.workers="+itoa(n), "--set", "http.connections=1")
				if o.Code != 0 {
					b.Fatalf("install: %s", o)
				}
				s := &store.Secrets{Client: env.Clientset, Namespace: ns, Release: release}
				res, err := s.ReadResult(context.Background())
				if err != nil || !res.Completed() || res.Failed() {
					b.Fatalf("result after helm install: %+v, %v", res, err)
				}
				paths = append(paths, res.Tasks[0].Duration-podworkers.DefaultLead)
			}
			b.ReportMetric(median(paths).Seconds(), "s-path")
			b.ReportMetric(float64(median(paths).Milliseconds())/float64(n), "ms-per-worker")
		})
	}
}
