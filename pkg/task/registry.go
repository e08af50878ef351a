// Package task gathers the experiment tasks. Each task lives in a package of
// its own under this one and never imports another task.
package task

import (
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task/abn"
	"github.com/iter8-tools/iter8/pkg/task/assess"
	"github.com/iter8-tools/iter8/pkg/task/bandit"
	"github.com/iter8-tools/iter8/pkg/task/grpc"
	"github.com/iter8-tools/iter8/pkg/task/http"
	"github.com/iter8-tools/iter8/pkg/task/metrics"
	"github.com/iter8-tools/iter8/pkg/task/notify"
	"github.com/iter8-tools/iter8/pkg/task/ready"
	"github.com/iter8-tools/iter8/pkg/task/rollout"
)

// Registry returns a registry holding every task.
func Registry() *experiment.Registry {
	r := experiment.NewRegistry()
	r.Register(ready.Name, ready.Decode)
	r.Register(http.Name, http.Decode)
	r.Register(grpc.Name, grpc.Decode)
	r.Register(metrics.Name, metrics.Decode)
	r.Register(abn.Name, abn.Decode)
	r.Register(assess.Name, assess.Decode)
	r.Register(bandit.Name, bandit.Decode)
	r.Register(rollout.Name, rollout.Decode)
	r.Register(notify.Name, notify.Decode)
	return r
}
