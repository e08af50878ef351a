package assign

import (
	"encoding/binary"
	"math/bits"
)

// sipState is a streaming SipHash-2-4 state. It is a plain value so that it
// lives on the caller's stack: hashing never allocates.
type sipState struct {
	v0, v1, v2, v3 uint64
	tail           uint64 // pending bytes, little-endian, not yet compressed
	ntail          uint   // number of pending bytes (0..7)
	n              uint64 // total message length in bytes
}

// newSip starts a SipHash-2-4 computation under key (k0, k1).
func newSip(k0, k1 uint64) sipState {
	return sipState{
		v0: k0 ^ 0x736f6d6570736575, // "somepseu"
		v1: k1 ^ 0x646f72616e646f6d, // "dorandom"
		v2: k0 ^ 0x6c7967656e657261, // "lygenera"
		v3: k1 ^ 0x7465646279746573, // "tedbytes"
	}
}

// sipRound is one SipRound on values, not through a pointer, so that the
// compiler inlines it and keeps the state in registers.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// compress absorbs one 8-byte message word (c = 2 rounds).
func (s *sipState) compress(m uint64) {
	v0, v1, v2, v3 := s.v0, s.v1, s.v2, s.v3^m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	s.v0, s.v1, s.v2, s.v3 = v0^m, v1, v2, v3
}

// writeByte appends one byte to the message.
func (s *sipState) writeByte(b byte) {
	s.tail |= uint64(b) << (8 * s.ntail)
	s.ntail++
	s.n++
	if s.ntail == 8 {
		s.compress(s.tail)
		s.tail, s.ntail = 0, 0
	}
}

// writeString appends the bytes of p to the message. Whole words are
// compressed directly once the pending tail is empty, so long strings cost
// one compression per 8 bytes rather than per-byte bookkeeping.
func (s *sipState) writeString(p string) {
	i := 0
	for s.ntail != 0 && i < len(p) {
		s.writeByte(p[i])
		i++
	}
	for ; len(p)-i >= 8; i += 8 {
		w := p[i : i+8]
		s.compress(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56)
		s.n += 8
	}
	for ; i < len(p); i++ {
		s.writeByte(p[i])
	}
}

// writeUvarint appends x in encoding/binary's uvarint format, byte by byte,
// so no buffer is needed.
func (s *sipState) writeUvarint(x uint64) {
	for x >= 0x80 {
		s.writeByte(byte(x) | 0x80)
		x >>= 7
	}
	s.writeByte(byte(x))
}

// sum64 finishes the hash: the last word carries the length's low byte in
// its top byte, then d = 4 finalization rounds.
func (s *sipState) sum64() uint64 {
	s.compress(s.n<<56 | s.tail)
	v0, v1, v2, v3 := s.v0, s.v1, s.v2^0xff, s.v3
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// sipHash24 is SipHash-2-4 of a whole message in one pass with the state
// in locals: the fast path for messages that fit a stack buffer. Tests check
// it, and the streaming sipState, against the reference vectors.
func sipHash24(k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	n := uint64(len(msg))
	for ; len(msg) >= 8; msg = msg[8:] {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	m := n << 56
	for i, b := range msg {
		m |= uint64(b) << (8 * i)
	}
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= m
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}
