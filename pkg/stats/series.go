package stats

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// MaxBlocks is the most time blocks a Series keeps. When a request falls
// past the last block, neighbouring blocks merge in pairs and the width
// doubles, so a series covers any run length in at most MaxBlocks blocks.
const MaxBlocks = 64

// FirstBlockWidth is the width of a new series' blocks. Every width is
// FirstBlockWidth·2^k, so the blocks of two series with the same start line
// up once the finer one is coarsened.
const FirstBlockWidth = time.Millisecond

// Tail buckets are a quarter of a doubling wide (about 19%): bucket k holds
// latencies with ⌊4·log2(ns)⌋ = k, from 1µs (2^10 ns) to about 137s (2^37);
// values outside count in the end buckets.
const (
	tailPerDoubling = 4
	tailLowest      = 10 * tailPerDoubling
	tailHighest     = 37 * tailPerDoubling
	tailBuckets     = tailHighest - tailLowest + 1
)

// tailBucket is the tail bucket of a latency, from its natural log.
func tailBucket(lnNs float64) int {
	k := int(math.Floor(lnNs / math.Ln2 * tailPerDoubling))
	return min(max(k, tailLowest), tailHighest) - tailLowest
}

// tailFloor is the lowest latency in tail bucket k (an offset from
// tailLowest).
func tailFloor(k int) time.Duration {
	return time.Duration(math.Ceil(math.Exp2(float64(k+tailLowest) / tailPerDoubling)))
}

// Series is a version's load cut into time blocks: the requests that started
// in each block, with their errors and sums of latency, so that comparisons
// can pair versions block by block (a slowdown that both versions see cancels)
// and take their variance from how blocks vary (correlated latencies and
// bursts of errors widen it). Blocks are counted from Start, the start of
// the load that all versions of a task share.
type Series struct {
	Start time.Time `json:"start"`
	// Width is the width of every block.
	Width time.Duration `json:"widthNanos"`
	// Blocks are consecutive from Start; at most MaxBlocks.
	Blocks []Block `json:"blocks"`
	// Connections totals the same requests per load connection (past
	// MaxConnections, connection i adds to group i mod MaxConnections):
	// latencies on one kept connection can be correlated over longer than
	// blocks show (it stays on one backend), and connections are
	// independent of each other. Absent with one connection.
	Connections []Connection `json:"connections,omitempty"`
}

// Connection is one connection's requests: their totals, and how many
// started in each block, so that a connection can be compared with the
// others in the same blocks (a slowdown every connection sees is no
// difference between them).
type Connection struct {
	Block
	PerBlock []int64 `json:"perBlock"`
}

// MaxConnections is the most connections a Series keeps apart: 16 clusters
// give the connections' variance 15 degrees of freedom per version, while a
// heavy load's histogram (a million requests over 64 connections) stays
// near 60 KB, so that a revision of three versions fits in 256 KiB.
const MaxConnections = 16

// Block holds what the requests that started in one time block measured.
// Log sums are in the integer unit of logUnits, so that merging is exact and
// independent of order.
type Block struct {
	Count  int64 `json:"n,omitempty"`
	Errors int64 `json:"errors,omitempty"`
	// LogSum and LogSquares are the sums of log latency and of its square.
	LogSum     int64 `json:"logSum,omitempty"`
	LogSquares int64 `json:"logSquares,omitempty"`
	// Millis and MillisSquares are the sums of latency in milliseconds and
	// of its square, for comparisons of mean latency.
	Millis        float64 `json:"ms,omitempty"`
	MillisSquares float64 `json:"msSquares,omitempty"`
	// Tail counts latencies in coarse buckets (a quarter doubling wide) as
	// pairs of bucket and count, for comparisons of percentiles.
	Tail []int64 `json:"tail,omitempty"`
}

// openBlock is a Block being recorded: the tail buckets dense, so that
// recording neither searches nor allocates once the block exists.
type openBlock struct {
	count, errors, logSum, logSquares int64
	millis, millisSquares             float64
	tail                              *[tailBuckets]int64
}

// seriesRecorder builds a Series for one load thread.
type seriesRecorder struct {
	start  time.Time
	width  time.Duration
	blocks []openBlock
	// own totals this thread's requests; merged holds the totals of the
	// threads merged into it.
	own    openConnection
	merged []openConnection
}

// openConnection is a Connection being recorded.
type openConnection struct {
	openBlock
	perBlock []int64
}

// coarsen follows the blocks' doubling width.
func (c *openConnection) coarsen() {
	for i := range (len(c.perBlock) + 1) / 2 {
		n := c.perBlock[2*i]
		if 2*i+1 < len(c.perBlock) {
			n += c.perBlock[2*i+1]
		}
		c.perBlock[i] = n
	}
	c.perBlock = c.perBlock[:(len(c.perBlock)+1)/2]
}

// addConnection adds o's requests to c; step is how many of o's blocks make
// one of c's (a power of 2).
func (c *openConnection) addConnection(o *openConnection, step int) {
	c.add(&o.openBlock)
	for i, n := range o.perBlock {
		j := i / step
		for len(c.perBlock) <= j {
			c.perBlock = append(c.perBlock, 0)
		}
		c.perBlock[j] += n
	}
}

func newSeriesRecorder(start time.Time) seriesRecorder {
	return seriesRecorder{start: start, width: FirstBlockWidth}
}

// record adds one request that started at at. q is the latency in
// logUnits and lnNs its natural log in nanoseconds.
func (s *seriesRecorder) record(at time.Time, d time.Duration, q int64, lnNs float64, failed bool) {
	i := max(int(at.Sub(s.start)/s.width), 0)
	for i >= MaxBlocks {
		s.coarsen()
		i = max(int(at.Sub(s.start)/s.width), 0)
	}
	if i >= len(s.blocks) {
		s.blocks = append(s.blocks, make([]openBlock, i+1-len(s.blocks))...)
	}
	ms := d.Seconds() * 1000
	k := tailBucket(lnNs)
	s.blocks[i].record(q, ms, k, failed)
	s.own.record(q, ms, k, failed)
	for len(s.own.perBlock) <= i {
		s.own.perBlock = append(s.own.perBlock, 0)
	}
	s.own.perBlock[i]++
}

func (b *openBlock) record(q int64, ms float64, k int, failed bool) {
	if b.tail == nil {
		b.tail = new([tailBuckets]int64)
	}
	b.count++
	if failed {
		b.errors++
	}
	b.logSum += q
	b.logSquares += q * q
	b.millis += ms
	b.millisSquares += ms * ms
	b.tail[k]++
}

// coarsen doubles the width, merging blocks in pairs.
func (s *seriesRecorder) coarsen() {
	s.own.coarsen()
	for i := range s.merged {
		s.merged[i].coarsen()
	}
	s.width *= 2
	for i := range (len(s.blocks) + 1) / 2 {
		b := s.blocks[2*i]
		if 2*i+1 < len(s.blocks) {
			b.add(&s.blocks[2*i+1])
		}
		s.blocks[i] = b
	}
	clear(s.blocks[(len(s.blocks)+1)/2:])
	s.blocks = s.blocks[:(len(s.blocks)+1)/2]
}

func (b *openBlock) add(o *openBlock) {
	b.count += o.count
	b.errors += o.errors
	b.logSum += o.logSum
	b.logSquares += o.logSquares
	b.millis += o.millis
	b.millisSquares += o.millisSquares
	if o.tail == nil {
		return
	}
	if b.tail == nil {
		b.tail = new([tailBuckets]int64)
	}
	for k, c := range o.tail {
		b.tail[k] += c
	}
}

// merge adds other's blocks to s. Both must share the start.
func (s *seriesRecorder) merge(o *seriesRecorder) {
	for s.width < o.width {
		s.coarsen()
	}
	step := int(s.width / o.width) // a power of 2: o's blocks per block of s
	for i := range o.blocks {
		j := i / step
		if j >= len(s.blocks) {
			s.blocks = append(s.blocks, make([]openBlock, j+1-len(s.blocks))...)
		}
		s.blocks[j].add(&o.blocks[i])
	}
	for _, c := range o.connections() {
		var at openConnection
		at.addConnection(&c, step)
		s.merged = append(s.merged, at)
	}
	for len(s.blocks) > MaxBlocks {
		s.coarsen()
	}
}

// connections lists the connections with requests, own first, folded into
// MaxConnections groups.
func (s *seriesRecorder) connections() []openConnection {
	var all []openConnection
	if s.own.count > 0 {
		all = append(all, s.own)
	}
	all = append(all, s.merged...)
	// In a canonical order, so that merging in any order gives the same
	// series.
	slices.SortStableFunc(all, func(a, b openConnection) int {
		return cmp.Or(cmp.Compare(a.count, b.count), cmp.Compare(a.logSum, b.logSum),
			cmp.Compare(a.logSquares, b.logSquares), cmp.Compare(a.errors, b.errors), slices.Compare(a.perBlock, b.perBlock))
	})
	if len(all) <= MaxConnections {
		return all
	}
	folded := make([]openConnection, MaxConnections)
	for i := range all {
		folded[i%MaxConnections].addConnection(&all[i], 1)
	}
	return folded
}

// series returns the stored form.
func (s *seriesRecorder) series() *Series {
	out := &Series{Start: s.start, Width: s.width, Blocks: make([]Block, len(s.blocks))}
	for i := range s.blocks {
		out.Blocks[i] = s.blocks[i].stored()
	}
	if cs := s.connections(); len(cs) > 1 {
		out.Connections = make([]Connection, len(cs))
		for i := range cs {
			out.Connections[i] = Connection{Block: cs[i].stored(), PerBlock: slices.Clone(cs[i].perBlock)}
		}
	}
	return out
}

func (b *openBlock) stored() Block {
	out := Block{
		Count: b.count, Errors: b.errors, LogSum: b.logSum, LogSquares: b.logSquares,
		Millis: b.millis, MillisSquares: b.millisSquares,
	}
	if b.tail != nil {
		for k, c := range b.tail {
			if c > 0 {
				out.Tail = append(out.Tail, int64(k), c)
			}
		}
	}
	return out
}

// opened is the recording form of a stored block.
func (b *Block) opened() openBlock {
	o := openBlock{
		count: b.Count, errors: b.Errors, logSum: b.LogSum, logSquares: b.LogSquares,
		millis: b.Millis, millisSquares: b.MillisSquares,
	}
	if len(b.Tail) > 0 {
		o.tail = new([tailBuckets]int64)
		for j := 0; j < len(b.Tail); j += 2 {
			o.tail[b.Tail[j]] += b.Tail[j+1]
		}
	}
	return o
}

// recorder rebuilds the recording form of a stored series, checking it.
func (s *Series) recorder() (seriesRecorder, error) {
	if err := s.validate(); err != nil {
		return seriesRecorder{}, err
	}
	r := seriesRecorder{start: s.Start, width: s.Width, blocks: make([]openBlock, len(s.Blocks))}
	for i := range s.Blocks {
		r.blocks[i] = s.Blocks[i].opened()
	}
	// A stored series stands for a merge: without connections its requests
	// count as one connection.
	switch {
	case len(s.Connections) > 0:
		for i := range s.Connections {
			c := &s.Connections[i]
			r.merged = append(r.merged, openConnection{openBlock: c.opened(), perBlock: slices.Clone(c.PerBlock)})
		}
	default:
		var all openConnection
		for i := range r.blocks {
			all.add(&r.blocks[i])
			all.perBlock = append(all.perBlock, r.blocks[i].count)
		}
		r.merged = append(r.merged, all)
	}
	return r, nil
}

// total is the number of requests in the series.
func (s *Series) total() int64 {
	var n int64
	for _, b := range s.Blocks {
		n += b.Count
	}
	return n
}

// validate checks what a hand-edited file could break.
func (s *Series) validate() error {
	if s.Width < FirstBlockWidth || s.Width%FirstBlockWidth != 0 || (s.Width/FirstBlockWidth)&(s.Width/FirstBlockWidth-1) != 0 {
		return fmt.Errorf("series: block width %v: want %v times a power of 2", s.Width, FirstBlockWidth)
	}
	if len(s.Blocks) > MaxBlocks {
		return fmt.Errorf("series: %d blocks, want at most %d", len(s.Blocks), MaxBlocks)
	}
	if len(s.Connections) > MaxConnections {
		return fmt.Errorf("series: %d connections, want at most %d", len(s.Connections), MaxConnections)
	}
	var n int64
	for i, b := range s.Blocks {
		if err := b.validate(); err != nil {
			return fmt.Errorf("series block %d: %w", i, err)
		}
		if b.Count > math.MaxInt64-n {
			return errors.New("series: counts sum past MaxInt64")
		}
		n += b.Count
	}
	if len(s.Connections) > 0 {
		perBlock := make([]int64, len(s.Blocks))
		for i := range s.Connections {
			c := &s.Connections[i]
			if err := c.validate(); err != nil {
				return fmt.Errorf("series connection %d: %w", i, err)
			}
			if len(c.PerBlock) > len(s.Blocks) {
				return fmt.Errorf("series connection %d: %d per-block counts, want at most the %d blocks", i, len(c.PerBlock), len(s.Blocks))
			}
			var total int64
			for b, k := range c.PerBlock {
				if k < 0 || k > c.Count-total {
					return fmt.Errorf("series connection %d: block %d count %d out of range", i, b, k)
				}
				total += k
				perBlock[b] += k
			}
			if total != c.Count {
				return fmt.Errorf("series connection %d: per-block counts sum to %d, want its %d requests", i, total, c.Count)
			}
		}
		for b := range s.Blocks {
			if perBlock[b] != s.Blocks[b].Count {
				return fmt.Errorf("series block %d: connections hold %d of its requests, want %d", b, perBlock[b], s.Blocks[b].Count)
			}
		}
	}
	return nil
}

func (b *Block) validate() error {
	switch {
	case b.Count < 0 || b.Errors < 0 || b.Errors > b.Count || b.LogSquares < 0 || b.MillisSquares < 0:
		return fmt.Errorf("%d errors of %d requests, sums of squares %d and %v", b.Errors, b.Count, b.LogSquares, b.MillisSquares)
	case len(b.Tail)%2 != 0:
		return fmt.Errorf("tail: want bucket, count pairs, got %d numbers", len(b.Tail))
	case math.IsNaN(b.Millis) || math.IsInf(b.Millis, 0) || math.IsNaN(b.MillisSquares) || math.IsInf(b.MillisSquares, 0):
		return errors.New("latency sums are not finite")
	case b.Millis < 0 || b.Millis*b.Millis > float64(b.Count)*b.MillisSquares*(1+1e-9)+1e-9:
		return fmt.Errorf("latency sums %v and %v are not those of %d latencies", b.Millis, b.MillisSquares, b.Count)
	}
	var tail int64
	for j := 0; j < len(b.Tail); j += 2 {
		k, c := b.Tail[j], b.Tail[j+1]
		if k < 0 || k >= tailBuckets || c < 0 || c > b.Count-tail {
			return fmt.Errorf("tail bucket %d count %d out of range", k, c)
		}
		tail += c
	}
	if tail != b.Count {
		return fmt.Errorf("tail buckets hold %d requests, want the block's %d", tail, b.Count)
	}
	// Cauchy–Schwarz: the square of a sum is at most n times the sum of
	// squares, for any values.
	if s, q, n := float64(b.LogSum), float64(b.LogSquares), float64(b.Count); s*s > n*q*(1+1e-9)+1 {
		return fmt.Errorf("log sums %d and %d are not those of %d values", b.LogSum, b.LogSquares, b.Count)
	}
	return nil
}
