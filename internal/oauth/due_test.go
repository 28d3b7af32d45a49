package oauth

import (
	"testing"
	"time"
)

// Each mailbox's refresh age lies in [every/2, every), and 1,000 mailboxes
// connected in the same minute fall due spread over that half interval:
// no hour of it gets more than twice its share.
func TestDueAgeSpreads(t *testing.T) {
	const every = 12 * time.Hour
	perHour := map[int]int{}
	for id := int64(1); id <= 1000; id++ {
		d := dueAge(id, every)
		if d < every/2 || d >= every {
			t.Fatalf("mailbox %d: due age %s outside [%s, %s)", id, d, every/2, every)
		}
		perHour[int(d/time.Hour)]++
	}
	for h, n := range perHour {
		if n > 2*1000/6 {
			t.Fatalf("hour %d: %d of 1000 refreshes due, want about %d: %v", h, n, 1000/6, perHour)
		}
	}
	if len(perHour) != 6 {
		t.Fatalf("refreshes fall due in %d hours, want all 6 of the half interval: %v", len(perHour), perHour)
	}
}
