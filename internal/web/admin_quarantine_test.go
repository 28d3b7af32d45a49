package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const poisonRaw = "From: Mallory <m@customer.test>\r\nTo: support@example.com\r\nSubject: a poison email\r\n" +
	"Message-ID: <poison@customer.test>\r\n\r\nThe database refuses this one.\r\n"

// quarantinePoison quarantines an email the database refuses (as an
// import would) and returns its row and the function that lifts the refusal.
func (o *oauthEnv) quarantinePoison(mb store.Mailbox) (store.Quarantined, func()) {
	o.t.Helper()
	drop := storetest.PoisonTrigger(o.t, o.db)
	in := ingest.New(o.db, ingest.Options{Now: o.clock.Now})
	o.h.ingest = in
	_, err := in.IngestOrQuarantine(context.Background(), mb, bytes.NewReader([]byte(poisonRaw)),
		ingest.Failed{Origin: store.OriginImport, SourceName: "poison.eml"})
	var qe *ingest.QuarantinedError
	if !errors.As(err, &qe) {
		o.t.Fatalf("ingest of a refused email: %v, want it quarantined", err)
	}
	return qe.Row, drop
}

// Admin -> Emails shows the quarantined email in its notice and under its
// mailbox, with its source and a Retry button (admins only, CSRF-checked);
// Retry reports a failure while the cause lasts and stores it once fixed.
func TestQuarantineRetryButton(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			o := newOAuthEnv(t, dialect)
			mb := o.addMailbox(supportAddr)
			q, drop := o.quarantinePoison(mb)
			retry := fmt.Sprintf("/admin/quarantine/%d/retry", q.ID)
			source := fmt.Sprintf("/admin/quarantine/%d/source", q.ID)

			agent := o.signedInAs(agentEmail)
			res, _ := o.get(agent, source)
			wantStatus(t, res, http.StatusForbidden)
			wantStatus(t, o.post(agent, retry, url.Values{"csrf": {o.csrf(agent)}}), http.StatusForbidden)

			c := o.signedIn()
			res, body := o.get(c, "/admin/emails")
			wantStatus(t, res, http.StatusOK)
			wantContains(t, body, "support@example.com: 1 email could not be stored: ", "poison",
				`href="`+source+`"`, `action="`+retry+`"`, "Emails that could not be stored",
				fmt.Sprintf(`id="quarantine-%d"`, mb.ID), "imported from poison.eml")
			res, body = o.get(c, source)
			wantStatus(t, res, http.StatusOK)
			if body != poisonRaw || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("source: %q %q", res.Header.Get("Content-Type"), body)
			}
			for _, token := range []string{"", "forged"} {
				wantStatus(t, o.post(c, retry, url.Values{"csrf": {token}}), http.StatusForbidden)
			}
			if got, _ := o.db.QuarantinedMessage(context.Background(), q.ID); got.Attempts != 1 {
				t.Fatalf("a forged form retried: %+v", got)
			}

			// Still refused: the flash says so, the row records it.
			res = o.post(c, retry, url.Values{"csrf": {o.csrf(c)}})
			wantStatus(t, res, http.StatusSeeOther)
			if loc := res.Header.Get("Location"); loc != fmt.Sprintf("/admin/emails#mailbox-%d", mb.ID) {
				t.Errorf("redirect to %q", loc)
			}
			_, body = o.get(c, "/admin/emails")
			wantContains(t, body, fmt.Sprintf("Quarantined email #%d still could not be stored: ", q.ID), "retried 2 times")

			drop() // the code is fixed
			wantStatus(t, o.post(c, retry, url.Values{"csrf": {o.csrf(c)}}), http.StatusSeeOther)
			_, body = o.get(c, "/admin/emails")
			wantContains(t, body, fmt.Sprintf("Quarantined email #%d is stored now, on ticket #", q.ID))
			wantNotContains(t, body, "could not be stored", `action="`+retry+`"`)
			if n, _ := o.db.CountTickets(context.Background(), store.TicketFilter{}); n != 1 {
				t.Fatalf("%d tickets after the retry, want 1", n)
			}
			wantStatus(t, o.post(c, "/admin/quarantine/99999/retry", url.Values{"csrf": {o.csrf(c)}}), http.StatusNotFound)
		})
	}
}

// In a real Chromium: the admin sees the quarantine notice, clicks its
// Retry after the fix, and lands back on Admin -> Emails with the email
// stored and the notice gone.
func TestBrowserQuarantineRetry(t *testing.T) {
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	q, drop := o.quarantinePoison(mb)
	ctx := browsertest.New(t)
	o.browserSignIn(t, ctx)
	if status := visit(t, ctx, o.srv.URL+"/admin/emails"); status != http.StatusOK {
		t.Fatalf("Admin -> Emails: %d", status)
	}
	if got := text(t, ctx, ".notice-quarantined"); !strings.Contains(got, "1 email could not be stored: ") || !strings.Contains(got, "View source") {
		t.Fatalf("notice = %q", got)
	}
	if got := text(t, ctx, fmt.Sprintf("#quarantine-%d", mb.ID)); !strings.Contains(got, "imported from poison.eml") {
		t.Fatalf("the mailbox's quarantine = %q", got)
	}
	browsertest.Screenshot(t, ctx, "emails-quarantine")
	browsertest.ScreenshotAt(t, ctx, "emails-quarantine-phone", 390, 844)
	if got := chip(t, ctx, mb.ID); got != "Not connected" {
		t.Errorf("chip = %q", got)
	}
	browsertest.Axe(t, ctx, "Emails, not connected, with a quarantined email")
	browsertest.AxeAt(t, ctx, "Emails, not connected, with a quarantined email, at phone width", 375, 740)

	drop()
	if status := click(t, ctx, fmt.Sprintf(`.notice-quarantined form[action="/admin/quarantine/%d/retry"] button`, q.ID)); status != http.StatusOK {
		t.Fatalf("after Retry: %d", status)
	}
	if got := text(t, ctx, ".flash"); !strings.Contains(got, fmt.Sprintf("Quarantined email #%d is stored now, on ticket #", q.ID)) {
		t.Fatalf("flash = %q", got)
	}
	if got := text(t, ctx, ".notice-quarantined, .quarantine"); got != "" {
		t.Fatalf("still shown after the retry: %q", got)
	}
	browsertest.Axe(t, ctx, "Emails after a retry")
}
