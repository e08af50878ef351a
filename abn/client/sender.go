package client

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// callTimeout bounds one WriteMetrics call, so that a hung connection is
// retried rather than waited on forever.
const callTimeout = 10 * time.Second

// firstBackoff is the first retry's wait at most (capped by MaxBackoff);
// each retry doubles it.
const firstBackoff = 50 * time.Millisecond

// send batches queued values and hands them to InFlight deliverers until
// the queue is closed and empty; it returns once every batch is delivered
// or given up. Several batches in flight hide the service's durable-write
// latency (an fsync per call): one at a time, a client could send only a
// batch per fsync.
func (c *Client) send() {
	defer close(c.done)
	batches := make(chan []*pb.MetricValue)
	var wg sync.WaitGroup
	for range c.opts.InFlight {
		wg.Go(func() {
			for b := range batches {
				c.deliver(b, false)
			}
		})
	}
	defer wg.Wait()
	defer close(batches)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		v, ok := <-c.queue
		if !ok {
			return
		}
		batch := make([]*pb.MetricValue, 1, c.opts.Batch)
		batch[0] = v
		timer.Reset(c.opts.FlushInterval)
		full, closed := false, false
		for !full && !closed {
			select {
			case v, ok := <-c.queue:
				if !ok {
					closed = true
					break
				}
				batch = append(batch, v)
				full = len(batch) >= c.opts.Batch
			case <-timer.C:
				full = true
			}
		}
		timer.Stop()
		batches <- batch
		if closed {
			return
		}
	}
}

// deliver sends one batch, retrying with backoff while the failure may
// pass, until it is acknowledged, refused, or Close gives up. inDoubt says
// that this client cut off a call that may have carried the batch (Close
// gave up, or callTimeout), so that the service may have stored it.
func (c *Client) deliver(batch []*pb.MetricValue, inDoubt bool) {
	wait := min(firstBackoff, c.opts.MaxBackoff)
	for {
		if c.stopCtx.Err() != nil {
			// Close gave up: do not start a call that cannot succeed
			// (and might store values counted as given up).
			c.giveUp(batch, inDoubt)
			return
		}
		ctx, cancel := context.WithTimeout(c.stopCtx, callTimeout)
		_, err := c.abn.WriteMetrics(ctx, &pb.MetricValues{Values: batch})
		cancel()
		if err == nil {
			c.sent.Add(uint64(len(batch)))
			return
		}
		if code := status.Code(err); code == codes.Canceled || code == codes.DeadlineExceeded {
			inDoubt = true
		}
		if c.stopCtx.Err() != nil {
			// Failed because Close gave up (Canceled): not the service's
			// error, which LastError keeps.
			c.giveUp(batch, inDoubt)
			return
		}
		c.lastErr.Store(&err)
		if !retryable(err) {
			if status.Code(err) == codes.InvalidArgument && len(batch) > 1 {
				// One value the service refuses fails its batch: send the
				// halves, so that only refused values are dropped.
				c.deliver(batch[:len(batch)/2], inDoubt)
				c.deliver(batch[len(batch)/2:], inDoubt)
				return
			}
			c.lose(batch, inDoubt)
			return
		}
		// Full jitter: replicas of a frontend that lost the service at the
		// same moment do not come back in step.
		t := time.NewTimer(time.Duration(rand.Int64N(int64(wait)) + 1))
		select {
		case <-t.C:
		case <-c.stopCtx.Done():
			t.Stop()
			c.giveUp(batch, inDoubt)
			return
		}
		wait = min(2*wait, c.opts.MaxBackoff)
	}
}

// giveUp ends a batch because Close's deadline passed.
func (c *Client) giveUp(batch []*pb.MetricValue, inDoubt bool) {
	c.lose(batch, inDoubt)
	c.gaveUp.Store(true)
}

// lose counts a batch that will not be sent again: dropped, or in doubt
// when a call that may have carried it was cut off.
func (c *Client) lose(batch []*pb.MetricValue, inDoubt bool) {
	if inDoubt {
		c.inDoubt.Add(uint64(len(batch)))
	} else {
		c.dropped.Add(uint64(len(batch)))
	}
}
