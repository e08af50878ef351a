//go:build !linux

package main

import "time"

// pacer ticks at a fixed interval by time.Sleep, which on most systems
// oversleeps short intervals; the open loop's "schedule's own delay" line
// shows by how much.
type pacer struct {
	start    time.Time
	interval time.Duration
	ticks    int
}

func newPacer(interval time.Duration) (*pacer, error) {
	return &pacer{start: time.Now(), interval: interval}, nil
}

func (p *pacer) wait() (int, error) {
	next := p.start.Add(time.Duration(p.ticks+1) * p.interval)
	time.Sleep(time.Until(next)) // pacing the schedule, not synchronisation
	due := int(time.Since(p.start) / p.interval)
	n := due - p.ticks
	p.ticks = due
	return n, nil
}

func (p *pacer) close() {}
