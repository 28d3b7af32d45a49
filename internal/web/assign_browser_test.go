package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/store"
)

// TestBrowserAssignment, in a real Chromium: an agent takes a ticket on its
// page and finds it under "Mine" with its count, then checks two tickets
// on the Unassigned view and assigns them to another agent, who finds
// them under their own "Mine" after signing in.
func TestBrowserAssignment(t *testing.T) {
	e := newEnv(t)
	bg := context.Background()
	ann, _, err := auth.CreateUser(bg, e.db, "ann@example.com", "Ann Agent", store.RoleAgent, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var ids []int64
	for i, s := range []string{"Printer on fire", "Invoice shows the wrong VAT number for our Luxembourg office", "Cannot sign in after the password reset", "Newsletter unsubscribe"} {
		id, _ := e.ticket(store.Ticket{Subject: s, RequesterName: "Jane Cooper", RequesterAddress: "jane.cooper@customer.test",
			CreatedAt: now.Add(time.Duration(i-10) * time.Hour)}, store.Message{TextBody: "Hello, please help."})
		ids = append(ids, id)
	}
	ctx := browsertest.New(t)
	signIn := func(email string) {
		t.Helper()
		do(t, ctx, chromedp.Navigate(e.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#email")),
			chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
		if st := click(t, ctx, `button[type="submit"]`); st != http.StatusOK {
			t.Fatalf("sign in as %s: status %d", email, st)
		}
	}
	mineCount := func() string {
		t.Helper()
		return text(t, ctx, `nav.views a[href*="view=mine"] .tab-count`)
	}
	signIn(e.user.Email)

	// Take the first ticket on its page.
	visit(t, ctx, fmt.Sprintf("%s/tickets/%d", e.srv.URL, ids[0]))
	if got := text(t, ctx, ".ticket-assignee"); got != "Nobody" {
		t.Fatalf("a new ticket's assignee shows as %q", got)
	}
	browsertest.Screenshot(t, ctx, "assign-ticket")
	browsertest.ScreenshotAt(t, ctx, "assign-ticket-320", 320, 700)
	browsertest.Axe(t, ctx, "ticket page with Assign to")
	browsertest.AxeAt(t, ctx, "ticket page with Assign to at 320 px", 320, 700)
	if st := click(t, ctx, `button[name="take"]`); st != http.StatusOK {
		t.Fatalf("Take it: status %d", st)
	}
	if got := text(t, ctx, ".ticket-assignee"); got != "Agent (you)" {
		t.Errorf("after Take it the assignee shows as %q", got)
	}
	if got := text(t, ctx, ".timeline .event"); !strings.Contains(got, "Taken by Agent") {
		t.Errorf("timeline events: %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('button[name="take"]').length`); n != 0 {
		t.Error("Take it is still offered on the agent's own ticket")
	}

	// It is under Mine, with the count.
	if st := click(t, ctx, `.crumbs a`); st != http.StatusOK {
		t.Fatalf("back to the list: status %d", st)
	}
	if got := mineCount(); got != "1" {
		t.Errorf("Mine count = %q, want 1", got)
	}
	click(t, ctx, `nav.views a[href*="view=mine"]`)
	if cur := text(t, ctx, `nav.views a[aria-current="page"]`); cur != "Mine 1" {
		t.Errorf("current view = %q", cur)
	}
	if rows := text(t, ctx, ".ticket-table tbody .col-subject"); rows != fmt.Sprintf("#%d Printer on fire", ids[0]) {
		t.Errorf("Mine lists %q", rows)
	}
	browsertest.Screenshot(t, ctx, "assign-mine")
	browsertest.Axe(t, ctx, "ticket list, Mine")

	// Check two unassigned tickets and assign them to Ann.
	click(t, ctx, `nav.views a[href*="view=unassigned"]`)
	do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#check-%d", ids[1]))), chromedp.Click(chromedp.CSS(fmt.Sprintf("#check-%d", ids[2]))),
		chromedp.SetValue(chromedp.CSS("#bulk-assignee"), fmt.Sprint(ann.ID)))
	browsertest.Screenshot(t, ctx, "assign-bulk-checked")
	browsertest.ScreenshotAt(t, ctx, "assign-bulk-checked-320", 320, 900)
	browsertest.Axe(t, ctx, "ticket list, Unassigned, two checked")
	browsertest.AxeAt(t, ctx, "ticket list at 320 px", 320, 900)
	if st := click(t, ctx, `button[name="action"][value="assign"]`); st != http.StatusOK {
		t.Fatalf("Assign: status %d", st)
	}
	if loc := location(t, ctx); !strings.HasSuffix(loc, "/tickets?view=unassigned") {
		t.Errorf("after the bulk assignment at %s", loc)
	}
	if got := text(t, ctx, ".flash"); got != "Assigned 2 tickets to Ann Agent." {
		t.Errorf("flash = %q", got)
	}
	if rows := text(t, ctx, ".ticket-table tbody .col-subject"); rows != fmt.Sprintf("#%d Newsletter unsubscribe", ids[3]) {
		t.Errorf("Unassigned after the assignment lists %q", rows)
	}
	browsertest.Screenshot(t, ctx, "assign-bulk-done")
	browsertest.Axe(t, ctx, "ticket list after a bulk assignment")
	visit(t, ctx, e.srv.URL+"/tickets")
	if got := text(t, ctx, ".ticket-table tbody .col-assignee"); got != "Ann Agent | Ann Agent | Agent | Unassigned" {
		t.Errorf("assignee column = %q", got)
	}
	browsertest.ScreenshotAt(t, ctx, "assign-all-320", 320, 900)

	// Ann finds them under her Mine.
	click(t, ctx, `form[action="/logout"] button`)
	signIn(ann.Email)
	visit(t, ctx, e.srv.URL+"/tickets?view=mine")
	if got := mineCount(); got != "2" {
		t.Errorf("Ann's Mine count = %q, want 2", got)
	}
	want := fmt.Sprintf("#%d Cannot sign in after the password reset | #%d Invoice shows the wrong VAT number for our Luxembourg office", ids[2], ids[1])
	if rows := text(t, ctx, ".ticket-table tbody .col-subject"); rows != want {
		t.Errorf("Ann's Mine lists %q, want %q", rows, want)
	}
	browsertest.Screenshot(t, ctx, "assign-ann-mine")
}
