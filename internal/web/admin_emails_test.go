package web

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

func TestEmailsAdminOnly(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	agent := o.signedInAs(agentEmail)
	token := o.csrf(agent)

	res, body := o.get(agent, "/admin/emails")
	wantStatus(t, res, http.StatusForbidden)
	wantContains(t, body, "Admins only")
	wantNotContains(t, body, supportAddr)
	_, body = o.get(agent, "/tickets")
	wantNotContains(t, body, `href="/admin/emails"`)

	for _, path := range []string{"/admin/emails", fmt.Sprintf("/admin/emails/%d/connect", mb.ID), fmt.Sprintf("/admin/emails/%d/max-age", mb.ID), "/admin/notices/1/dismiss"} {
		res := o.post(agent, path, url.Values{"csrf": {token}, "address": {"new@example.com"}, "provider": {"microsoft"}, "days": {"0"}})
		wantStatus(t, res, http.StatusForbidden)
	}
	res, _ = o.get(agent, "/oauth/callback?state=x&code=y")
	wantStatus(t, res, http.StatusForbidden)
	if _, err := o.db.MailboxByAddress(context.Background(), "new@example.com"); err == nil {
		t.Error("an agent added a mailbox")
	}
	if a := o.auth(mb.ID); a.ReauthMaxAge != nil {
		t.Error("an agent changed the maximum age")
	}

	admin := o.signedIn()
	res, body = o.get(admin, "/admin/emails")
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, supportAddr, "Not connected", ">Connect<", `aria-current="page">Emails`)
}

func TestEmailsFormsNeedCSRF(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	c := o.signedIn()
	ctx := context.Background()
	var notice store.Notice
	if err := o.db.Write(ctx, func(tx *store.Tx) error {
		notice = store.Notice{MailboxID: mb.ID, Kind: "expiring", Message: "support@example.com: runs out soon", CreatedAt: o.clock.Now()}
		return tx.AddNotice(ctx, &notice)
	}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/emails", fmt.Sprintf("/admin/emails/%d/connect", mb.ID), fmt.Sprintf("/admin/emails/%d/max-age", mb.ID), fmt.Sprintf("/admin/notices/%d/dismiss", notice.ID)} {
		for _, token := range []string{"", "forged"} {
			res := o.post(c, path, url.Values{"csrf": {token}, "address": {"new@example.com"}, "provider": {"microsoft"}, "days": {"0"}})
			wantStatus(t, res, http.StatusForbidden)
		}
	}
	if _, err := o.db.MailboxByAddress(ctx, "new@example.com"); err == nil {
		t.Error("a forged form added a mailbox")
	}
	if a := o.auth(mb.ID); a.ReauthMaxAge != nil {
		t.Error("a forged form changed the maximum age")
	}
	if list, _ := o.db.Notices(ctx, store.NoticeFilter{UnreadOnly: true}); len(list) != 1 {
		t.Error("a forged form dismissed the notice")
	}
	if strings.Contains(o.logs.String(), "oauth sign-in started") {
		t.Error("a forged form started a sign-in")
	}
}

func TestOAuthCallbackWithoutSession(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	res, _ := o.get(o.client(), "/oauth/callback?state=abc&code=x")
	wantStatus(t, res, http.StatusSeeOther)
	want := "/login?next=" + url.QueryEscape("/oauth/callback?state=abc&code=x")
	if loc := res.Header.Get("Location"); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
}

func TestEmailsWithoutOAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // no OAuth service; one mailbox without authorization
	c := e.signedIn()
	res, body := e.get(c, "/admin/emails")
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, "No sign-in provider is configured:</strong> set POSTDESK_MICROSOFT_CLIENT_ID and POSTDESK_MICROSOFT_CLIENT_SECRET", "support@example.com", "Not connected")
	wantNotContains(t, body, "/connect", `action="/admin/emails"`)
	res = e.post(c, fmt.Sprintf("/admin/emails/%d/connect", e.mailbox.ID), url.Values{"csrf": {e.csrf(c)}})
	wantStatus(t, res, http.StatusConflict)
}

func TestEmailsEmptyState(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	res, body := o.get(o.signedIn(), "/admin/emails")
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, "No support mailboxes yet — add one", `<option value="microsoft">Microsoft</option>`, `id="add-address"`)
	// The add form leads to the provider: the page lets it.
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+o.idpURL) {
		t.Errorf("CSP = %q", csp)
	}
}

func TestEmailAdd(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	token := o.csrf(c)
	for _, tc := range []struct{ address, provider, want string }{
		{"not an address", "microsoft", "Enter the mailbox&#39;s email address"},
		{"Support <support@example.com>", "microsoft", "Enter the mailbox&#39;s email address"},
		{"support@example.com", "nosuch", "Choose how the mailbox signs in."},
	} {
		res := o.post(c, "/admin/emails", url.Values{"csrf": {token}, "address": {tc.address}, "provider": {tc.provider}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		b := readBody(res)
		wantContains(t, b, tc.want, `value="`+html.EscapeString(tc.address))
	}

	res := o.post(c, "/admin/emails", url.Values{"csrf": {token}, "address": {" Support@Example.com "}, "name": {"Support"}, "provider": {"microsoft"}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, o.idpURL+"/organizations/oauth2/v2.0/authorize?") || !strings.Contains(loc, "login_hint=support%40example.com") {
		t.Errorf("Location = %q", loc)
	}
	mb, err := o.db.MailboxByAddress(context.Background(), supportAddr)
	if err != nil {
		t.Fatal(err)
	}
	if a := o.auth(mb.ID); a.Kind != store.AuthOAuth || a.Provider != "microsoft" || mb.Name != "Support" {
		t.Errorf("mailbox %+v auth %+v", mb, a)
	}
	// Added through desk like the API and the CLI: with the provider's
	// servers, so that it is fetched once connected.
	if srv, err := o.db.MailboxServer(context.Background(), mb.ID); err != nil || srv.IMAPHost != "outlook.office365.com" || !srv.Enabled {
		t.Errorf("server settings of a mailbox added on the page: %+v, %v", srv, err)
	}
	res = o.post(c, "/admin/emails", url.Values{"csrf": {token}, "address": {supportAddr}, "provider": {"microsoft"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, readBody(res), "support@example.com is already a support mailbox")

	// With a delegate allowed, no login hint names the shared address.
	res = o.post(c, "/admin/emails", url.Values{"csrf": {token}, "address": {"shared@example.com"}, "provider": {"microsoft"}, "allow_change": {"1"}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); strings.Contains(loc, "login_hint") {
		t.Errorf("Location = %q", loc)
	}
}

func TestEmailConnectAndShow(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	shared := o.addMailbox("shared@example.com")
	c := o.signedIn()

	res, _, _ := o.connectHTTP(c, mb.ID, supportAddr, false)
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != fmt.Sprintf("/admin/emails#mailbox-%d", mb.ID) {
		t.Errorf("Location = %q", loc)
	}
	due := timeText(oauthStart.Add(90 * oauth.Day))
	_, body := o.get(c, "/admin/emails")
	wantContains(t, body, "support@example.com is connected. Authorization due again on "+due+".", ">Connected<", ">Reauthenticate<", due, "in 90 days", "90 days (Microsoft&#39;s default)")
	// The flash shows once.
	_, body = o.get(c, "/admin/emails")
	wantNotContains(t, body, "is connected.")

	// A delegate signs in for the shared mailbox.
	res, _, _ = o.connectHTTP(c, shared.ID, salesAddr, true)
	wantStatus(t, res, http.StatusSeeOther)
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, "shared@example.com is connected (signed in as sales@example.com)", "signed in as <strong>sales@example.com</strong>")

	// No token reaches a page.
	a := o.auth(mb.ID)
	for _, secret := range []string{o.openSecret(mb.ID, "refresh_token", a.RefreshTokenSealed), o.openSecret(mb.ID, "access_token", a.AccessTokenSealed)} {
		if strings.Contains(body, secret) {
			t.Error("a token is on the page")
		}
		if strings.Contains(o.logs.String(), secret) {
			t.Error("a token is in the log")
		}
	}
}

func TestEmailMaxAge(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	c := o.signedIn()
	o.connectHTTP(c, mb.ID, supportAddr, false)
	path := fmt.Sprintf("/admin/emails/%d/max-age", mb.ID)
	token := o.csrf(c)
	for _, bad := range []string{"-1", "abc", "1.5", "99999"} {
		res := o.post(c, path, url.Values{"csrf": {token}, "days": {bad}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantContains(t, readBody(res), "Enter a whole number of days from 0 to 3650", `aria-invalid="true"`, `value="`+bad+`"`)
	}
	for _, tc := range []struct {
		days    string
		due     time.Time
		text    string
		wantAge *time.Duration
	}{
		{"30", oauthStart.Add(30 * oauth.Day), "30 days", durPtr(30 * oauth.Day)},
		{"0", time.Time{}, "Until revoked", durPtr(0)},
		{"", oauthStart.Add(90 * oauth.Day), "90 days (Microsoft&#39;s default)", nil},
	} {
		res := o.post(c, path, url.Values{"csrf": {token}, "days": {tc.days}})
		wantStatus(t, res, http.StatusSeeOther)
		a := o.auth(mb.ID)
		if !a.ReauthDueAt.Equal(tc.due) || (a.ReauthMaxAge == nil) != (tc.wantAge == nil) || (a.ReauthMaxAge != nil && *a.ReauthMaxAge != *tc.wantAge) {
			t.Errorf("days %q: due %v, max age %v", tc.days, a.ReauthDueAt, a.ReauthMaxAge)
		}
		_, body := o.get(c, "/admin/emails")
		wantContains(t, body, "Saved: support@example.com", "Now: "+tc.text+".")
	}
	res := o.post(c, "/admin/emails/999/max-age", url.Values{"csrf": {token}, "days": {"3"}})
	wantStatus(t, res, http.StatusNotFound)
}

func TestNoticeDismiss(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	c := o.signedIn()
	o.connectHTTP(c, mb.ID, supportAddr, false)
	o.day(81)
	if _, err := o.svc.EvaluateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, body := o.get(c, "/admin/emails")
	wantContains(t, body, "Notices", "support@example.com: the authorization runs out on", ">Dismiss<")
	list, err := o.db.Notices(context.Background(), store.NoticeFilter{UnreadOnly: true})
	if err != nil || len(list) != 1 {
		t.Fatalf("notices %v, %v", list, err)
	}
	res := o.post(c, fmt.Sprintf("/admin/notices/%d/dismiss", list[0].ID), url.Values{"csrf": {o.csrf(c)}})
	wantStatus(t, res, http.StatusSeeOther)
	_, body = o.get(c, "/admin/emails")
	wantNotContains(t, body, "the authorization runs out on")
	res = o.post(c, "/admin/notices/99999/dismiss", url.Values{"csrf": {o.csrf(c)}})
	wantStatus(t, res, http.StatusNotFound)
}

func TestOAuthCallbackRefusals(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	c := o.signedIn()
	res, _, callback := o.connectHTTP(c, mb.ID, supportAddr, false)
	wantStatus(t, res, http.StatusSeeOther)
	before := o.auth(mb.ID)

	// The same answer again.
	res, body := o.get(c, callback)
	wantStatus(t, res, http.StatusBadRequest)
	wantContains(t, body, "already used", "Try again", fmt.Sprintf(`action="/admin/emails/%d/connect"`, mb.ID), "Back to Emails")
	// A state Postdesk never made.
	res, body = o.get(c, "/oauth/callback?state=bogus&code=x")
	wantStatus(t, res, http.StatusBadRequest)
	wantContains(t, body, "does not belong to a sign-in Postdesk started", "Back to Emails")
	wantNotContains(t, body, "Try again")
	// The wrong account.
	res, body, _ = o.connectHTTP(c, mb.ID, salesAddr, false)
	wantStatus(t, res, http.StatusBadRequest)
	wantContains(t, body, "You signed in as sales@example.com, but this mailbox is support@example.com. Start again", "Nothing about <strong>support@example.com</strong> was changed.", `name="allow_change"`)
	// Another admin's browser session cannot finish this admin's sign-in.
	form := url.Values{"csrf": {o.csrf(c)}}
	res = o.post(c, fmt.Sprintf("/admin/emails/%d/connect", mb.ID), form)
	cb, err := o.idp.SignIn(res.Header.Get("Location"), supportAddr)
	if err != nil {
		t.Fatal(err)
	}
	res, body = o.get(o.signedIn(), cb.RequestURI())
	wantStatus(t, res, http.StatusBadRequest)
	wantContains(t, body, "another browser session")

	if after := o.auth(mb.ID); after.RefreshTokenSealed != before.RefreshTokenSealed || !after.AuthorizedAt.Equal(before.AuthorizedAt) || after.Account != before.Account {
		t.Error("a refused callback changed the mailbox")
	}
}

func durPtr(d time.Duration) *time.Duration { return &d }

func readBody(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// Admin -> Emails shows how each mailbox's fetching is doing.
func TestEmailsShowSyncStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.PutMailboxServer(ctx, store.MailboxServer{MailboxID: e.mailbox.ID, IMAPHost: "imap.example.com", IMAPPort: 993,
			IMAPSecurity: "tls", AuthMethod: "plain", Folders: []string{"INBOX", "Escalations"}, Enabled: true}); err != nil {
			return err
		}
		if err := tx.CountSyncedMessages(ctx, e.mailbox.ID, store.Fetched{Count: 7}, now); err != nil {
			return err
		}
		st, err := tx.SyncStatus(ctx, e.mailbox.ID)
		if err != nil {
			return err
		}
		st.State, st.LastError, st.LastErrorAt = "error", "dial tcp imap.example.com:993: connection refused", now
		return tx.PutSyncStatus(ctx, st)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, body := e.get(e.signedIn(), "/admin/emails")
	wantContains(t, body, "Failing: retrying with back-off", "Last error: dial tcp imap.example.com:993: connection refused",
		"7 messages", "imap.example.com:993 (TLS, PLAIN) · INBOX, Escalations")
}

// A desk of password mailboxes needs no sign-in provider: the page does
// not ask for one (a tryout saw the callout on every visit).
func TestEmailsOfPasswordMailboxesNeedNoProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // no OAuth service
	err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		return tx.SetMailboxAuthKind(context.Background(), e.mailbox.ID, store.AuthPassword, "", time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	res, body := e.get(e.signedIn(), "/admin/emails")
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, "support@example.com", `id="add-no-provider">To add a Microsoft 365 mailbox that signs in there, set POSTDESK_MICROSOFT_CLIENT_ID`)
	wantNotContains(t, body, "No sign-in provider is configured")
}
