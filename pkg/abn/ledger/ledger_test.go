package ledger

import (
	"testing"
	"time"
)

func TestBucketOfCountsFromTheEpoch(t *testing.T) {
	for _, tt := range []struct {
		width time.Duration
		at    time.Time
		want  int64 // Unix seconds
	}{
		{7 * time.Minute, time.Unix(1000, 0), 840},
		{7 * 24 * time.Hour, time.Unix(300000, 0), 0},
		{time.Minute, time.Unix(-1, 0), -60},
		{time.Minute, time.Unix(120, 0), 120},
	} {
		got := Options{BucketWidth: tt.width}.BucketOf(tt.at)
		if got.Unix() != tt.want || got.Location() != time.UTC {
			t.Errorf("BucketOf(%v) at width %v = %v, want Unix %d in UTC", tt.at.Unix(), tt.width, got, tt.want)
		}
	}
}
