package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func read(in string) (any, error) {
	return ReadReply(bufio.NewReaderSize(strings.NewReader(in), 16))
}

func TestReadReply(t *testing.T) {
	long := strings.Repeat("x", smallBulk+10) // read as it arrives
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"+OK\r\n", "OK"},
		{"+\r\n", ""},
		{"-NOSCRIPT No matching script\r\n", Error("NOSCRIPT No matching script")},
		{":0\r\n", int64(0)},
		{":-9223372036854775808\r\n", int64(-9223372036854775808)},
		{"$5\r\nhello\r\n", "hello"},
		{"$0\r\n\r\n", ""},
		{"$4\r\na\r\nb\r\n", "a\r\nb"}, // bulk strings are binary safe
		{"$-1\r\n", nil},
		{"*-1\r\n", nil},
		{"*0\r\n", []any{}},
		{"*3\r\n:1\r\n$-1\r\n+x\r\n", []any{int64(1), nil, "x"}},
		{"*2\r\n*2\r\n:1\r\n*-1\r\n*1\r\n-ERR inner\r\n", []any{[]any{int64(1), nil}, []any{Error("ERR inner")}}},
		{"+" + strings.Repeat("y", 100) + "\r\n", strings.Repeat("y", 100)}, // longer than the reader's buffer
		{"$" + strconv.Itoa(len(long)) + "\r\n" + long + "\r\n", long},
	} {
		got, err := read(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ReadReply(%.40q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

// TestReadReplyRest: a reply ends where it should; the next one follows.
func TestReadReplyRest(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("$3\r\nabc\r\n:7\r\n"))
	if v, err := ReadReply(r); v != "abc" || err != nil {
		t.Fatalf("first = %v, %v", v, err)
	}
	if v, err := ReadReply(r); v != int64(7) || err != nil {
		t.Fatalf("second = %v, %v", v, err)
	}
	if _, err := ReadReply(r); err != io.EOF {
		t.Fatalf("after the last = %v, want io.EOF", err)
	}
}

func TestReadReplyMalformed(t *testing.T) {
	for _, in := range []string{
		"\r\n",
		"?what\r\n",
		"+OK\n",
		"+OK\rX\n",
		":12a\r\n",
		":\r\n",
		"$-2\r\n",
		"$x\r\n",
		"$3\r\nabcXY",
		"$999999999999\r\n",
		"*-5\r\n",
		"*1\r\n?\r\n",
		strings.Repeat("*1\r\n", maxNesting+1) + ":1\r\n",
		"+" + strings.Repeat("z", maxLine+1) + "\r\n",
	} {
		v, err := read(in)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("ReadReply(%.40q) = %#v, %v; want a ProtocolError", in, v, err)
		}
	}
	// Cut short: the server went away inside a reply.
	for _, in := range []string{"+OK", "$5\r\nhel", "$5\r\nhello", "*2\r\n:1\r\n", "*1\r\n"} {
		if v, err := read(in); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ReadReply(%q) = %#v, %v; want io.ErrUnexpectedEOF", in, v, err)
		}
	}
}

func TestWriteCommand(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriterSize(&b, 16)
	writeCommand(w, []string{"SET", "k", "", "a\r\nb"})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$4\r\na\r\nb\r\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
}

// encode writes v as RESP2 (strings as bulk strings), for the fuzz test's
// round trip.
func encode(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("$-1\r\n")
	case string:
		b.WriteString("$" + strconv.Itoa(len(v)) + "\r\n" + v + "\r\n")
	case Error:
		b.WriteString("-" + string(v) + "\r\n")
	case int64:
		b.WriteString(":" + strconv.FormatInt(v, 10) + "\r\n")
	case []any:
		b.WriteString("*" + strconv.Itoa(len(v)) + "\r\n")
		for _, e := range v {
			encode(b, e)
		}
	}
}

// FuzzReadReply: any input gives a value or an error, never a panic, and
// a value read back from its encoding is the same value.
func FuzzReadReply(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":42\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
		"*2\r\n*1\r\n:1\r\n$-1\r\n", "*3\r\n+a\r\n-b\r\n:3\r\n", "$2\r\nab", "*99999999\r\n", "$-7\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := ReadReply(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			return
		}
		var b bytes.Buffer
		encode(&b, v)
		again, err := ReadReply(bufio.NewReader(&b))
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("%q read as %#v; its encoding %q reads as %#v, %v", in, v, b.String(), again, err)
		}
	})
}

func TestConversions(t *testing.T) {
	if s, err := String("a"); s != "a" || err != nil {
		t.Errorf("String = %q, %v", s, err)
	}
	if _, err := String(int64(1)); err == nil {
		t.Error("String(int64) succeeded")
	}
	if _, err := Int(Error("ERR no")); !HasErrorPrefix(err, "ERR") {
		t.Errorf("Int(Error) = %v, want the Error", err)
	}
	if ss, err := Strings(nil); ss != nil || err != nil {
		t.Errorf("Strings(nil) = %v, %v", ss, err)
	}
	if _, err := Strings([]any{"a", int64(1)}); err == nil {
		t.Error("Strings with an integer succeeded")
	}
	m, err := StringMap([]any{"a", "1", "b", "2"})
	if err != nil || !reflect.DeepEqual(m, map[string]string{"a": "1", "b": "2"}) {
		t.Errorf("StringMap = %v, %v", m, err)
	}
	if _, err := StringMap([]any{"a"}); err == nil {
		t.Error("StringMap of an odd array succeeded")
	}
}
