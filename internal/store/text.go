package store

import (
	"strings"
	"unicode/utf8"
)

// CleanText makes a text value storable, the same on both databases: it
// drops NUL (PostgreSQL refuses U+0000 in text) and replaces each run of
// bytes that is not UTF-8 with U+FFFD (PostgreSQL refuses those; SQLite
// would keep them and compare them differently). Everything else, control
// characters included, is kept. Every string a query sends passes it (see
// cleanArgs), so a value decoded from an email can never be refused, and a
// lookup finds what an insert stored.
func CleanText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

// cleanArgs applies CleanText to every string argument of a query. It
// copies args only when something changes.
func cleanArgs(args []any) []any {
	var out []any
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			continue
		}
		if c := CleanText(s); c != s {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = c
		}
	}
	if out == nil {
		return args
	}
	return out
}
