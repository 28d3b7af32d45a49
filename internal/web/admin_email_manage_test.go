package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/store"
)

// A sign-in cancelled at the provider right after "Add a mailbox" leaves a
// mailbox that is not connected; the refusal page offers to remove it, and
// Remove works for it.
func TestEmailAddCancelledCanBeRemoved(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	token := o.csrf(c)
	res := o.post(c, "/admin/emails", url.Values{"csrf": {token}, "address": {supportAddr}, "provider": {"microsoft"}})
	wantStatus(t, res, http.StatusSeeOther)
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	res, body := o.get(c, "/oauth/callback?error=access_denied&error_description=cancelled&state="+url.QueryEscape(loc.Query().Get("state")))
	wantStatus(t, res, http.StatusBadRequest)
	mb, err := o.db.MailboxByAddress(context.Background(), supportAddr)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, body, "The sign-in was cancelled", "support@example.com was added but is not connected yet",
		fmt.Sprintf(`href="/admin/emails/%d/remove"`, mb.ID))

	res, body = o.get(c, fmt.Sprintf("/admin/emails/%d/remove", mb.ID))
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, "Remove support@example.com?", "It has no tickets.")
	res = o.post(c, fmt.Sprintf("/admin/emails/%d/remove", mb.ID), url.Values{"csrf": {token}})
	wantStatus(t, res, http.StatusSeeOther)
	if _, err := o.db.Mailbox(context.Background(), mb.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after remove: %v, want not found", err)
	}
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, "Removed the mailbox: it had no tickets")
	wantNotContains(t, body, `id="mailbox-`)
}

// The management pages are for admins, and their forms need the CSRF token.
func TestEmailManageAdminOnly(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	agent := o.signedInAs(agentEmail)
	token := o.csrf(agent)
	for _, path := range []string{"/admin/emails/new", fmt.Sprintf("/admin/emails/%d/edit", mb.ID), fmt.Sprintf("/admin/emails/%d/remove", mb.ID)} {
		res, _ := o.get(agent, path)
		wantStatus(t, res, http.StatusForbidden)
	}
	for _, action := range []string{"edit", "pause", "resume", "remove"} {
		res := o.post(agent, fmt.Sprintf("/admin/emails/%d/%s", mb.ID, action), url.Values{"csrf": {token}, "name": {"Hijacked"}})
		wantStatus(t, res, http.StatusForbidden)
	}
	admin := o.signedIn()
	for _, action := range []string{"edit", "pause", "remove"} {
		res := o.post(admin, fmt.Sprintf("/admin/emails/%d/%s", mb.ID, action), url.Values{"csrf": {"wrong"}, "name": {"Hijacked"}})
		if res.StatusCode == http.StatusSeeOther {
			t.Errorf("%s without the CSRF token: %d", action, res.StatusCode)
		}
	}
	if got, err := o.db.Mailbox(context.Background(), mb.ID); err != nil || got.Name != "" || got.Removed() {
		t.Errorf("mailbox changed: %+v, %v", got, err)
	}
}

// Admin -> Emails lists problems first: needs reauthentication, then
// expiring, then not connected, then healthy.
func TestEmailsProblemsFirst(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	ctx := context.Background()
	a, b, cc, d := o.addMailbox("a@example.com"), o.addMailbox("b@example.com"), o.addMailbox("c@example.com"), o.addMailbox("d@example.com")
	for _, account := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		o.idp.AddAccount(fakeidp.Account{Address: account})
	}
	connect := func(mb store.Mailbox) {
		res, _, _ := o.connectHTTP(c, mb.ID, mb.Address, false)
		wantStatus(t, res, http.StatusSeeOther)
	}
	connect(a)
	connect(cc)
	o.day(82)
	connect(b) // fresh: healthy; a is now expiring
	if err := o.db.Write(ctx, func(tx *store.Tx) error {
		return tx.SetAuthState(ctx, cc.ID, store.AuthNeedsReauth, "AADSTS50173", "The password was changed.", o.clock.Now())
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.svc.EvaluateAll(ctx); err != nil {
		t.Fatal(err)
	}
	_, body := o.get(c, "/admin/emails")
	var order []string
	for _, m := range regexp.MustCompile(`<li class="mailbox [^"]*" id="mailbox-(\d+)"`).FindAllStringSubmatch(body, -1) {
		order = append(order, m[1])
	}
	want := []string{fmt.Sprint(cc.ID), fmt.Sprint(a.ID), fmt.Sprint(d.ID), fmt.Sprint(b.ID)}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("order of mailbox ids = %v, want %v (needs reauth, expiring, not connected, healthy)", order, want)
	}
}

// A password the mail server refused is a problem on the card, listed
// first, and its notice stands until a new password works.
func TestEmailsPasswordRefused(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	ctx := context.Background()
	ok := o.addMailbox("a@example.com")
	var mb store.Mailbox
	err := o.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		if mb, err = tx.CreateMailbox(ctx, "z@corp.example", ""); err != nil {
			return err
		}
		if err := tx.SetMailboxPassword(ctx, mb.ID, "z@corp.example", "v1:sealed", o.clock.Now()); err != nil {
			return err
		}
		if err := tx.SetAuthState(ctx, mb.ID, store.AuthNeedsReauth, "password_refused", "refused", o.clock.Now()); err != nil {
			return err
		}
		return tx.AddNotice(ctx, &store.Notice{MailboxID: mb.ID, Kind: string(store.AuthNeedsReauth), Message: "z@corp.example: refused", CreatedAt: o.clock.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, body := o.get(c, "/admin/emails")
	wantContains(t, body, "Password refused", "enter the new password in Edit settings")
	first := regexp.MustCompile(`id="mailbox-(\d+)"`).FindStringSubmatch(body)
	if first == nil || first[1] != fmt.Sprint(mb.ID) {
		t.Errorf("first mailbox = %v, want the refused one (%d), not %d", first, mb.ID, ok.ID)
	}
	wantNotContains(t, body, "notice-resolved")
}

// A form posted with a field the page could not parse (a port that is
// not a number: a browser's number input stops it, a script does not)
// shows that mistake with every other field's, and saves nothing.
func TestEmailNewAllMistakesAtOnce(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	res := o.post(c, "/admin/emails/new", url.Values{"csrf": {o.csrf(c)}, "action": {"add"}, "address": {"help"}, "imap_host": {"imap.example.com:993"},
		"imap_port": {"imap"}, "imap_security": {"tls"}, "folders": {"INBOX"}, "initial_days": {"14"}, "max_age_days": {"0"}, "password": {"pw"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	body, _ := io.ReadAll(res.Body)
	wantContains(t, string(body), "Enter a port number, like 993.", "&#34;help&#34; is not an email address.",
		"The IMAP server &#34;imap.example.com:993&#34; has a port or scheme in its name", "The catch-up limit must be between 1 and 3650 days.")
	if _, err := o.db.MailboxByAddress(context.Background(), "help"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("saved: %v", err)
	}
}

// The remove page says that a mailbox's replies still waiting to be sent
// (held for a sign-in) will not be: they were failed silently.
func TestEmailRemoveSaysWhatWaits(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	ctx := context.Background()
	err := o.db.Write(ctx, func(tx *store.Tx) error {
		id, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Refund", RequesterAddress: "jane@customer.test", Status: store.StatusOpen})
		if err != nil {
			return err
		}
		sum, size, err := tx.PutBlob(ctx, strings.NewReader("Subject: Re: Refund\r\n\r\nOn its way.\r\n"))
		if err != nil {
			return err
		}
		m := store.Message{MailboxID: mb.ID, TicketID: id, Direction: "out", Kind: store.KindReply, MessageID: "r1@example.com",
			DedupeKey: store.DedupeKey("r1@example.com", ""), RawSHA256: sum, RawSize: size}
		return tx.QueueMessage(ctx, &m, store.Outgoing{EnvelopeFrom: supportAddr, Recipients: []string{"jane@customer.test"}, Held: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	c := o.signedIn()
	res, body := o.get(c, fmt.Sprintf("/admin/emails/%d/remove", mb.ID))
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, "Its 1 ticket stay", "1 email from this address is still waiting to be sent", "marked <strong>Not sent</strong>")
}
