package search

import (
	"strings"
	"testing"
)

// refIndexText is IndexText as it was, on Tokens: what the fast path must
// give for any input.
func refIndexText(s string, maxBytes int) string {
	var b strings.Builder
	for _, tok := range Tokens(s) {
		n := len(tok)
		if b.Len() > 0 {
			n++
		}
		if b.Len()+n > maxBytes {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func TestIndexTextMatchesTokens(t *testing.T) {
	long := strings.Repeat("x", 250)
	for _, s := range []string{
		"", "Hello,  World! Ça va?", "café CAFÉ cafe\u0301", "ﬁle ² Straße İstanbul", "a\x00b", "\xff\xfeab\xc3",
		"naïve re\u0301sume\u0301 — “quoted” 東京タワー", long + " " + long, "e\u0301\u0301x", "MiXeD123abc_def-ghi",
	} {
		for _, max := range []int{-5, 0, 1, 3, 9, 100, 1000} {
			if got, want := IndexText(s, max), refIndexText(s, max); got != want {
				t.Errorf("IndexText(%q, %d) = %q, want %q", s, max, got, want)
			}
		}
	}
}

func FuzzIndexText(f *testing.F) {
	for _, s := range []string{"Hello, World", "Ça va? café", "a\x00b\xffc", "ﬁ² ok", "re\u0301sume\u0301"} {
		f.Add(s, 20)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max % 4096
		if got, want := IndexText(s, max), refIndexText(s, max); got != want {
			t.Fatalf("IndexText(%q, %d) = %q, want %q", s, max, got, want)
		}
	})
}

func BenchmarkIndexText(b *testing.B) {
	text := strings.Repeat("Hi Jane, thanks for the update on order #4471 — the invoice (PDF) is attached. Regards, Tom\n", 100)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		IndexText(text, 1<<20)
	}
}
