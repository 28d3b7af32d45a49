package web

import (
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/config"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// This file puts a mailbox's authorization (oauth.Status) into words, for
// Admin -> Emails and the banners alike, so both always say the same.

// providerLabel is a provider's name for people: "Microsoft", "Google".
func providerLabel(o *oauth.Service, name string) string {
	if o != nil {
		if p, ok := o.Provider(name); ok {
			switch {
			case p.Kind == oauth.KindMicrosoft:
				return "Microsoft"
			case p.Kind == oauth.KindGoogle && p.Name == "google-testing":
				return "Google (testing app)"
			case p.Kind == oauth.KindGoogle:
				return "Google"
			}
		}
	}
	switch name {
	case "microsoft":
		return "Microsoft"
	case "google":
		return "Google"
	case "":
		return "Not chosen"
	}
	return name
}

// secretEnv is the setting that holds a provider's client secret
// (POSTDESK_MICROSOFT_CLIENT_SECRET for "microsoft"), as config names it.
func secretEnv(provider string) string {
	_, secret := config.ProviderEnvs(provider)
	return secret
}

// clientIDEnv is the setting that holds a provider's client ID.
func clientIDEnv(provider string) string {
	id, _ := config.ProviderEnvs(provider)
	return id
}

// timeLayout is how every page writes a moment: the day, the time of day
// and the zone, "3 Mar 2026, 10:02 UTC". Pages show times in the viewer's
// time zone (their profile's; UTC by default).
const timeLayout = "2 Jan 2006, 15:04 MST"

// timeText writes t in UTC: "3 Mar 2026, 10:02 UTC".
func timeText(t time.Time) string { return timeIn(t, time.UTC) }

// timeIn writes t in loc (nil: UTC): "3 Mar 2026, 11:02 CET".
func timeIn(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(timeLayout)
}

// daysText counts whole days: "1 day", "9 days".
func daysText(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// relDays says how far t is from now in whole days, rounded towards now
// (so "in 9 days" means at least nine days are left): "in 9 days",
// "within a day", "today" (up to a day ago), "3 days ago".
func relDays(t, now time.Time) string {
	d := t.Sub(now)
	if d > 0 {
		if d < oauth.Day {
			return "within a day"
		}
		return "in " + daysText(int(d/oauth.Day))
	}
	if -d < oauth.Day {
		return "today"
	}
	return daysText(int(-d/oauth.Day)) + " ago"
}

// stateView is a mailbox's authorization in words.
type stateView struct {
	Chip       string // short label of the state chip
	Tone       string // chip colour: ok, warn, urgent, danger, muted
	Detail     string // one sentence: why, and what to do
	Connected  bool   // has tokens (not "not connected", not a password mailbox)
	CanConnect bool   // a sign-in would help: show Connect / Reauthenticate
	Fault      bool   // the provider refuses the application: fix the secret, not the mailbox
	Stopped    bool   // no mail is fetched: a due date means nothing now
}

// describe puts st in words at now, with times in loc. stoppedAt is when a
// refused refresh was recorded (zero: unknown).
func describe(o *oauth.Service, st oauth.Status, stoppedAt, now time.Time, loc *time.Location) stateView {
	switch {
	case st.Kind == store.AuthPassword:
		return stateView{Chip: "Password", Tone: "muted", Detail: "Signs in to its mail server with a password."}
	case st.Kind != store.AuthOAuth || st.NotConnected:
		v := stateView{Chip: "Not connected", Tone: "muted", CanConnect: o != nil,
			Detail: "No mail is fetched until someone signs in with the mailbox's account."}
		return v
	}
	switch st.State {
	case store.AuthOK:
		return stateView{Chip: "Connected", Tone: "ok", Connected: true, CanConnect: o != nil}
	case store.AuthExpiring:
		if st.Overdue {
			return stateView{Chip: "Overdue since " + timeIn(st.ReauthDueAt, loc) + " (still fetching)", Tone: "urgent", Connected: true, CanConnect: o != nil,
				Detail: fmt.Sprintf("Reauthentication was due on %s. Mail still arrives while %s accepts the old sign-in, which can stop at any time: reauthenticate now.",
					timeIn(st.ReauthDueAt, loc), providerLabel(o, st.Provider))}
		}
		return stateView{Chip: "Reauthentication due " + relDays(st.Deadline, now), Tone: "warn", Connected: true, CanConnect: o != nil,
			Detail: fmt.Sprintf("Reauthenticate before %s to keep mail arriving.", timeIn(st.Deadline, loc))}
	case store.AuthProviderFault:
		v := stateView{Chip: "Client secret problem", Tone: "danger", Connected: true, Fault: true, Stopped: true}
		if st.SecretFault {
			v.Detail = fmt.Sprintf("%s refuses Postdesk's client secret: update the client secret (%s) and restart Postdesk. Reauthenticating does not help.",
				providerLabel(o, st.Provider), secretEnv(st.Provider))
		} else {
			v.Chip = "Provider settings problem"
			v.Detail = st.Reason
		}
		return v
	}
	// needs_reauth
	v := stateView{Chip: "Needs reauthentication", Tone: "danger", Connected: true, CanConnect: o != nil, Stopped: true}
	reason := st.Reason
	if reason == "" {
		reason = "The provider refused the stored sign-in."
	}
	if !stoppedAt.IsZero() {
		v.Detail = "Stopped receiving mail on " + timeIn(stoppedAt, loc) + ": " + reason
	} else {
		v.Detail = reason
	}
	return v
}

// stoppedAt is when a mailbox stopped fetching: when the refusal was
// recorded, else when its refresh token ran out.
func stoppedAt(st oauth.Status, errorAt time.Time) time.Time {
	if !errorAt.IsZero() {
		return errorAt
	}
	return st.ExpiresAt
}
