package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// activityFor reads a mailbox's newest activity and puts it in words.
func (h *Handler) activityFor(r *http.Request, mailboxID int64) ([]activityView, error) {
	list, err := h.db.MailboxActivity(r.Context(), mailboxID, activityShown)
	if err != nil {
		return nil, err
	}
	out := make([]activityView, 0, len(list))
	for _, a := range list {
		out = append(out, activityView{Activity: a, Text: activityText(a, zoneOf(r.Context()))})
	}
	return out, nil
}

// activityText is one activity entry in words, without its time; times
// in it are written in loc.
func activityText(a store.Activity, loc *time.Location) string {
	switch a.Kind {
	case store.ActivityFetch:
		return fmt.Sprintf("Fetched %d %s", a.Count, plural(a.Count, "message", "messages"))
	case store.ActivityCatchUp:
		if !a.From.IsZero() && !a.To.IsZero() {
			return fmt.Sprintf("Caught up: fetched %d %s that arrived between %s and %s", a.Count, plural(a.Count, "message", "messages"),
				timeIn(a.From, loc), timeIn(a.To, loc))
		}
		return fmt.Sprintf("Caught up: fetched %d %s", a.Count, plural(a.Count, "message", "messages"))
	case store.ActivitySend:
		return fmt.Sprintf("Sent %d %s", a.Count, plural(a.Count, "email", "emails"))
	case store.ActivityError:
		return "Error: " + a.Message
	}
	return a.Message
}
