package web

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// These tests are the Done-when of the mailbox authorization issue, in a
// real Chromium: the admin connects through the stand-in Microsoft sign-in
// page, and the shared clock moves the mailbox through its months.

// browserSignIn signs the admin in through the form.
func (o *oauthEnv) browserSignIn(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(o.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), adminEmail),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
	click(t, ctx, `button[type="submit"]`)
}

// click clicks and waits for the page it leads to; it returns the status.
func click(t *testing.T, ctx context.Context, css string) int64 {
	t.Helper()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("click %s: %v", css, err)
	}
	return res.Status
}

// visit navigates and returns the status.
func visit(t *testing.T, ctx context.Context, u string) int64 {
	t.Helper()
	res, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
	if err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
	return res.Status
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.innerText.replace(/\s+/g, ' ').trim()).join(' | ')`, css))
}

// facts reads a mailbox's facts as "Label: value; ...".
func facts(t *testing.T, ctx context.Context, mailboxID int64) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`Array.from(document.querySelectorAll('#mailbox-%d .facts dt')).map(dt => dt.textContent + ': ' + dt.nextElementSibling.textContent.replace(/\s+/g, ' ').trim()).join('; ')`, mailboxID))
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// pickAccount clicks an account on the stand-in's sign-in page and waits
// for the page Postdesk answers with.
func (o *oauthEnv) pickAccount(t *testing.T, ctx context.Context, account string) int64 {
	t.Helper()
	if loc := location(t, ctx); !strings.HasPrefix(loc, o.idpURL+"/organizations/oauth2/v2.0/authorize") {
		t.Fatalf("not on the stand-in's sign-in page but at %s", loc)
	}
	return click(t, ctx, fmt.Sprintf(`button[name="account"][value=%q]`, account))
}

// reauthenticate clicks the mailbox's Reauthenticate / Connect button and
// signs in as account.
func (o *oauthEnv) reauthenticate(t *testing.T, ctx context.Context, mailboxID int64, account string) int64 {
	t.Helper()
	visit(t, ctx, o.srv.URL+"/admin/emails")
	click(t, ctx, fmt.Sprintf(`#mailbox-%d .connect-form button`, mailboxID))
	return o.pickAccount(t, ctx, account)
}

func chip(t *testing.T, ctx context.Context, mailboxID int64) string {
	t.Helper()
	return text(t, ctx, fmt.Sprintf("#mailbox-%d .chip-auth", mailboxID))
}

// TestBrowserMailboxAuthorization: connect through the sign-in page, sealed
// tokens, refresh with rotation, the warning at day 81, the stop past day
// 90, and Reauthenticate.
func TestBrowserMailboxAuthorization(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			testBrowserMailboxAuthorization(t, dialect)
		})
	}
}

func testBrowserMailboxAuthorization(t *testing.T, dialect string) {
	o := newOAuthEnv(t, dialect)
	bg := context.Background()
	ctx := browsertest.New(t)
	shots := dialect == "sqlite"
	shot := func(name string) {
		if shots {
			browsertest.Screenshot(t, ctx, name)
		}
	}
	shotPhone := func(name string) {
		if shots {
			browsertest.ScreenshotAt(t, ctx, name, 390, 844)
		}
	}
	o.browserSignIn(t, ctx)

	// Empty state, then add and connect support@ through the stand-in.
	visit(t, ctx, o.srv.URL+"/admin/emails")
	if got := text(t, ctx, ".empty-state h2"); got != "No support mailboxes yet — add one" {
		t.Fatalf("empty state = %q", got)
	}
	shot("emails-empty")
	shotPhone("emails-empty-phone")
	browsertest.Axe(t, ctx, "Emails without mailboxes")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#add-address"), supportAddr), chromedp.SendKeys(chromedp.CSS("#add-name"), "Support"))
	click(t, ctx, `.add-form button[type="submit"]`)
	shot("fakeidp-signin")
	if status := o.pickAccount(t, ctx, supportAddr); status != 200 {
		t.Fatalf("after sign-in: status %d", status)
	}
	mb, err := o.db.MailboxByAddress(bg, supportAddr)
	if err != nil {
		t.Fatal(err)
	}
	if loc := location(t, ctx); loc != fmt.Sprintf("%s/admin/emails#mailbox-%d", o.srv.URL, mb.ID) {
		t.Fatalf("back at %s", loc)
	}
	due := timeText(oauthStart.Add(90 * oauth.Day))
	if got := text(t, ctx, ".flash"); got != "support@example.com is connected. Authorization due again on "+due+"." {
		t.Errorf("flash = %q", got)
	}
	if got := chip(t, ctx, mb.ID); got != "Connected" {
		t.Errorf("chip = %q", got)
	}
	// Added on the page through desk, the mailbox has the provider's servers
	// and is fetched once connected (the sync does not run in this test).
	if got := facts(t, ctx, mb.ID); !strings.HasPrefix(got, "Due: "+due+" in 90 days; Authorized: 2 Mar 2026, 09:00 UTC today; Last refresh: 2 Mar 2026, 09:00 UTC just now; Maximum age: 90 days (Microsoft's default); ") ||
		!strings.Contains(got, "Server: outlook.office365.com:993 (TLS, XOAUTH2)") {
		t.Errorf("facts = %q", got)
	}
	shot("emails-connected")
	shotPhone("emails-connected-phone")
	browsertest.Axe(t, ctx, "Emails, connected")
	browsertest.AxeAt(t, ctx, "Emails, connected, at phone width", 375, 740)

	// The tokens are sealed: neither is in the row, the database files or
	// the log.
	a := o.auth(mb.ID)
	rt := o.openSecret(mb.ID, "refresh_token", a.RefreshTokenSealed)
	at := o.openSecret(mb.ID, "access_token", a.AccessTokenSealed)
	if rt == "" || at == "" || strings.Contains(a.RefreshTokenSealed, rt) || strings.Contains(a.AccessTokenSealed, at) {
		t.Fatal("tokens are not sealed in the row")
	}
	for _, secret := range []string{rt, at} {
		if dialect == "sqlite" {
			if hits := o.dataFilesContain(secret); len(hits) > 0 {
				t.Errorf("a token is in plain text in %v", hits)
			}
		}
		if strings.Contains(o.logs.String(), secret) {
			t.Error("a token is in the log")
		}
	}

	// TokenFor refreshes once the access token is about to expire, and the
	// rotated refresh token replaces the old one.
	o.clock.Advance(2 * time.Hour)
	refreshes := o.idp.RefreshCount(supportAddr)
	tok, err := o.svc.TokenFor(bg, mb.ID)
	if err != nil || tok == "" || tok == at {
		t.Fatalf("TokenFor = %q, %v", tok, err)
	}
	if n := o.idp.RefreshCount(supportAddr); n != refreshes+1 {
		t.Errorf("refreshes at the stand-in: %d, want %d", n, refreshes+1)
	}
	b := o.auth(mb.ID)
	if b.RefreshTokenSealed == a.RefreshTokenSealed || o.openSecret(mb.ID, "refresh_token", b.RefreshTokenSealed) == rt {
		t.Error("the refresh token did not rotate")
	}

	// Day 81 of a 90-day maximum age: expiring, with a notice and a banner.
	o.day(81)
	if _, err := o.svc.EvaluateAll(bg); err != nil {
		t.Fatal(err)
	}
	visit(t, ctx, o.srv.URL+"/admin/emails")
	if got := chip(t, ctx, mb.ID); got != "Reauthentication due in 9 days" {
		t.Errorf("day 81 chip = %q", got)
	}
	if got := text(t, ctx, "#notices .notice p"); !strings.Contains(got, "support@example.com: the authorization runs out on "+due) {
		t.Errorf("notices = %q", got)
	}
	shot("emails-expiring")
	browsertest.Axe(t, ctx, "Emails, expiring")
	visit(t, ctx, o.srv.URL+"/tickets")
	if got := text(t, ctx, ".banner-warning"); !strings.Contains(got, "support@example.com needs reauthentication in 9 days (due "+due+")") || !strings.Contains(got, "Reauthenticate") {
		t.Errorf("day 81 banner = %q", got)
	}
	shot("tickets-banner-expiring")
	shotPhone("tickets-banner-expiring-phone")
	browsertest.Axe(t, ctx, "ticket list with a warning banner")

	// Day 92 without a refresh: the stand-in refuses, the mailbox stops.
	o.day(92)
	err = o.svc.RefreshNow(bg, mb.ID)
	if !errors.Is(err, oauth.ErrNeedsReauth) {
		t.Fatalf("refresh at day 92: %v", err)
	}
	visit(t, ctx, o.srv.URL+"/admin/emails")
	if got := chip(t, ctx, mb.ID); got != "Needs reauthentication" {
		t.Errorf("day 92 chip = %q", got)
	}
	if got := text(t, ctx, fmt.Sprintf("#mailbox-%d .mailbox-detail", mb.ID)); !strings.Contains(got, "not used for 90 days") {
		t.Errorf("day 92 reason = %q", got)
	}
	shot("emails-needs-reauth")
	browsertest.Axe(t, ctx, "Emails, needs reauthentication")
	visit(t, ctx, o.srv.URL+"/tickets")
	if got := text(t, ctx, ".banner-danger"); !strings.Contains(got, "support@example.com stopped receiving mail on "+timeText(oauthStart.Add(92*oauth.Day))) ||
		!strings.Contains(got, "not used for 90 days") || !strings.Contains(got, "Reauthenticate") {
		t.Errorf("day 92 banner = %q", got)
	}
	shot("tickets-banner-needs-reauth")
	browsertest.Axe(t, ctx, "ticket list with a danger banner")

	// Reauthenticate through the sign-in page: connected, due 90 days on.
	if status := o.reauthenticate(t, ctx, mb.ID, supportAddr); status != 200 {
		t.Fatalf("reauthenticate: status %d", status)
	}
	due = timeText(oauthStart.Add(182 * oauth.Day))
	if got := text(t, ctx, ".flash"); got != "support@example.com is connected. Authorization due again on "+due+"." {
		t.Errorf("flash = %q", got)
	}
	if got := chip(t, ctx, mb.ID); got != "Connected" {
		t.Errorf("after reauthentication chip = %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('.banner').length`); n != 0 {
		t.Errorf("%d banners after reauthentication", n)
	}
	if a := o.auth(mb.ID); a.State != store.AuthOK || !a.ReauthDueAt.Equal(oauthStart.Add(182*oauth.Day)) {
		t.Errorf("after reauthentication: state %s, due %v", a.State, a.ReauthDueAt)
	}
	// The expiring and needs-reauthentication notices show as resolved by
	// the reauthentication, with no click; the "authorized again" one stands.
	resolved := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#notices .notice')).map(n =>
		n.className + ' | ' + (n.querySelector('.notice-resolution') ? n.querySelector('.notice-resolution').innerText.replace(/\s+/g, ' ').trim() : 'open'))`)
	var open, done int
	for _, n := range resolved {
		switch {
		case strings.Contains(n, "notice-expiring") || strings.Contains(n, "notice-needs_reauth"):
			if !strings.Contains(n, "notice-resolved") || !strings.Contains(n, "Resolved Reauthenticated") {
				t.Errorf("notice not resolved by the reauthentication: %s", n)
			}
			done++
		case strings.Contains(n, "notice-restored"):
			open++
		}
	}
	if done < 2 || open != 1 {
		t.Errorf("notices after reauthentication = %q", resolved)
	}
	shot("emails-notices-resolved")
}

// TestBrowserUntilRevoked: with maximum age 0, set on the page, daily
// refreshes keep the mailbox connected past day 200; revoking the account at
// the stand-in stops it with the reason.
func TestBrowserUntilRevoked(t *testing.T) {
	o := newOAuthEnv(t, "sqlite")
	bg := context.Background()
	mb := o.addMailbox(supportAddr)
	ctx := browsertest.New(t)
	o.browserSignIn(t, ctx)
	o.reauthenticate(t, ctx, mb.ID, supportAddr)

	// Maximum age 0 through the form.
	do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#mailbox-%d .max-age summary", mb.ID))),
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#max-age-%d", mb.ID)), "0"))
	browsertest.Screenshot(t, ctx, "emails-max-age-form")
	click(t, ctx, fmt.Sprintf("#mailbox-%d .max-age button", mb.ID))
	if got := text(t, ctx, ".flash"); !strings.Contains(got, "until revoked") {
		t.Errorf("flash = %q", got)
	}
	if a := o.auth(mb.ID); a.ReauthMaxAge == nil || *a.ReauthMaxAge != 0 || !a.ReauthDueAt.IsZero() {
		t.Fatalf("max age %v, due %v", a.ReauthMaxAge, a.ReauthDueAt)
	}

	for day := 1; day <= 201; day++ {
		o.clock.Advance(oauth.Day)
		if err := o.svc.RefreshNow(bg, mb.ID); err != nil {
			t.Fatalf("day %d: refresh: %v", day, err)
		}
		sts, err := o.svc.EvaluateAll(bg)
		if err != nil {
			t.Fatalf("day %d: evaluate: %v", day, err)
		}
		if sts[0].State != store.AuthOK {
			t.Fatalf("day %d: state %s", day, sts[0].State)
		}
	}
	visit(t, ctx, o.srv.URL+"/admin/emails")
	if got := chip(t, ctx, mb.ID); got != "Connected" {
		t.Errorf("day 201 chip = %q", got)
	}
	if got := facts(t, ctx, mb.ID); !strings.Contains(got, "Maximum age: Until revoked") || !strings.Contains(got, "Expires if not refreshed: "+timeText(o.clock.Now().Add(90*oauth.Day))+" in 90 days") ||
		!strings.Contains(got, "Last refresh: "+timeText(o.clock.Now())+" just now") || !strings.Contains(got, "Authorized: 2 Mar 2026, 09:00 UTC 201 days ago") {
		t.Errorf("day 201 facts = %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('.banner').length`); n != 0 {
		t.Errorf("%d banners at day 201", n)
	}
	browsertest.Screenshot(t, ctx, "emails-until-revoked-day-201")
	browsertest.Axe(t, ctx, "Emails, until revoked")

	// Revoked at the stand-in (a password reset): the next refresh fails.
	if err := o.idp.Revoke(supportAddr); err != nil {
		t.Fatal(err)
	}
	o.clock.Advance(time.Hour)
	if err := o.svc.RefreshNow(bg, mb.ID); !errors.Is(err, oauth.ErrNeedsReauth) {
		t.Fatalf("refresh after revoke: %v", err)
	}
	visit(t, ctx, o.srv.URL+"/admin/emails")
	if got := chip(t, ctx, mb.ID); got != "Needs reauthentication" {
		t.Errorf("after revoke chip = %q", got)
	}
	if got := text(t, ctx, fmt.Sprintf("#mailbox-%d .mailbox-detail", mb.ID)); !strings.Contains(got, "The password was changed or reset") {
		t.Errorf("after revoke reason = %q", got)
	}
	// The refused refresh is not the "last refresh": the card says it was refused.
	if got := facts(t, ctx, mb.ID); !strings.Contains(got, "Last refresh: Refused ") || strings.Contains(got, "Last refresh: just now") {
		t.Errorf("after revoke facts = %q", got)
	}
	if got := text(t, ctx, ".banner-danger"); !strings.Contains(got, "support@example.com stopped receiving mail") || !strings.Contains(got, "The password was changed or reset") {
		t.Errorf("after revoke banner = %q", got)
	}
	browsertest.Screenshot(t, ctx, "emails-revoked")
	browsertest.ScreenshotAt(t, ctx, "emails-revoked-phone", 390, 844)
	browsertest.Axe(t, ctx, "Emails, revoked")
	browsertest.AxeAt(t, ctx, "Emails, revoked, at phone width", 375, 740)
}

// TestBrowserSignInRefused: the wrong account, a forged state and a
// replayed callback are refused with a clear page and change nothing.
func TestBrowserSignInRefused(t *testing.T) {
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	ctx := browsertest.New(t)
	o.browserSignIn(t, ctx)
	o.reauthenticate(t, ctx, mb.ID, supportAddr)
	before := o.auth(mb.ID)
	var callback string
	for _, r := range o.reqs.all() {
		if strings.HasPrefix(r, "GET /oauth/callback?") && strings.HasSuffix(r, " 303") {
			callback = strings.TrimSuffix(strings.TrimPrefix(r, "GET "), " 303")
		}
	}
	if callback == "" {
		t.Fatalf("no successful callback among %v", o.reqs.all())
	}

	// The wrong account.
	if status := o.reauthenticate(t, ctx, mb.ID, salesAddr); status != 400 {
		t.Errorf("wrong account: status %d", status)
	}
	if got := text(t, ctx, ".error-page"); !strings.Contains(got, "You signed in as sales@example.com, but this mailbox is support@example.com. Start again") ||
		!strings.Contains(got, "Nothing about support@example.com was changed.") ||
		!strings.Contains(got, "Try again") || !strings.Contains(got, "Back to Emails") {
		t.Errorf("wrong account page = %q", got)
	}
	browsertest.Screenshot(t, ctx, "oauth-wrong-account")
	browsertest.ScreenshotAt(t, ctx, "oauth-wrong-account-phone", 390, 844)
	browsertest.Axe(t, ctx, "refused sign-in: the wrong account")
	browsertest.AxeAt(t, ctx, "refused sign-in: the wrong account, at phone width", 375, 740)
	// "Try again" starts a new sign-in at the stand-in.
	click(t, ctx, `.error-actions button[type="submit"]`)
	if loc := location(t, ctx); !strings.HasPrefix(loc, o.idpURL) {
		t.Errorf("Try again led to %s", loc)
	}

	// A forged state.
	if status := visit(t, ctx, o.srv.URL+"/oauth/callback?state=bogus&code=x"); status != 400 {
		t.Errorf("forged state: status %d", status)
	}
	if got := text(t, ctx, ".error-page"); !strings.Contains(got, "does not belong to a sign-in Postdesk started") || strings.Contains(got, "Try again") {
		t.Errorf("forged state page = %q", got)
	}
	browsertest.Screenshot(t, ctx, "oauth-forged-state")
	browsertest.Axe(t, ctx, "refused sign-in: a forged state")

	// The successful callback, replayed.
	if status := visit(t, ctx, o.srv.URL+callback); status != 400 {
		t.Errorf("replayed callback: status %d", status)
	}
	if got := text(t, ctx, ".error-page"); !strings.Contains(got, "already used") {
		t.Errorf("replay page = %q", got)
	}

	after := o.auth(mb.ID)
	if after.RefreshTokenSealed != before.RefreshTokenSealed || !after.AuthorizedAt.Equal(before.AuthorizedAt) || after.Account != before.Account || after.State != before.State {
		t.Error("a refused sign-in changed the mailbox")
	}
}

// TestBrowserClientSecretExpired: the provider refuses the application; one
// banner says to update the client secret, not to reauthenticate.
func TestBrowserClientSecretExpired(t *testing.T) {
	o := newOAuthEnv(t, "sqlite")
	bg := context.Background()
	support := o.addMailbox(supportAddr)
	sales := o.addMailbox(salesAddr)
	ctx := browsertest.New(t)
	o.browserSignIn(t, ctx)
	o.reauthenticate(t, ctx, support.ID, supportAddr)
	o.reauthenticate(t, ctx, sales.ID, salesAddr)

	if err := o.idp.ExpireClientSecret(idpClientID); err != nil {
		t.Fatal(err)
	}
	o.clock.Advance(time.Hour)
	if err := o.svc.RefreshAll(bg); !errors.Is(err, oauth.ErrProviderFault) {
		t.Fatalf("refresh with an expired secret: %v", err)
	}
	visit(t, ctx, o.srv.URL+"/tickets")
	if n := eval[int](t, ctx, `document.querySelectorAll('.banner').length`); n != 1 {
		t.Errorf("%d banners, want 1", n)
	}
	got := text(t, ctx, ".banner-danger")
	if !strings.Contains(got, "Microsoft refuses Postdesk's client secret: update the client secret (POSTDESK_MICROSOFT_CLIENT_SECRET)") ||
		!strings.Contains(got, "2 mailboxes affected") || strings.Contains(got, "eauthenticate") {
		t.Errorf("banner = %q", got)
	}
	browsertest.Screenshot(t, ctx, "tickets-banner-client-secret")
	browsertest.Axe(t, ctx, "ticket list with the client secret banner")
	visit(t, ctx, o.srv.URL+"/admin/emails")
	for _, id := range []int64{support.ID, sales.ID} {
		if got := chip(t, ctx, id); got != "Client secret problem" {
			t.Errorf("chip = %q", got)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('.connect-form').length`); n != 0 {
		t.Errorf("%d Reauthenticate buttons offered for a client secret problem", n)
	}
	browsertest.Screenshot(t, ctx, "emails-client-secret")
	browsertest.Axe(t, ctx, "Emails, client secret problem")
}

// TestBrowserOverdue: past a 30-day maximum age while the provider still
// accepts the refresh, the mailbox keeps fetching and says so, louder.
func TestBrowserOverdue(t *testing.T) {
	o := newOAuthEnv(t, "sqlite")
	bg := context.Background()
	mb := o.addMailbox(supportAddr)
	o.connectHTTP(o.signedIn(), mb.ID, supportAddr, false)
	age := 30 * oauth.Day
	if _, err := o.svc.SetMaxAge(bg, mb.ID, &age); err != nil {
		t.Fatal(err)
	}
	for range 33 {
		o.clock.Advance(oauth.Day)
		if err := o.svc.RefreshNow(bg, mb.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := o.svc.EvaluateAll(bg); err != nil {
			t.Fatal(err)
		}
	}
	ctx := browsertest.New(t)
	o.browserSignIn(t, ctx)
	due := timeText(oauthStart.Add(30 * oauth.Day))
	visit(t, ctx, o.srv.URL+"/admin/emails")
	if got := chip(t, ctx, mb.ID); got != "Overdue since "+due+" (still fetching)" {
		t.Errorf("chip = %q", got)
	}
	if got := text(t, ctx, ".banner-urgent"); !strings.Contains(got, "support@example.com reauthentication was due on "+due+"; mail still arrives while Microsoft accepts the old sign-in") {
		t.Errorf("banner = %q", got)
	}
	if got := text(t, ctx, "#notices .notice p"); !strings.Contains(got, "reauthentication was due on "+due) {
		t.Errorf("notices = %q", got)
	}
	browsertest.Screenshot(t, ctx, "emails-overdue")
	browsertest.ScreenshotAt(t, ctx, "emails-overdue-phone", 390, 844)
	browsertest.Axe(t, ctx, "Emails, overdue")
}
