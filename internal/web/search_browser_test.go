package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/store"
)

// A search while tickets wait for the background indexer (grown by a bulk
// fetch on SQLite) says so above its results, in Chromium; once the
// indexer has run, the hint is gone and the newest words are found.
func TestBrowserSearchCatchingUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, _ := e.ticket(store.Ticket{Subject: "Printer jams"}, store.Message{TextBody: "The printer jams on every page."})
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		tx.BulkLoad()
		return tx.InsertMessage(ctx, &store.Message{TicketID: id, MailboxID: e.mailbox.ID, Direction: "in", Kind: store.KindEmail,
			DedupeKey: "mid:bulk-1@test", FromAddress: "ann@customer.test", TextBody: "Now the toner smudges too.", ReceivedAt: time.Now().UTC()})
	})
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(t)
	do(t, b, chromedp.Navigate(e.srv.URL+"/tickets?q=toner"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), e.user.Email), chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
	if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	do(t, b, chromedp.WaitVisible(chromedp.CSS("#ticket-results")))
	hint := eval[string](t, b, `(document.querySelector('.search-catching-up')||{}).textContent||''`)
	if !strings.Contains(hint, "1 ticket is still being indexed, so words of its newest messages") {
		t.Errorf("while the ticket waits for the indexer, the hint is %q", hint)
	}
	if got := eval[string](t, b, `document.querySelector('#ticket-results').innerText`); strings.Contains(got, "Printer jams") {
		t.Errorf("the word the ticket gained in bulk was found before the indexer ran: %q", got)
	}
	browsertest.Screenshot(t, b, "tickets-search-catching-up")
	browsertest.Axe(t, b, "ticket list while search catches up")

	if _, err := e.db.ReindexSearch(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	do(t, b, chromedp.Navigate(e.srv.URL+"/tickets?q=toner"), chromedp.WaitVisible(chromedp.CSS("#ticket-results")))
	got := eval[string](t, b, `(document.querySelector('.search-catching-up')?'hint ':'')+document.querySelector('#ticket-results').innerText`)
	if strings.HasPrefix(got, "hint") || !strings.Contains(got, "Printer jams") {
		t.Errorf("after the indexer ran: %q", got)
	}
}
