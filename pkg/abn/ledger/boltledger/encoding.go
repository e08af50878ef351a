package boltledger

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// bbolt keeps the slices given to Put until the transaction ends, so every
// encoder returns a fresh slice.

const timeKeyLen = 12

// timeKey encodes t so that keys sort in time order: Unix seconds with the
// sign bit flipped, then nanoseconds. It covers every time.Time that
// UnixNano cannot (before 1678, after 2262).
func timeKey(t time.Time) []byte {
	k := make([]byte, timeKeyLen)
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return k
}

// parseTime decodes a timeKey (in UTC, as Options.BucketOf returns).
func parseTime(k []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(k[8:]))).UTC()
}

func encodeInt(n int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(n))
}

// decodeInt reads an int64; a missing key is 0.
func decodeInt(b []byte) int64 {
	if len(b) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func appendFloat(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

func readFloat(b []byte) float64 { return math.Float64frombits(binary.BigEndian.Uint64(b)) }

func appendMoments(b []byte, m ledger.Moments) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(m.Count))
	b = appendFloat(b, m.Sum)
	return appendFloat(b, m.SumSquares)
}

func readMoments(b []byte) ledger.Moments {
	return ledger.Moments{Count: int64(binary.BigEndian.Uint64(b)), Sum: readFloat(b[8:]), SumSquares: readFloat(b[16:])}
}

const (
	momentsLen = 24
	summaryLen = momentsLen + 16 + momentsLen // transactions, min and max, users
	bucketLen  = 2 * momentsLen               // transactions, users
)

// metricRecord is the summary key of a metric: its totals over all time.
type metricRecord struct {
	Transactions ledger.Transactions
	Users        ledger.Moments
}

func (r metricRecord) encode() []byte {
	b := appendMoments(make([]byte, 0, summaryLen), r.Transactions.Moments)
	b = appendFloat(b, r.Transactions.Min)
	b = appendFloat(b, r.Transactions.Max)
	return appendMoments(b, r.Users)
}

// decodeMetric reads a summary key; a missing one is the empty record.
func decodeMetric(b []byte) metricRecord {
	if len(b) < summaryLen {
		return metricRecord{}
	}
	return metricRecord{
		Transactions: ledger.Transactions{Moments: readMoments(b), Min: readFloat(b[momentsLen:]), Max: readFloat(b[momentsLen+8:])},
		Users:        readMoments(b[momentsLen+16:]),
	}
}

func encodeBucket(b ledger.MetricBucket) []byte {
	return appendMoments(appendMoments(make([]byte, 0, bucketLen), b.Transactions), b.Users)
}

// decodeBucket reads a bucket's moments; a missing one is empty.
func decodeBucket(start time.Time, b []byte) ledger.MetricBucket {
	mb := ledger.MetricBucket{Start: start}
	if len(b) >= bucketLen {
		mb.Transactions, mb.Users = readMoments(b), readMoments(b[momentsLen:])
	}
	return mb
}

// Histogram bins: "z" for zero, 'p' or 'n' and the index with its sign bit
// flipped for the bins of either sign.
var zeroBin = []byte("z")

func binKey(sign byte, i int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{sign}, uint32(i)^(1<<31))
}

func binIndex(k []byte) int32 { return int32(binary.BigEndian.Uint32(k[1:]) ^ (1 << 31)) }
