package web

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// In Chromium: a reply refused with 535 5.7.139 offers "Send through
// Microsoft Graph" on the mailbox; pressing it leads to the stand-in's
// sign-in asking for Mail.Send, and back on Admin -> Emails the mailbox
// sends through Graph. Then the transport form moves fetching to Graph
// too (a sign-in asking for Mail.ReadWrite), and choosing the same again
// needs no sign-in.
func TestBrowserTransportSwitch(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			o := newOAuthEnv(t, dialect)
			bg := context.Background()
			mb, err := o.h.mailboxes.AddMailbox(bg, desk.MailboxSpec{Address: supportAddr, Auth: "microsoft"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := browsertest.New(t)
			o.browserSignIn(t, ctx)
			o.reauthenticate(t, ctx, mb.ID, supportAddr)

			ticketID, _ := o.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Printer", RequesterAddress: "ann@customer.test"}, store.Message{})
			m, err := desk.New(o.db).Reply(bg, ticketID, o.user, desk.ReplyInput{Text: "Answer"})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Millisecond)
			if err := o.db.Write(bg, func(tx *store.Tx) error {
				if _, err := tx.ReleaseHeld(bg, mb.ID, now); err != nil {
					return err
				}
				if _, err := tx.ClaimOutbox(bg, mb.ID, "test", now, now.Add(time.Hour)); err != nil {
					return err
				}
				if ok, err := tx.BeginAttempt(bg, m.ID, "test", now); err != nil || !ok {
					return fmt.Errorf("begin: %v %w", ok, err)
				}
				return tx.MarkFailed(bg, m.ID, "auth_disabled", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", now)
			}); err != nil {
				t.Fatal(err)
			}

			visit(t, ctx, o.srv.URL+"/admin/emails")
			if got := text(t, ctx, fmt.Sprintf("#sending-problem-%d .graph-offer button", mb.ID)); got != "Send through Microsoft Graph" {
				t.Fatalf("offer = %q", got)
			}
			click(t, ctx, fmt.Sprintf("#sending-problem-%d .graph-offer button", mb.ID))
			loc := location(t, ctx)
			if q := authQuery(t, loc); !strings.Contains(q.Get("scope"), "https://graph.microsoft.com/Mail.Send") {
				t.Fatalf("the sign-in asks for %q, want Mail.Send", q.Get("scope"))
			}
			o.pickAccount(t, ctx, supportAddr)
			visit(t, ctx, o.srv.URL+"/admin/emails")
			if got := text(t, ctx, fmt.Sprintf("#transport-%d summary", mb.ID)); got != "Transport: Fetches mail over IMAP, sends replies through Microsoft Graph." {
				t.Errorf("transport = %q", got)
			}
			if f := facts(t, ctx, mb.ID); !strings.Contains(f, "Sends through: Microsoft Graph") {
				t.Errorf("facts: %s", f)
			}
			if n := eval[int](t, ctx, `document.querySelectorAll('.graph-offer').length`); n != 0 {
				t.Errorf("still offering Graph (%d)", n)
			}
			// Queued again, held until the sign-in (whose hook, the sender's,
			// this page-only setup does not run).
			if d, _ := o.db.Message(bg, m.ID); d.Delivery == nil || d.Delivery.State != store.DeliveryHeld {
				t.Errorf("the refused reply after the switch: %+v, want queued again (held for the sign-in)", d.Delivery)
			}

			// Fetching through Graph too, with the form.
			do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#transport-%d summary", mb.ID))),
				chromedp.Click(chromedp.CSS(fmt.Sprintf(`#transport-%d input[name="fetch"][value="graph"]`, mb.ID))))
			click(t, ctx, fmt.Sprintf("#transport-%d .transport-form button", mb.ID))
			if q := authQuery(t, location(t, ctx)); !strings.Contains(q.Get("scope"), "https://graph.microsoft.com/Mail.ReadWrite") ||
				strings.Contains(q.Get("scope"), "IMAP.AccessAsUser.All") || strings.Contains(q.Get("scope"), "SMTP.Send") {
				t.Fatalf("the sign-in asks for %q, want Graph's Mail.ReadWrite and Mail.Send only", q.Get("scope"))
			}
			o.pickAccount(t, ctx, supportAddr)
			visit(t, ctx, o.srv.URL+"/admin/emails")
			if got := text(t, ctx, fmt.Sprintf("#transport-%d summary", mb.ID)); got != "Transport: Fetches mail over Microsoft Graph, sends replies through Microsoft Graph." {
				t.Errorf("transport = %q", got)
			}
			if chip := chip(t, ctx, mb.ID); chip != "Connected" {
				t.Errorf("chip = %q", chip)
			}
			// The same choice again: saved, no sign-in.
			do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#transport-%d summary", mb.ID))))
			click(t, ctx, fmt.Sprintf("#transport-%d .transport-form button", mb.ID))
			if loc := location(t, ctx); !strings.HasPrefix(loc, o.srv.URL+"/admin/emails") {
				t.Fatalf("same transports went to %s", loc)
			}
			if got := text(t, ctx, ".flash"); !strings.Contains(got, "Fetches mail over Microsoft Graph, sends replies through Microsoft Graph.") {
				t.Errorf("flash = %q", got)
			}
		})
	}
}

// authQuery is the query of the stand-in's sign-in page at loc.
func authQuery(t *testing.T, loc string) url.Values {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.Contains(u.Path, "/oauth2/v2.0/authorize") {
		t.Fatalf("not on the sign-in page: %s (%v)", loc, err)
	}
	return u.Query()
}
