package action

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// interrupted is a run that a signal stopped before its loop 2 of 3.
func interrupted() *experiment.Result {
	r := running()
	r.Tasks[0].State = experiment.TaskSucceeded
	end := time.Now()
	r.EndTime, r.Interrupted, r.Loop, r.Loops = &end, true, 1, 3
	return r
}

// TestAssertOnAnInterruptedRun: an interrupted run is not completed: a
// check says it was interrupted, and a wait goes on until the retried
// Job's run ends.
func TestAssertOnAnInterruptedRun(t *testing.T) {
	t.Run("once", func(t *testing.T) {
		spec := filepath.Join(t.TempDir(), "experiment.yaml")
		writeResult(t, spec, interrupted())
		a := NewAssert(NewConfiguration())
		a.Experiment, a.Conditions = &store.File{SpecPath: spec}, []Condition{Completed, NoFailure}
		res, err := a.Run(context.Background())
		if err != nil || res.Holds() || res.Verdicts[0].Holds || !res.Verdicts[1].Holds {
			t.Fatalf("assert -c completed,nofailure on an interrupted run = %+v, %v; want completed not to hold, nofailure to", res, err)
		}
		if why := res.Verdicts[0].Why; !strings.Contains(why, "interrupted in loop 1 of 3") {
			t.Errorf("completed does not hold because %q; want it to say the run was interrupted in loop 1 of 3", why)
		}
	})
	t.Run("waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			spec := filepath.Join(t.TempDir(), "experiment.yaml")
			writeResult(t, spec, interrupted())
			go func() {
				time.Sleep(3 * time.Second) // the retried pod resumes the run, which ends
				r := interrupted()
				end := time.Now()
				r.EndTime, r.Interrupted, r.Loop = &end, false, 3
				writeResult(t, spec, r)
			}()
			a := NewAssert(NewConfiguration())
			a.Experiment, a.Conditions, a.Timeout = &store.File{SpecPath: spec}, []Condition{Completed}, 10*time.Second
			start := time.Now()
			res, err := a.Run(context.Background())
			if err != nil || !res.Holds() {
				t.Fatalf("Assert = %+v, %v; want completed once the resumed run ends", res, err)
			}
			if waited := time.Since(start); waited < 3*time.Second {
				t.Errorf("assert returned after %v, before the resumed run ended", waited)
			}
		})
	})
}
