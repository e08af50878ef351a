package report

import (
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file keeps the text report safe and narrow: text from outside
// (error texts of metrics and notification servers, reasons, names in a
// result file) reaches a terminal, and a report should read in 80 columns.

// textWidth is the width that the text report's prose (notes, errors,
// reasons) is wrapped to.
const textWidth = 80

// Printable returns s with every character that a terminal acts on written
// as a Go escape: C0 and C1 controls and DEL (\x1b, \u009b), bidirectional
// overrides and line separators (\u202e), and bytes that are not UTF-8
// (\xff). The rest, backslashes included, is unchanged, so that an escape
// is visible rather than dropped.
func Printable(s string) string {
	return escape(s, false)
}

// PrintableLines is Printable for a message of several lines: its line
// breaks and tabs stay as they are.
func PrintableLines(s string) string {
	return escape(s, true)
}

// escape is Printable, keeping tabs and newlines when layout is set (the
// tabwriter's own separators).
func escape(s string, layout bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case layout && (r == '\t' || r == '\n'):
			b.WriteRune(r)
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) ||
		unicode.In(r, unicode.Zl, unicode.Zp)
}

// escapeWriter escapes what is written through it, tabs and newlines
// excepted: whatever a field left unescaped cannot reach the terminal.
type escapeWriter struct{ w io.Writer }

func (e escapeWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(e.w, escape(string(p), true)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// oneLine shows text from outside on one line: line breaks become "; " and
// what a terminal would act on is escaped.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "; ")
	return Printable(s)
}

// wrap lays out "prefix text", text on oneLine, in lines of at most
// textWidth columns, breaking text at spaces; later lines are indented four
// columns past the prefix's indent. A word longer than a line (a URL) is
// kept whole.
func wrap(prefix, text string) []string {
	indent := strings.Repeat(" ", len(prefix)-len(strings.TrimLeft(prefix, " "))+4)
	var lines []string
	line := prefix
	for _, word := range strings.Fields(oneLine(text)) {
		switch {
		case line == prefix || line == indent:
			line += word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= textWidth:
			line += " " + word
		default:
			lines = append(lines, line)
			line = indent + word
		}
	}
	return append(lines, line)
}
