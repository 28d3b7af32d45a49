package web

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/store"
)

// look saves screenshots of the page at desktop and phone widths and checks
// it with axe at both.
func look(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browsertest.Screenshot(t, ctx, name)
	browsertest.ScreenshotAt(t, ctx, name+"-320", 320, 720)
	browsertest.Axe(t, ctx, name)
	browsertest.AxeAt(t, ctx, name+" at 320 px", 320, 720)
}

// TestBrowserAdminAddsAgent: an admin adds an agent in Admin -> Users with
// an invitation link; the agent opens it, chooses a password and is signed
// in, sets a time zone and sees a message's time in it, creates an API key
// (shown once) and revokes it. In a real Chromium, checked by axe.
func TestBrowserAdminAddsAgent(t *testing.T) {
	e := newEnv(t)
	ticketID, _ := e.ticket(store.Ticket{Subject: "Dashboard is blank"}, store.Message{TextBody: "The dashboard shows nothing since this morning."})
	msgs, err := e.db.TicketMessages(context.Background(), ticketID)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t)

	// The admin signs in and opens Admin -> Users from the navigation.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), e.user.Email), chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
	click(t, ctx, `button[type="submit"]`)
	click(t, ctx, `.nav a[href="/admin/users"]`)
	if got := eval[string](t, ctx, `document.querySelector('h1').textContent`); got != "Users" {
		t.Fatalf("Admin -> Users heading = %q", got)
	}
	look(t, ctx, "admin-users")

	// A refused add keeps the values and says why, beside the field.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#u-email"), "not an email"))
	click(t, ctx, `#add-user button[type="submit"]`)
	if got := eval[string](t, ctx, `document.querySelector('#u-email-error').textContent`); got != "Enter an email address like ann@example.com." {
		t.Fatalf("email error = %q", got)
	}
	browsertest.Axe(t, ctx, "admin-users-error")

	// Add the agent with an invitation link.
	eval[string](t, ctx, `document.querySelector('#u-email').value = ''`)
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#u-email"), "nadia@example.com"), chromedp.SendKeys(chromedp.CSS("#u-name"), "Nadia"),
		chromedp.Click(chromedp.CSS(`input[name="role"][value="agent"]`)), chromedp.Click(chromedp.CSS(`input[name="setup"][value="invite"]`)))
	click(t, ctx, `#add-user button[type="submit"]`)
	link := eval[string](t, ctx, `document.querySelector('#credential').value`)
	if !strings.HasPrefix(link, e.srv.URL+"/invite/") {
		t.Fatalf("invitation link = %q", link)
	}
	look(t, ctx, "admin-user-invited")
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/users"), chromedp.WaitVisible(chromedp.CSS(".user-table")))
	if row := eval[string](t, ctx, `[...document.querySelectorAll('.user-table tr')].find(r => r.textContent.includes('nadia@example.com')).textContent`); !strings.Contains(row, "Invited") || !strings.Contains(row, "never") {
		t.Errorf("the new agent's row = %q", row)
	}
	browsertest.ScreenshotAt(t, ctx, "admin-users-with-invited-320", 320, 720)
	click(t, ctx, `.account button[type="submit"]`) // sign out

	// The agent opens the link, chooses a password, and is signed in.
	do(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#password")))
	look(t, ctx, "invite")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#password"), "nadia's long password"), chromedp.SendKeys(chromedp.CSS("#confirm"), "nadia's long password"))
	click(t, ctx, `button[type="submit"]`)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/tickets") {
		t.Fatalf("after the invitation at %s", loc)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('.nav a[href="/admin/users"]').length`); n != 0 {
		t.Error("an agent sees Admin -> Users")
	}

	// Her profile, from the header: a time zone shows every time in it.
	click(t, ctx, `a.account-profile`)
	look(t, ctx, "profile")
	eval[string](t, ctx, `document.querySelector('#p-zone').value = 'Asia/Tokyo'`)
	click(t, ctx, `#settings button[type="submit"]`)
	if got := eval[string](t, ctx, `document.querySelector('.flash').textContent`); got != "Saved your profile." {
		t.Fatalf("flash = %q", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('#p-zone-now time').textContent`); !strings.HasSuffix(got, "JST") {
		t.Errorf("the profile's clock = %q, want Tokyo time", got)
	}
	tokyo, err := auth.LoadZone("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/tickets/%d", e.srv.URL, ticketID)), chromedp.WaitVisible(chromedp.CSS(".msg-date")))
	want := pageTime(msgs[0].ReceivedAt, tokyo)
	if got := eval[string](t, ctx, `document.querySelector('.msg-date').textContent`); got != want {
		t.Errorf("message time = %q, want %q (Tokyo, with the time of day)", got, want)
	}
	browsertest.Screenshot(t, ctx, "ticket-in-tokyo")

	// An API key: shown once, listed, revoked.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/profile#apikeys"), chromedp.WaitVisible(chromedp.CSS("#k-name")),
		chromedp.SendKeys(chromedp.CSS("#k-name"), "Reporting script"))
	click(t, ctx, `.key-form button[type="submit"]`)
	key := eval[string](t, ctx, `document.querySelector('#new-key-value').value`)
	if _, u, err := e.h.auth.APIKey(context.Background(), key); err != nil || u.Email != "nadia@example.com" {
		t.Fatalf("the key shown (%q) does not work: %v", key, err)
	}
	look(t, ctx, "profile-new-key")
	do(t, ctx, chromedp.Reload())
	if html := eval[string](t, ctx, `document.body.innerHTML`); strings.Contains(html, key) {
		t.Error("the key is shown again after a reload")
	}
	if got := eval[string](t, ctx, `document.querySelector('.key').textContent`); !strings.Contains(got, "Reporting script") || !strings.Contains(got, "last used") {
		t.Errorf("key row = %q", got)
	}
	click(t, ctx, `.key button[type="submit"]`)
	if got := eval[string](t, ctx, `document.querySelector('.flash').textContent`); !strings.HasPrefix(got, "Revoked the API key") {
		t.Errorf("flash after revoking = %q", got)
	}
	if _, _, err := e.h.auth.APIKey(context.Background(), key); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("the revoked key: %v", err)
	}
	browsertest.Axe(t, ctx, "profile after revoking")
}
