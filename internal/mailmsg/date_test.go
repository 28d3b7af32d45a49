package mailmsg

import (
	"net/mail"
	"testing"
)

// A date in the form nearly every mailer writes (RFC 1123 with a numeric
// zone), parsed by the fast path, is the time net/mail reads, zone and all.
func TestParseDateCommonForm(t *testing.T) {
	for _, v := range []string{
		"Mon, 02 Jan 2006 15:04:05 -0700",
		"Fri, 04 Dec 2026 21:26:16 +0000",
		"Tue, 02 Jan 2006 15:04:05 +0530", // the wrong weekday: neither checks it
		"Sun, 31 Dec 2199 23:59:59 -1200",
	} {
		want, err := mail.ParseDate(v)
		if err != nil {
			t.Fatalf("net/mail cannot read %q: %v", v, err)
		}
		got, ok := parseDate(v)
		_, gotOff := got.Zone()
		_, wantOff := want.Zone()
		if !ok || !got.Equal(want) || gotOff != wantOff {
			t.Errorf("parseDate(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
	// Outside the plausible years the fast path gives way as before.
	if _, ok := parseDate("Mon, 02 Jan 1960 15:04:05 -0700"); ok {
		t.Error("a date of 1960 was taken")
	}
}
