package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// lookupsStream is the wire of the SDK's Lookups stream, spoken by hand so
// that a polling loop can drive it: HTTP/2 (one connection, one stream)
// carrying gRPC messages, each request a LookupBatch of one user. It does
// what a gRPC client must on such a stream: it acknowledges the service's
// SETTINGS and PINGs (grpc-go's server PINGs often, to size its windows),
// keeps within the windows the service grants and grants its own again,
// and reads the stream's trailers as its end.
type lookupsStream struct {
	authority string
	decoder   *hpack.Decoder
	// messages holds the stream's DATA not yet read as whole messages.
	messages []byte
	// The windows the service grants for requests: the connection's, the
	// stream's, and the stream's first one (its SETTINGS may change it).
	connWindow, streamWindow, initialWindow int64
	// received counts the DATA bytes taken from this client's windows
	// since it last granted them again.
	received int64
	// Replies are built in these, so that the polling loop allocates
	// nothing for them; it writes each before it reads on.
	settingsAck [frameHeaderLen]byte
	pingAck     [frameHeaderLen + 8]byte
	grants      [2 * (frameHeaderLen + 4)]byte
}

// lookupsStreamID is the one stream's ID: a client's first.
const lookupsStreamID = 1

// receiveWindow is the window this client grants the service, for the
// connection and the stream alike; it grants again what half of it held.
const receiveWindow = 1 << 30

func newLookupsStream(authority string) wire {
	return &lookupsStream{authority: authority, decoder: hpack.NewDecoder(4096, nil),
		connWindow: 65535, streamWindow: 65535, initialWindow: 65535}
}

// greeting is the client's preface, its SETTINGS and window, and the
// HEADERS that open the stream.
func (s *lookupsStream) greeting() []byte {
	var block bytes.Buffer
	e := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", pb.ABN_Lookups_FullMethodName},
		{":authority", s.authority}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	// Writes to a bytes.Buffer do not fail.
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: receiveWindow},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	_ = fr.WriteWindowUpdate(0, receiveWindow-65535)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: lookupsStreamID, BlockFragment: block.Bytes(), EndHeaders: true})
	return b.Bytes()
}

// lookupsRequest is the DATA frame of one Lookup on the stream.
func lookupsRequest(application, user string) []byte {
	m, err := proto.Marshal(&pb.LookupBatch{Application: application, Users: []string{user}})
	if err != nil {
		panic(err) // a message of two strings always marshals
	}
	msg := make([]byte, 5, 5+len(m))
	binary.BigEndian.PutUint32(msg[1:], uint32(len(m)))
	var b bytes.Buffer
	_ = http2.NewFramer(&b, nil).WriteData(lookupsStreamID, false, append(msg, m...))
	return b.Bytes()
}

// frameHeaderLen is the length of an HTTP/2 frame's header.
const frameHeaderLen = 9

func (s *lookupsStream) take(request []byte) bool {
	n := int64(len(request) - frameHeaderLen)
	if n > s.connWindow || n > s.streamWindow {
		return false
	}
	s.connWindow -= n
	s.streamWindow -= n
	return true
}

func (s *lookupsStream) next(b []byte) (int, int, []byte, error) {
	if len(b) < frameHeaderLen {
		return 0, 0, nil, nil
	}
	length := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	if len(b) < frameHeaderLen+length {
		return 0, 0, nil, nil
	}
	size := frameHeaderLen + length
	kind, flags := http2.FrameType(b[3]), http2.Flags(b[4])
	stream := binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1)
	payload := b[frameHeaderLen:size]
	switch kind {
	case http2.FrameData:
		if flags.Has(http2.FlagDataEndStream) {
			return 0, 0, nil, errors.New("the service ended the stream with DATA, without trailers")
		}
		payload, err := unpad(payload, flags)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("DATA: %w", err)
		}
		s.messages = append(s.messages, payload...)
		answers, err := s.sessions()
		// The whole frame, padding too, counts against the windows.
		if s.received += int64(length); s.received >= receiveWindow/2 {
			return size, answers, s.grant(), err
		}
		return size, answers, nil, err
	case http2.FrameHeaders:
		if !flags.Has(http2.FlagHeadersEndHeaders) {
			return 0, 0, nil, errors.New("HEADERS continued in CONTINUATION frames: not read by this client")
		}
		payload, err := unpad(payload, flags)
		if err == nil && flags.Has(http2.FlagHeadersPriority) {
			if len(payload) < 5 {
				err = errors.New("priority longer than the frame")
			} else {
				payload = payload[5:]
			}
		}
		if err != nil {
			return 0, 0, nil, fmt.Errorf("HEADERS: %w", err)
		}
		fields, err := s.decoder.DecodeFull(payload)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("HEADERS: %w", err)
		}
		if flags.Has(http2.FlagHeadersEndStream) {
			return 0, 0, nil, fmt.Errorf("the service ended the stream: %s", trailers(fields))
		}
		return size, 0, nil, nil
	case http2.FrameRSTStream:
		if len(payload) != 4 {
			return 0, 0, nil, fmt.Errorf("RST_STREAM of %d bytes", len(payload))
		}
		return 0, 0, nil, fmt.Errorf("the service reset the stream: %v", http2.ErrCode(binary.BigEndian.Uint32(payload)))
	case http2.FrameGoAway:
		if len(payload) < 8 {
			return 0, 0, nil, fmt.Errorf("GOAWAY of %d bytes", len(payload))
		}
		return 0, 0, nil, fmt.Errorf("the service closed the connection (GOAWAY): %v %q",
			http2.ErrCode(binary.BigEndian.Uint32(payload[4:])), payload[8:])
	case http2.FrameSettings:
		if flags.Has(http2.FlagSettingsAck) {
			return size, 0, nil, nil
		}
		if len(payload)%6 != 0 {
			return 0, 0, nil, fmt.Errorf("SETTINGS of %d bytes", len(payload))
		}
		for p := payload; len(p) > 0; p = p[6:] {
			if http2.SettingID(binary.BigEndian.Uint16(p)) == http2.SettingInitialWindowSize {
				v := int64(binary.BigEndian.Uint32(p[2:]))
				s.streamWindow += v - s.initialWindow
				s.initialWindow = v
			}
		}
		putFrameHeader(s.settingsAck[:], 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
		return size, 0, s.settingsAck[:], nil
	case http2.FramePing:
		if flags.Has(http2.FlagPingAck) || len(payload) != 8 {
			return size, 0, nil, nil
		}
		putFrameHeader(s.pingAck[:], 8, http2.FramePing, http2.FlagPingAck, 0)
		copy(s.pingAck[frameHeaderLen:], payload)
		return size, 0, s.pingAck[:], nil
	case http2.FramePushPromise:
		return 0, 0, nil, errors.New("PUSH_PROMISE: this client disabled push")
	case http2.FrameWindowUpdate:
		if len(payload) != 4 {
			return 0, 0, nil, fmt.Errorf("WINDOW_UPDATE of %d bytes", len(payload))
		}
		inc := int64(binary.BigEndian.Uint32(payload) & (1<<31 - 1))
		switch stream {
		case 0:
			s.connWindow += inc
		case lookupsStreamID:
			s.streamWindow += inc
		}
		return size, 0, nil, nil
	}
	return size, 0, nil, nil // frames a client may ignore
}

// grant gives the service back, on the connection and on the stream, the
// window its DATA took.
func (s *lookupsStream) grant() []byte {
	b := s.grants[:]
	for i, stream := range []uint32{0, lookupsStreamID} {
		f := b[i*(frameHeaderLen+4):]
		putFrameHeader(f, 4, http2.FrameWindowUpdate, 0, stream)
		binary.BigEndian.PutUint32(f[frameHeaderLen:], uint32(s.received))
	}
	s.received = 0
	return b
}

// putFrameHeader writes an HTTP/2 frame's header at the start of b.
func putFrameHeader(b []byte, length int, kind http2.FrameType, flags http2.Flags, stream uint32) {
	b[0], b[1], b[2] = byte(length>>16), byte(length>>8), byte(length)
	b[3], b[4] = byte(kind), byte(flags)
	binary.BigEndian.PutUint32(b[5:9], stream)
}

// sessions reads the whole messages held: each must be a SessionBatch of
// one Session that is not an error.
func (s *lookupsStream) sessions() (int, error) {
	answers, read := 0, 0
	for m := s.messages; len(m) >= 5; answers++ {
		n := int(binary.BigEndian.Uint32(m[1:5]))
		if len(m) < 5+n {
			break
		}
		if m[0] != 0 {
			return answers, errors.New("a compressed message: this client asks for none")
		}
		if err := oneSession(m[5 : 5+n]); err != nil {
			var out pb.SessionBatch
			_ = proto.Unmarshal(m[5:5+n], &out)
			return answers, fmt.Errorf("SessionBatch %v: %w", &out, err)
		}
		m = m[5+n:]
		read += 5 + n
	}
	s.messages = s.messages[:copy(s.messages, s.messages[read:])]
	return answers, nil
}

// oneSession checks a SessionBatch without decoding it into messages, so
// that the polling loop allocates nothing: one Session, with a version,
// neither an error nor the fallback.
func oneSession(batch []byte) error {
	sessions := 0
	for b := batch; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num != 1 || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		session, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		sessions++
		version := false
		for len(session) > 0 {
			num, typ, n := protowire.ConsumeTag(session)
			if n < 0 {
				return protowire.ParseError(n)
			}
			session = session[n:]
			switch {
			case num == 2 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(session)
				if n < 0 {
					return protowire.ParseError(n)
				}
				version = len(v) > 0
			case num == 5 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(session)
				if n < 0 {
					return protowire.ParseError(n)
				}
				if v != 0 {
					return errors.New("the fallback: no version was ready")
				}
			case num == 6:
				return errors.New("a refused user")
			}
			if n = protowire.ConsumeFieldValue(num, typ, session); n < 0 {
				return protowire.ParseError(n)
			}
			session = session[n:]
		}
		if !version {
			return errors.New("a Session without a version")
		}
	}
	if sessions != 1 {
		return fmt.Errorf("%d Sessions: want one", sessions)
	}
	return nil
}

// unpad strips a padded frame's padding.
func unpad(payload []byte, flags http2.Flags) ([]byte, error) {
	if !flags.Has(http2.FlagDataPadded) { // the same bit as HEADERS' PADDED
		return payload, nil
	}
	if len(payload) == 0 || int(payload[0]) >= len(payload) {
		return nil, errors.New("padding longer than the frame")
	}
	return payload[1 : len(payload)-int(payload[0])], nil
}

// trailers names the status a stream ended with: HTTP's and gRPC's.
func trailers(fields []hpack.HeaderField) string {
	var status, grpcStatus, message string
	for _, f := range fields {
		switch f.Name {
		case ":status":
			status = f.Value
		case "grpc-status":
			grpcStatus = f.Value
		case "grpc-message":
			message = f.Value
		}
	}
	return fmt.Sprintf(":status %q, grpc-status %q, grpc-message %q", status, grpcStatus, message)
}
