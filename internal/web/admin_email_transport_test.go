package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// A Microsoft mailbox's card says in plain words how it fetches and sends
// and offers Microsoft Graph; a reply SMTP refused with 535 5.7.139 offers
// "Send through Microsoft Graph" on the problem itself. Pressing it
// switches sending to Graph, queues the refused reply again (held until
// the sign-in) and goes straight to a sign-in asking for Mail.Send;
// choosing the same transports again needs no sign-in.
func TestEmailsTransportSwitch(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	ctx := context.Background()
	mb, err := o.h.mailboxes.AddMailbox(ctx, desk.MailboxSpec{Address: supportAddr, Auth: "microsoft"})
	if err != nil {
		t.Fatal(err)
	}
	res, _, _ := o.connectHTTP(c, mb.ID, supportAddr, false)
	wantStatus(t, res, http.StatusSeeOther)
	_, body := o.get(c, "/admin/emails")
	wantContains(t, body, "<summary>Transport: Fetches mail over IMAP, sends replies through SMTP.</summary>",
		fmt.Sprintf(`action="/admin/emails/%d/transport"`, mb.ID), `name="send" value="graph">`, "smtp.office365.com:587 (STARTTLS)")
	wantNotContains(t, body, "Send through Microsoft Graph")

	ticketID, _ := o.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Printer", RequesterAddress: "ann@customer.test"}, store.Message{})
	m, err := desk.New(o.db).Reply(ctx, ticketID, o.user, desk.ReplyInput{Text: "Answer"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := o.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.ClaimOutbox(ctx, mb.ID, "test", now, now.Add(time.Hour)); err != nil {
			return err
		}
		if ok, err := tx.BeginAttempt(ctx, m.ID, "test", now); err != nil || !ok {
			return fmt.Errorf("begin: %v %w", ok, err)
		}
		return tx.MarkFailed(ctx, m.ID, "auth_disabled", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", now)
	}); err != nil {
		t.Fatal(err)
	}
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, "<strong>Sending problem: SMTP AUTH is disabled</strong>", `<input type="hidden" name="send" value="graph">`,
		">Send through Microsoft Graph</button>", "The replies SMTP refused are sent again, once each.")

	res = o.post(c, fmt.Sprintf("/admin/emails/%d/transport", mb.ID), url.Values{"csrf": {o.csrf(c)}, "send": {"graph"}})
	wantStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, o.idpURL) || !strings.Contains(loc, url.QueryEscape("https://graph.microsoft.com/Mail.Send")) ||
		!strings.Contains(loc, url.QueryEscape("https://outlook.office.com/IMAP.AccessAsUser.All")) {
		t.Fatalf("switch went to %q, want a sign-in asking for Mail.Send (and IMAP, still fetched over IMAP)", loc)
	}
	if got, _ := o.db.Message(ctx, m.ID); got.Delivery == nil || got.Delivery.State != store.DeliveryHeld {
		t.Errorf("refused reply after the switch: %+v, want held until the sign-in", got.Delivery)
	}
	cb, err := o.idp.SignIn(loc, supportAddr)
	if err != nil {
		t.Fatal(err)
	}
	res, _ = o.get(c, cb.RequestURI())
	wantStatus(t, res, http.StatusSeeOther)
	if a := o.auth(mb.ID); !strings.Contains(a.GrantedScopes, "https://graph.microsoft.com/Mail.Send") {
		t.Errorf("granted %q", a.GrantedScopes)
	}
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, "<summary>Transport: Fetches mail over IMAP, sends replies through Microsoft Graph.</summary>",
		"<dt>Sends through</dt><dd>Microsoft Graph")
	wantNotContains(t, body, ">Send through Microsoft Graph</button>")

	// The same choice again: no sign-in, a sentence.
	res = o.post(c, fmt.Sprintf("/admin/emails/%d/transport", mb.ID), url.Values{"csrf": {o.csrf(c)}, "fetch": {"imap"}, "send": {"graph"}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/admin/emails") {
		t.Fatalf("same transports went to %q", loc)
	}
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, "Saved: "+supportAddr+". Fetches mail over IMAP, sends replies through Microsoft Graph.")

	// A transport that does not exist is refused in words.
	res = o.post(c, fmt.Sprintf("/admin/emails/%d/transport", mb.ID), url.Values{"csrf": {o.csrf(c)}, "send": {"pigeon"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, readBody(res), "replies are sent over smtp or graph, not &#34;pigeon&#34;")
}
