package ledgertest

import (
	"testing"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// TestModel runs the suite on the model itself: the suite's own cases
// hold where they must (a model shares its state across opens).
func TestModel(t *testing.T) {
	Run(t, func(t *testing.T, opts ledger.Options) Opener {
		m := NewModel(opts)
		return func() (ledger.Ledger, error) { return m, nil }
	}, Scale{Users: 200})
}
