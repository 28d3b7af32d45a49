package mailsync_test

import (
	"testing"

	"github.com/postdesk/postdesk/internal/mailsync"
)

func TestIMAPCursor(t *testing.T) {
	t.Parallel()
	for _, p := range [][2]uint32{{0, 0}, {7, 42}, {4294967295, 4294967295}} {
		c := mailsync.IMAPCursor(p[0], p[1])
		v, u, err := mailsync.IMAPPosition(c)
		if err != nil || v != p[0] || u != p[1] {
			t.Errorf("%v: %q decodes to %d %d %v", p, c, v, u, err)
		}
	}
	if v, u, err := mailsync.IMAPPosition(""); err != nil || v != 0 || u != 0 {
		t.Errorf("empty cursor: %d %d %v", v, u, err)
	}
	for _, bad := range []mailsync.Cursor{"graph:abc", "imap:7", "imap:x:1", "imap:4294967296:1"} {
		if _, _, err := mailsync.IMAPPosition(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
	imap := mailsync.IMAP{}
	tests := []struct {
		stored, next mailsync.Cursor
		ahead        bool
	}{
		{"", mailsync.IMAPCursor(7, 1), false},
		{mailsync.IMAPCursor(7, 10), mailsync.IMAPCursor(7, 11), false},
		{mailsync.IMAPCursor(7, 10), mailsync.IMAPCursor(7, 10), false},
		{mailsync.IMAPCursor(7, 10), mailsync.IMAPCursor(7, 9), true},  // never backwards under one UIDVALIDITY
		{mailsync.IMAPCursor(7, 10), mailsync.IMAPCursor(5, 0), false}, // a new UIDVALIDITY rescans
	}
	for _, tt := range tests {
		if got := imap.Ahead(tt.stored, tt.next); got != tt.ahead {
			t.Errorf("Ahead(%q, %q) = %v", tt.stored, tt.next, got)
		}
	}
}
