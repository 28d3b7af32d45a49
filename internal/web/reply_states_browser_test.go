package web

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// TestBrowserReplyStates shows every delivery state an agent can meet on
// one ticket (no sender runs: the states are recorded as the outbox
// records them), checks them with axe at desktop and phone width, and
// uses Send again and a refused reply in Chromium.
func TestBrowserReplyStates(t *testing.T) {
	e := newEnv(t)
	mb := e.smtpMailbox("help@example.com")
	id, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Every state of a reply", RequesterName: "Ann Smith"},
		store.Message{MessageID: "q@customer.test", TextBody: "Where is my order?"})
	ctx := context.Background()
	d := desk.New(e.db)
	ids := map[string]int64{}
	for _, s := range []string{"sent", "queued", "retrying", "auth_disabled", "send_as_denied", "unknown"} {
		m, err := d.Reply(ctx, id, e.user, desk.ReplyInput{Text: "Reply that ends " + s + "."})
		if err != nil {
			t.Fatal(err)
		}
		ids[s] = m.ID
	}
	now := time.Now()
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.ClaimOutbox(ctx, mb.ID, "test", now, now.Add(time.Minute)); err != nil {
			return err
		}
		for _, s := range []string{"sent", "retrying", "unknown"} {
			if ok, err := tx.BeginAttempt(ctx, ids[s], "test", now); err != nil || !ok {
				return fmt.Errorf("begin attempt %s: %v %v", s, ok, err)
			}
		}
		steps := []error{
			tx.MarkSent(ctx, ids["sent"], now, false),
			tx.MarkRetry(ctx, ids["retrying"], "throttled", "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", now.Add(10*time.Minute), now),
			tx.MarkFailed(ctx, ids["auth_disabled"], "auth_disabled", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", now),
			tx.MarkFailed(ctx, ids["send_as_denied"], "send_as_denied", "550 5.7.60 SMTP; Client does not have permissions to send as this sender", now),
			tx.MarkUnknown(ctx, ids["unknown"], "worker stopped", now),
		}
		for _, err := range steps {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	b := browsertest.New(t)
	page := fmt.Sprintf("%s/tickets/%d", e.srv.URL, id)
	do(t, b, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), e.user.Email), chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
	if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	do(t, b, chromedp.WaitVisible(chromedp.CSS("#reply-text")))
	for s, want := range map[string]string{
		"sent": "Sent", "queued": "Queued", "retrying": "Retrying", "auth_disabled": "Not sent", "send_as_denied": "Not sent", "unknown": "Unknown",
	} {
		if got := eval[string](t, b, fmt.Sprintf(`document.querySelector('#m-%d .dchip').textContent`, ids[s])); got != want {
			t.Errorf("%s: badge %q, want %q", s, got, want)
		}
	}
	txt := eval[string](t, b, `document.querySelector('.timeline').innerText`)
	for _, want := range []string{"enable Authenticated SMTP in the Microsoft 365 admin center", "grant it Send As permission",
		"Postdesk will retry at", "Send again", "Mark as sent"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the conversation lacks %q", want)
		}
	}
	browsertest.Screenshot(t, b, "reply-states")
	browsertest.ScreenshotAt(t, b, "reply-states-320", 320, 900)
	browsertest.Axe(t, b, "ticket page with every delivery state")
	browsertest.AxeAt(t, b, "ticket page with every delivery state at 320 px", 320, 900)
	wantFits(t, b, 320)

	// Send again: back at the reply, queued, with a status message.
	if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#m-%d .delivery-actions button`, ids["send_as_denied"])))); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, b, fmt.Sprintf(`document.querySelector('#m-%d .dchip').textContent`, ids["send_as_denied"])); got != "Queued" {
		t.Errorf("after Send again: %q", got)
	}
	if flash := eval[string](t, b, `document.querySelector('.reply-flash').textContent`); !strings.HasPrefix(flash, "Sending the reply again.") {
		t.Errorf("status message %q", flash)
	}

	// An empty reply: the page says so at the box, which keeps focus.
	do(t, b, chromedp.SendKeys(chromedp.CSS("#reply-cc"), "x@customer.test"))
	if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(`.reply-buttons button[value="solved"]`))); err != nil {
		t.Fatal(err)
	}
	if msg := eval[string](t, b, `(document.querySelector('#reply-text-error')||{}).textContent||''`); !strings.Contains(msg, "empty") {
		t.Errorf("empty reply error = %q", msg)
	}
	if f := eval[string](t, b, `document.activeElement.id`); f != "reply-text" {
		t.Errorf("focus on %q, want the reply box", f)
	}
	if cc := eval[string](t, b, `document.querySelector('#reply-cc').value`); cc != "x@customer.test" {
		t.Errorf("Cc kept as %q", cc)
	}
	browsertest.Screenshot(t, b, "reply-error")
	browsertest.Axe(t, b, "ticket page with a refused reply")
}
