package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// maxMailboxBanners is how many banners about single mailboxes a page
// shows; the rest are summed up in one more.
const maxMailboxBanners = 3

// AuthBanners returns the Options.Banners function that warns about
// mailbox authorizations on every signed-in page: one banner per mailbox
// that is expiring (warning), overdue (louder) or needs reauthentication
// (danger), and one per provider that refuses Postdesk's application
// (danger, "update the client secret"). now is the clock OAuth uses (nil:
// time.Now); log receives read failures (nil: discarded), which the page
// also shows as a banner. With o nil there are no banners.
func AuthBanners(db *store.DB, o *oauth.Service, now func() time.Time, log *slog.Logger) func(context.Context) []Banner {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context) []Banner {
		if o == nil {
			return nil
		}
		sts, err := o.Statuses(ctx)
		var auths []store.MailboxAuth
		if err == nil {
			auths, err = db.MailboxAuths(ctx, store.AuthOAuth)
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			log.Error("read mailbox authorizations for the banner", "err", err)
			return []Banner{{Level: BannerWarning, Title: "Postdesk could not check the mailboxes' sign-in.",
				Text: "Reload the page in a moment; if this stays, the server's log says why.", LinkURL: "/admin/emails", LinkText: "Open Emails"}}
		}
		errorAt := make(map[int64]time.Time, len(auths))
		for _, a := range auths {
			errorAt[a.MailboxID] = a.ErrorAt
		}
		list := authBanners(o, sts, errorAt, now(), zoneOf(ctx))
		if s, ok := ctx.Value(sessionKey).(signedInAs); ok && s.user.Role != store.RoleAdmin {
			// Agents cannot open Admin -> Emails: tell them who can fix it.
			for i := range list {
				list[i].LinkURL, list[i].LinkText = "", ""
				list[i].Text += " An administrator can fix this under Admin → Emails."
			}
		}
		return list
	}
}

// authBanners builds the banners of statuses at now, with times in loc: provider faults first
// (one per provider), then mailboxes that stopped, are overdue, or are
// expiring soonest first, at most maxMailboxBanners and "and N more".
func authBanners(o *oauth.Service, sts []oauth.Status, errorAt map[int64]time.Time, now time.Time, loc *time.Location) []Banner {
	var out, danger, urgent, warning []Banner
	faults := map[string][]oauth.Status{}
	var faultOrder []string
	sts = slices.Clone(sts)
	slices.SortStableFunc(sts, func(a, b oauth.Status) int { return a.Deadline.Compare(b.Deadline) })
	for _, st := range sts {
		if st.Kind != store.AuthOAuth || st.NotConnected {
			continue
		}
		link := "/admin/emails#mailbox-" + strconv.FormatInt(st.MailboxID, 10)
		switch st.State {
		case store.AuthProviderFault:
			if _, ok := faults[st.Provider]; !ok {
				faultOrder = append(faultOrder, st.Provider)
			}
			faults[st.Provider] = append(faults[st.Provider], st)
		case store.AuthNeedsReauth:
			title := st.Address + " stopped receiving mail"
			if at := stoppedAt(st, errorAt[st.MailboxID]); !at.IsZero() {
				title += " on " + timeIn(at, loc)
			}
			reason := st.Reason
			if reason == "" {
				reason = "The provider refused the stored sign-in."
			}
			danger = append(danger, Banner{Level: BannerDanger, Title: title + ":", Text: reason, LinkURL: link, LinkText: "Reauthenticate"})
		case store.AuthExpiring:
			if st.Overdue {
				urgent = append(urgent, Banner{Level: BannerUrgent,
					Title:   st.Address + " reauthentication was due on " + timeIn(st.ReauthDueAt, loc) + ";",
					Text:    "mail still arrives while " + providerLabel(o, st.Provider) + " accepts the old sign-in, but that can stop at any time.",
					LinkURL: link, LinkText: "Reauthenticate now"})
				continue
			}
			warning = append(warning, Banner{Level: BannerWarning,
				Title:   st.Address + " needs reauthentication " + relDays(st.Deadline, now),
				Text:    "(due " + timeIn(st.Deadline, loc) + "). Mail stops arriving if it runs out.",
				LinkURL: link, LinkText: "Reauthenticate"})
		}
	}
	for _, name := range faultOrder {
		list := faults[name]
		b := Banner{Level: BannerDanger, LinkURL: "/admin/emails", LinkText: "See the mailboxes"}
		affected := fmt.Sprintf("%d %s affected", len(list), plural(len(list), "mailbox", "mailboxes"))
		if list[0].SecretFault {
			b.Title = providerLabel(o, name) + " refuses Postdesk's client secret:"
			b.Text = "update the client secret (" + secretEnv(name) + ") and restart Postdesk. " + affected + "; no mail is fetched meanwhile."
		} else {
			b.Title = providerLabel(o, name) + " refuses Postdesk's application:"
			b.Text = list[0].Reason + " " + affected + "."
		}
		out = append(out, b)
	}
	mailboxes := append(append(danger, urgent...), warning...)
	if len(mailboxes) > maxMailboxBanners {
		rest := mailboxes[maxMailboxBanners:]
		mailboxes = append(mailboxes[:maxMailboxBanners:maxMailboxBanners], Banner{Level: rest[0].Level,
			Title:   fmt.Sprintf("And %d more %s %s attention.", len(rest), plural(len(rest), "mailbox", "mailboxes"), plural(len(rest), "needs", "need")),
			LinkURL: "/admin/emails", LinkText: "See them all"})
	}
	return append(out, mailboxes...)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
