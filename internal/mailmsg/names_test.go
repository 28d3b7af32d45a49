package mailmsg

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// A subject's right-to-left override is removed (it made "Invoice
// \u202eFDP.exe" read "Invoice exe.PDF" on the ticket), with a problem
// saying so; Hebrew with its marks is left as it is.
func TestSubjectBidiControls(t *testing.T) {
	for _, c := range []struct{ subject, want string }{
		{"Invoice \u202eFDP.exe\u202c", "Invoice FDP.exe"},
		{"\u2067abc\u2069 def", "abc def"},
		{"שלום \u200fעולם", "שלום \u200fעולם"},
	} {
		raw := "From: a@example.com\r\nSubject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(c.subject)) + "?=\r\n\r\nhi\r\n"
		m, err := Parse(strings.NewReader(raw), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != c.want {
			t.Errorf("subject %q, want %q", m.Subject, c.want)
		}
		if flagged := strings.Contains(strings.Join(m.Problems, "\n"), "right-to-left override"); flagged != (c.subject != c.want) {
			t.Errorf("%q: problems %q", c.subject, m.Problems)
		}
	}
}

// A stored address list reads back as it was written: a name's own
// parentheses stay ("Jane (home)" lost its closing one), and a quoted name
// with a colon is no group ("Carl Bcc: x@evil.test" was cut at its colon,
// and the reply went to carl@ named "x@evil.test").
func TestStoredAddressesKeepNames(t *testing.T) {
	list := []Address{{`Jane "JJ"`, "jj@customer.test"}, {`a\b`, "ab@customer.test"}, {`ends\`, "e@customer.test"}, {"Jane (home)", "jane@customer.test"}, {"Carl Bcc: x@evil.test", "carl@victim.test"}, {"Boss, The", "boss@customer.test"}, {"", "plain@customer.test"}}
	var parts []string
	for _, a := range list {
		parts = append(parts, a.Quoted())
	}
	got := StoredAddresses(strings.Join(parts, ", "))
	if fmt.Sprint(got) != fmt.Sprint(list) {
		t.Errorf("read back %q\n got %v\nwant %v", strings.Join(parts, ", "), got, list)
	}
	// Lists stored before names were quoted, and old-style comments.
	for stored, want := range map[string]Address{
		"Jane (home) <jane@customer.test>": {"Jane (home)", "jane@customer.test"},
		"jane@customer.test (Jane Doe)":    {"Jane Doe", "jane@customer.test"},
	} {
		if got := StoredAddresses(stored); len(got) != 1 || got[0] != want {
			t.Errorf("%q: %v, want %v", stored, got, want)
		}
	}
}
