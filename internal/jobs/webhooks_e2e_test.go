package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A customer's answer delivered to the test Dovecot and fetched by mail
// sync reaches an admin's webhook receiver as ticket.customer_replied with
// a valid signature; the mailbox's token revoked at the stand-in makes the
// next refresh fail, and the receiver gets mailbox.auth_state_changed,
// once.
func TestWebhookFromRealMail(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			stack, idp := newStack(t, false, nil, supportAddr)
			e := newDesk(t, dialect, stack, idp)
			r := newReceiver(t)
			admin := desk.NewWebhookAdmin(e.db, e.vault, true, e.hooks.EnqueueTest)
			hook, secret, err := admin.Create(e.ctx, desk.WebhookInput{URL: r.URL + "/postdesk", Enabled: true,
				Events: []string{store.EventTicketCustomerReplied, store.EventMailboxAuthStateChange}}, e.agent)
			if err != nil {
				t.Fatal(err)
			}
			r.secret = []byte(secret)
			mb := e.addMailbox(supportAddr, "", "")
			ticket := e.newTicket(mb, customerAddr, "Printer on fire", "q1@customer.test")

			e.sync()
			answer := customerEmail(customerAddr, supportAddr, fmt.Sprintf("Re: Printer on fire [#%d]", ticket), "a1@customer.test", "q1@customer.test", "Still on fire.")
			if err := stack.SendSMTP(e.ctx, customerAddr, []string{supportAddr}, answer); err != nil {
				t.Fatal(err)
			}
			got := waitRequests(t, r, 1, 30*time.Second)
			p := got[0]
			ticketData, _ := p.payload.Data["ticket"].(map[string]any)
			if p.sigErr != nil || p.payload.Type != store.EventTicketCustomerReplied || ticketData["id"] != float64(ticket) ||
				p.header.Get("Postdesk-Event") != store.EventTicketCustomerReplied {
				t.Fatalf("first request: signature %v, %s", p.sigErr, p.body)
			}

			// The token revoked at the stand-in: the next refresh fails for good.
			if err := idp.Revoke(supportAddr); err != nil {
				t.Fatal(err)
			}
			idp.Clock().Advance(10 * time.Minute)
			if err := e.oauth.RefreshNow(e.ctx, mb.ID); err != nil && !isNeedsReauth(err) {
				t.Fatalf("refresh after revocation: %v", err)
			}
			got = waitRequests(t, r, 2, 30*time.Second)
			a := got[1]
			mailbox, _ := a.payload.Data["mailbox"].(map[string]any)
			if a.sigErr != nil || a.payload.Type != store.EventMailboxAuthStateChange || a.payload.Data["state"] != "needs_reauth" ||
				a.payload.Data["previous"] != "ok" || mailbox["address"] != supportAddr {
				t.Fatalf("second request: signature %v, %s", a.sigErr, a.body)
			}
			time.Sleep(2 * time.Second) // mail sync meets the refused token too: still one event
			if n := len(r.requests()); n != 2 {
				for _, q := range r.requests() {
					t.Logf("%s", q.body)
				}
				t.Fatalf("the receiver got %d requests, want 2", n)
			}
			ds, err := e.db.WebhookDeliveries(e.ctx, hook.ID, 10)
			if err != nil || len(ds) != 2 || ds[0].State != store.WebhookDelivered || ds[1].State != store.WebhookDelivered {
				t.Fatalf("deliveries: %+v %v", ds, err)
			}
		})
	}
}

func isNeedsReauth(err error) bool { return err != nil && errors.Is(err, oauth.ErrNeedsReauth) }

func waitRequests(t *testing.T, r *receiver, n int, within time.Duration) []received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if got := r.requests(); len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the receiver got %d requests, want %d", len(r.requests()), n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
