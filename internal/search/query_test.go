package search

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Dashboard", []string{"dashboard"}},
		{"Café NAÏVE résumé", []string{"cafe", "naive", "resume"}},
		{"alice@example.com", []string{"alice", "example", "com"}},
		{"foo-bar, 1.5 x²", []string{"foo", "bar", "1", "5", "x2"}},
		{"ﬁle Ｆｕｌｌ", []string{"file", "full"}},
		{"Straße İstanbul", []string{"straße", "istanbul"}},
		{"Привет мир Ελλάδα", []string{"привет", "мир", "ελλαδα"}},
		{"日本語テキスト", []string{"日本語テキスト"}},
		{"\x00nul\x00 \xffbad da\x00sh", []string{"nul", "bad", "dash"}},
		{`"quoted" 'single' (paren) OR AND NOT NEAR * ^ :`, []string{"quoted", "single", "paren", "or", "and", "not", "near"}},
		{"", nil},
	} {
		if got := Tokens(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("a", 300)
	if got := Tokens(long); len(got) != 1 || len(got[0]) != MaxTokenRunes {
		t.Errorf("a 300-letter word gives %d tokens of %d letters, want 1 of %d", len(got), len(got[0]), MaxTokenRunes)
	}
}

func TestIndexText(t *testing.T) {
	if got := IndexText("Hello,  World! Ça va?", 100); got != "hello world ca va" {
		t.Errorf("IndexText = %q", got)
	}
	if got := IndexText("one two three four", 9); got != "one two" {
		t.Errorf("IndexText cut at 9 bytes = %q, want %q (cut at a word)", got, "one two")
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Query
	}{
		{"", Query{}},
		{"   ", Query{}},
		{"dashboard", Query{Terms: []Term{{Tokens: []string{"dashboard"}, Prefix: true}}}},
		{"refund dash", Query{Terms: []Term{{Tokens: []string{"refund"}}, {Tokens: []string{"dash"}, Prefix: true}}}},
		{"dash* refund", Query{Terms: []Term{{Tokens: []string{"dash"}, Prefix: true}, {Tokens: []string{"refund"}, Prefix: true}}}},
		{"an", Query{Terms: []Term{{Tokens: []string{"an"}}}}}, // too short to be a prefix
		{`"Card Declined" now`, Query{Terms: []Term{{Tokens: []string{"card", "declined"}}, {Tokens: []string{"now"}, Prefix: true}}}},
		{`printer "card declined"`, Query{Terms: []Term{{Tokens: []string{"printer"}}, {Tokens: []string{"card", "declined"}}}}},
		{`error -spam -"out of office"`, Query{Terms: []Term{{Tokens: []string{"error"}}, {Tokens: []string{"spam"}, Not: true},
			{Tokens: []string{"out", "of", "office"}, Not: true}}}},
		{"from:ali", Query{Terms: []Term{{Tokens: []string{"ali"}, Prefix: true, Field: FieldFrom}}}},
		{"FROM:Alice@Example.com", Query{Terms: []Term{{Tokens: []string{"alice", "example", "com"}, Prefix: true, Field: FieldFrom}}}},
		{`from:"Alice Smith"`, Query{Terms: []Term{{Tokens: []string{"alice", "smith"}, Field: FieldFrom}}}},
		{"-from:bot invoice", Query{Terms: []Term{{Tokens: []string{"bot"}, Prefix: true, Not: true, Field: FieldFrom},
			{Tokens: []string{"invoice"}, Prefix: true}}}},
		{"status:Open status:pending status:open", Query{Statuses: []string{"open", "pending"}}},
		{"mailbox:Support@Example.com", Query{Mailboxes: []string{"support@example.com"}}},
		{"assignee:me", Query{Assignee: AssigneeMe}},
		{"assignee:NONE", Query{Assignee: AssigneeNone}},
		{"assignee:bob@example.com", Query{Assignee: "bob@example.com"}},
		{"#123", Query{TicketID: 123, Terms: []Term{{Tokens: []string{"123"}}}}},
		{" 4 ", Query{TicketID: 4, Terms: []Term{{Tokens: []string{"4"}}}}},
		{"#0", Query{Terms: []Term{{Tokens: []string{"0"}}}}},
		{"order 1234", Query{Terms: []Term{{Tokens: []string{"order"}}, {Tokens: []string{"1234"}}}}},
		{"Error: disk full", Query{Terms: []Term{{Tokens: []string{"error"}}, {Tokens: []string{"disk"}}, {Tokens: []string{"full"}, Prefix: true}}}},
		{"https://example.com/x 10:30", Query{Terms: []Term{{Tokens: []string{"https", "example", "com", "x"}}, {Tokens: []string{"10", "30"}}}}},
		{"status:open -spam", Query{Statuses: []string{"open"}, Terms: []Term{{Tokens: []string{"spam"}, Not: true}}}},
		{`AND OR NOT "NEAR(" ^x *`, Query{Terms: []Term{{Tokens: []string{"and"}}, {Tokens: []string{"or"}}, {Tokens: []string{"not"}},
			{Tokens: []string{"near"}}, {Tokens: []string{"x"}}}}},
		{"café", Query{Terms: []Term{{Tokens: []string{"cafe"}, Prefix: true}}}},
	} {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", c.in, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`printer "card declined`, `The quote at character 9 is not closed`},
		{`"`, `The quote at character 1 is not closed`},
		{"foo:bar", `"foo:" is not a filter; use from:, status:, mailbox: or assignee:, or put the text in quotes to search for it ("foo:bar")`},
		{"status:closed", `status: must be open, pending or solved, not "closed"`},
		{"status: open", "status: needs a value right after the colon, as in status:open"},
		{"from:", "from: needs a value right after the colon"},
		{"from:@@", "from: needs an address, a name or a part of one"},
		{"assignee:bob", `assignee: must be me, none or an agent's email address, not "bob"`},
		{"assignee:me assignee:none", "assignee: is given twice"},
		{"-status:open", "-status: cannot be negated"},
		{"-spam", "Add a word to look for"},
		{"???", `There is nothing to search for in "???"`},
		{strings.Repeat("a ", 600), "The search is too long"},
		{strings.Repeat("a ", 40), "more than 32 words"},
	} {
		_, err := Parse(c.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%.40q) = %v, want an *Error", c.in, err)
			continue
		}
		if !strings.Contains(e.Msg, c.want) {
			t.Errorf("Parse(%.40q): %q, want it to say %q", c.in, e.Msg, c.want)
		}
	}
}

// FuzzParse holds the invariants for any input: Parse never panics, and an
// accepted query's tokens are letters and digits only.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`a "b c" -d from:e status:open`, `"`, `#12`, "x\x00y", `NEAR("a" "b")`, `a:b:c`, `-"`, `"x"*`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Msg == "" {
				t.Fatalf("Parse(%q) error %v is not an *Error with a message", s, err)
			}
			return
		}
		for _, term := range q.Terms {
			if len(term.Tokens) == 0 {
				t.Fatalf("Parse(%q): a term without tokens", s)
			}
			for _, tok := range term.Tokens {
				if tok == "" || !reflect.DeepEqual(Tokens(tok), []string{tok}) {
					t.Fatalf("Parse(%q): token %q is not one folded token", s, tok)
				}
			}
		}
	})
}

func TestUnquoted(t *testing.T) {
	in := "Still broken.\n\nOn Monday you wrote:\n> Did you restart?\n  >> Is it plugged in?\nThanks > all"
	if got, want := Unquoted(in), "Still broken.\n\nOn Monday you wrote:\nThanks > all"; got != want {
		t.Errorf("Unquoted = %q, want %q", got, want)
	}
}
