// Package abntest holds what the A/B/n service's tests share, in process
// and on the test bed: the bad input that every way in must refuse,
// naming its field.
package abntest

import (
	"strings"
	"time"

	pb "github.com/iter8-tools/iter8/abn/grpc"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// BadWrite is a metric value the service must refuse, and the field its
// error must name.
type BadWrite struct {
	Name  string
	Value *pb.MetricValue
	Field string
}

// BadWrites makes each kind of bad value from good, a value the service
// takes whose application is in namespace ns; now is the service's clock.
func BadWrites(good func() *pb.MetricValue, ns string, now time.Time) []BadWrite {
	with := func(change func(v *pb.MetricValue)) *pb.MetricValue { v := good(); change(v); return v }
	return []BadWrite{
		{"empty user", with(func(v *pb.MetricValue) { v.User = "" }), "user"},
		{"empty application", with(func(v *pb.MetricValue) { v.Application = "" }), "application"},
		{"unknown application", with(func(v *pb.MetricValue) { v.Application = ns + "/nope" }), "application"},
		{"application with two slashes", with(func(v *pb.MetricValue) { v.Application = ns + "/a/b" }), "application"},
		{"NaN", with(func(v *pb.MetricValue) { v.Value = "NaN" }), "value"},
		{"infinity", with(func(v *pb.MetricValue) { v.Value = "+Inf" }), "value"},
		{"minus infinity", with(func(v *pb.MetricValue) { v.Value = "-Inf" }), "value"},
		{"huge value", with(func(v *pb.MetricValue) { v.Value = "1e300" }), "value"},
		{"value not a number", with(func(v *pb.MetricValue) { v.Value = "ten" }), "value"},
		{"missing value", with(func(v *pb.MetricValue) { v.Value = "" }), "value"},
		{"missing metric name", with(func(v *pb.MetricValue) { v.Name = "" }), "metric"},
		{"10 KB metric name", with(func(v *pb.MetricValue) { v.Name = strings.Repeat("m", 10<<10) }), "metric"},
		{"metric name with a space", with(func(v *pb.MetricValue) { v.Name = "total revenue" }), "metric"},
		{"control character in user", with(func(v *pb.MetricValue) { v.User = "a\nb" }), "user"},
		{"NUL in user", with(func(v *pb.MetricValue) { v.User = "a\x00b" }), "user"},
		{"overlong version", with(func(v *pb.MetricValue) { v.Version = strings.Repeat("v", 64) }), "version"},
		{"unknown version", with(func(v *pb.MetricValue) { v.Version = "v9" }), "version"},
		{"overlong id", with(func(v *pb.MetricValue) { v.Id = strings.Repeat("i", 129) }), "id"},
		{"time in milliseconds", with(func(v *pb.MetricValue) { v.AtUnixNano = now.UnixMilli() }), "at"},
		{"time a day ahead", with(func(v *pb.MetricValue) { v.AtUnixNano = now.Add(24 * time.Hour).UnixNano() }), "at"},
	}
}

// BadLookup is a Lookup the service must refuse, and the field its error
// must name.
type BadLookup struct {
	Name  string
	In    *pb.Application
	Field string
}

// BadLookups are bad Lookups of app, an application in namespace ns.
func BadLookups(ns, app string) []BadLookup {
	return []BadLookup{
		{"empty user", &pb.Application{Name: app}, "user"},
		{"missing application", &pb.Application{User: "ann"}, "application"},
		{"unknown application", &pb.Application{Name: ns + "/nope", User: "ann"}, "application"},
		{"overlong user", &pb.Application{Name: app, User: strings.Repeat("u", ledger.MaxUserLength+1)}, "user"},
		{"control character in user", &pb.Application{Name: app, User: "a\tb"}, "user"},
	}
}
