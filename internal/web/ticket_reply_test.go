package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// smtpMailbox adds a password mailbox with SMTP settings and a signature:
// replies can be sent from it (they stay queued: no sender runs here).
func (e *env) smtpMailbox(address string) store.Mailbox {
	e.t.Helper()
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		e.t.Fatal(err)
	}
	mb, err := desk.NewAdmin(e.db, vault, nil).AddMailbox(context.Background(), desk.MailboxSpec{
		Address: address, Name: "Example Support", Auth: "password", IMAPHost: "imap.example.com",
		SMTPHost: "smtp.example.com", Password: "pw", Signature: "Example Support\nhttps://example.com/help"})
	if err != nil {
		e.t.Fatal(err)
	}
	return mb
}

// replyField is one part of a reply form, in the order a browser sends it.
type replyField struct {
	name, value string
	filename    string // a file part when set
}

// postMultipart posts fields as multipart/form-data.
func (e *env) postMultipart(c *http.Client, path string, fields []replyField) (*http.Response, string) {
	e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		var w io.Writer
		var err error
		if f.filename != "" {
			w, err = mw.CreateFormFile(f.name, f.filename)
		} else {
			w, err = mw.CreateFormField(f.name)
		}
		if err != nil {
			e.t.Fatal(err)
		}
		io.WriteString(w, f.value)
	}
	mw.Close()
	res, err := c.Post(e.srv.URL+path, mw.FormDataContentType(), &b)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (e *env) outgoing(ticketID int64) []store.Message {
	e.t.Helper()
	msgs, err := e.db.TicketMessages(context.Background(), ticketID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Message
	for _, m := range msgs {
		if m.Direction == "out" {
			out = append(out, m)
		}
	}
	return out
}

func TestTicketReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mb := e.smtpMailbox("help@example.com")
	id, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Printer on fire", RequesterName: "Ann Smith"},
		store.Message{MessageID: "q1@customer.test", To: "help@example.com", Cc: "boss@customer.test", TextBody: "It burns."})
	c := e.signedIn()
	page := fmt.Sprintf("/tickets/%d", id)
	post := page + "/replies"

	// The composer: under the conversation, above the note, prefilled.
	res, body := e.get(c, page)
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, `enctype="multipart/form-data"`, `action="/tickets/`+fmt.Sprint(id)+`/replies"`,
		`id="reply-to" name="to" value="Ann Smith &lt;ann@customer.test&gt;"`, `name="cc" value="boss@customer.test"`,
		"Signature (from Admin → Emails)", "Example Support\nhttps://example.com/help", "Up to 20 MB in total.",
		`<input type="file" id="reply-files" name="attachments" multiple`,
		`value="" class="button button-primary">Send</button>`, `value="pending" class="button">Send and set Pending</button>`,
		`value="solved" class="button">Send and set Solved</button>`, `<label for="reply-text">Message</label>`)
	wantNotContains(t, body, "disabled", "needs reauthentication")
	if i, j, k := strings.Index(body, "</ol>"), strings.Index(body, `id="reply-heading"`), strings.Index(body, `id="note-label"`); !(i < j && j < k) {
		t.Errorf("composer at %d, conversation ends at %d, note at %d: want conversation, composer, note", j, i, k)
	}
	csrf := formToken(t, body)

	// Send and set Pending, with a Cc and an attachment.
	res, _ = e.postMultipart(c, post, []replyField{{name: "csrf", value: csrf}, {name: "cc", value: "boss@customer.test, Carl <carl@customer.test>"},
		{name: "text", value: "Hello Ann,\r\nthe new printer ships today."}, {name: "attachments", filename: "label.txt", value: "SHIP-123"},
		{name: "status", value: "pending"}})
	wantStatus(t, res, http.StatusSeeOther)
	out := e.outgoing(id)
	if len(out) != 1 {
		t.Fatalf("%d outgoing messages, want 1", len(out))
	}
	m := out[0]
	if loc := res.Header.Get("Location"); loc != fmt.Sprintf("%s#m-%d", page, m.ID) {
		t.Errorf("redirect to %q", loc)
	}
	if m.Delivery == nil || m.Delivery.State != store.DeliveryQueued || m.TextBody != "Hello Ann,\nthe new printer ships today." ||
		!strings.Contains(m.Cc, "carl@customer.test") || len(m.Attachments) != 1 || m.Attachments[0].Filename != "label.txt" || m.AuthorUserID != e.user.ID {
		t.Errorf("stored reply = %+v (delivery %+v)", m, m.Delivery)
	}
	res, body = e.get(c, page)
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, `<p class="flash reply-flash" role="status">Your reply is in the conversation. Queued: sending in a moment.</p>`,
		fmt.Sprintf(`<li class="msg msg-reply" id="m-%d">`, m.ID), `<span class="msg-badge">Reply</span>`, "sent by agent@example.com",
		`<span class="dchip dchip-busy">Queued</span>`, fmt.Sprintf(`href="/attachments/%d" download>label.txt</a>`, m.Attachments[0].ID),
		`<span class="chip chip-pending">Pending</span>`, "Hello Ann,\nthe new printer ships today.")
	wantNotContains(t, body, "Send again", "Mark as sent")
	_, body = e.get(c, page)
	wantNotContains(t, body, "reply-flash")
	res, file := e.get(c, fmt.Sprintf("/attachments/%d", m.Attachments[0].ID))
	wantStatus(t, res, http.StatusOK)
	if file != "SHIP-123" {
		t.Errorf("attachment = %q", file)
	}

	// A form without files may come urlencoded.
	res = e.post(c, post, url.Values{"csrf": {csrf}, "text": {"One more thing."}})
	wantStatus(t, res, http.StatusSeeOther)
	if n := len(e.outgoing(id)); n != 2 {
		t.Fatalf("%d outgoing messages after the second reply, want 2", n)
	}

	// Refusals: the page again (422) with the text kept and the sentence at its field.
	for _, c2 := range []struct {
		name, cc, text, status string
		wantField, want        string
	}{
		{"empty text", "boss@customer.test", " \r\n ", "", "reply-text-error", "The reply is empty"},
		{"bad cc", "boss@customer.test, not an address", "Keep this text", "", "reply-cc-error", "not an email address"},
		{"bad status", "", "Keep this text", "closed", "reply-status-error", "Status must be open, pending or solved"},
	} {
		res, body := e.postMultipart(c, post, []replyField{{name: "csrf", value: csrf}, {name: "cc", value: c2.cc}, {name: "text", value: c2.text},
			{name: "attachments", filename: "a.txt", value: "x"}, {name: "status", value: c2.status}})
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422", c2.name, res.StatusCode)
			continue
		}
		errRe := regexp.MustCompile(`<p class="form-error" id="` + c2.wantField + `" role="alert">([^<]*)</p>`)
		if m := errRe.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], c2.want) {
			t.Errorf("%s: no %s saying %q", c2.name, c2.wantField, c2.want)
		}
		if strings.TrimSpace(c2.text) != "" && !strings.Contains(body, ">"+c2.text+"</textarea>") {
			t.Errorf("%s: the text was not kept", c2.name)
		}
		if c2.cc != "" && !strings.Contains(body, `name="cc" value="`+strings.ReplaceAll(c2.cc, " ", " ")+`"`) {
			t.Errorf("%s: the Cc was not kept", c2.name)
		}
		wantContains(t, body, "Choose your 1 file again")
		if c2.wantField == "reply-text-error" {
			wantContains(t, body, `aria-describedby="reply-text-hint reply-text-error" aria-invalid="true" autofocus`)
		}
	}
	if n := len(e.outgoing(id)); n != 2 {
		t.Errorf("%d outgoing messages after refusals, want still 2", n)
	}

	// No CSRF token: refused, nothing sent.
	res, body = e.postMultipart(c, post, []replyField{{name: "text", value: "Sneaky"}})
	wantStatus(t, res, http.StatusForbidden)
	wantContains(t, body, "This form expired")
	res, _ = e.postMultipart(c, post, []replyField{{name: "csrf", value: "wrong"}, {name: "text", value: "Sneaky"}})
	wantStatus(t, res, http.StatusForbidden)
	if n := len(e.outgoing(id)); n != 2 {
		t.Errorf("%d outgoing messages after CSRF refusals, want 2", n)
	}
}

func TestTicketReplyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mb := e.smtpMailbox("help@example.com")
	id, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Logs"}, store.Message{TextBody: "See logs"})
	c := e.signedIn()
	csrf := e.csrf(c)
	post := fmt.Sprintf("/tickets/%d/replies", id)
	for _, size := range []int{desk.MaxReplyAttachmentBytes + 1, desk.MaxReplyAttachmentBytes + uploadOverhead + 1<<20} {
		res, body := e.postMultipart(c, post, []replyField{{name: "csrf", value: csrf}, {name: "cc", value: "x@customer.test"},
			{name: "text", value: "Here are the logs."}, {name: "attachments", filename: "big.bin", value: strings.Repeat("x", size)}})
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%d bytes: status %d, want 413", size, res.StatusCode)
			continue
		}
		wantContains(t, body, `id="reply-files-error" role="alert">The attachments are larger than 20 MB in total`,
			">Here are the logs.</textarea>", `name="cc" value="x@customer.test"`)
	}
	if n := len(e.outgoing(id)); n != 0 {
		t.Errorf("%d outgoing messages, want 0", n)
	}
}

func TestTicketReplyCannotSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// e.mailbox has no SMTP settings.
	id, _ := e.ticket(store.Ticket{Subject: "No SMTP"}, store.Message{TextBody: "Hello?"})
	page := fmt.Sprintf("/tickets/%d", id)
	c := e.signedIn()
	_, body := e.get(c, page)
	wantContains(t, body, `<fieldset class="reply-fields" disabled aria-describedby="reply-cannot">`,
		"Replies cannot be sent from support@example.com: it has no SMTP server settings.",
		fmt.Sprintf(`<a href="/admin/emails/%d/edit">Set SMTP for support@example.com in Admin → Emails</a>`, e.mailbox.ID))
	res, body := e.postMultipart(c, page+"/replies", []replyField{{name: "csrf", value: formToken(t, body)}, {name: "text", value: "Hello"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body, `<p class="form-error" id="reply-error" role="alert">support@example.com has no SMTP settings`, ">Hello</textarea>")

	// An agent reads who can fix it instead of a link.
	if _, _, err := auth.CreateUser(context.Background(), e.db, "plain@example.com", "Plain", store.RoleAgent, testPassword); err != nil {
		t.Fatal(err)
	}
	agent := e.client()
	wantStatus(t, e.postLogin(agent, "plain@example.com", testPassword, ""), http.StatusSeeOther)
	_, body = e.get(agent, page)
	wantContains(t, body, "An administrator can set them in Admin → Emails.")
	wantNotContains(t, body, "/edit")

	// A mailbox that needs reauthentication: replies are accepted and held.
	mb := e.smtpMailbox("held@example.com")
	err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		return tx.SetAuthState(context.Background(), mb.ID, store.AuthNeedsReauth, "invalid_grant", "revoked", time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	hid, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Held"}, store.Message{TextBody: "Hi", DedupeKey: "held:1"})
	hpage := fmt.Sprintf("/tickets/%d", hid)
	_, body = e.get(c, hpage)
	wantContains(t, body, "held@example.com needs reauthentication: replies will wait until it is re-authenticated",
		fmt.Sprintf(`<a href="/admin/emails#mailbox-%d">Reauthenticate held@example.com</a>`, mb.ID))
	res, _ = e.postMultipart(c, hpage+"/replies", []replyField{{name: "csrf", value: formToken(t, body)}, {name: "text", value: "Soon"}})
	wantStatus(t, res, http.StatusSeeOther)
	_, body = e.get(c, hpage)
	wantContains(t, body, `<span class="dchip dchip-warn">Held</span>`,
		"Held: held@example.com needs reauthentication; it will be sent when an admin signs in again.")
}

// TestTicketReplyActions: Send again and Mark as sent on the page.
func TestTicketReplyActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mb := e.smtpMailbox("help@example.com")
	id, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "States"}, store.Message{TextBody: "Hi"})
	other, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Other"}, store.Message{TextBody: "Hi", DedupeKey: "other"})
	d := desk.New(e.db)
	ctx := context.Background()
	reply := func(text string) int64 {
		m, err := d.Reply(ctx, id, e.user, desk.ReplyInput{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	failed, unknown := reply("This one fails"), reply("This one is unknown")
	now := time.Now()
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.MarkFailed(ctx, failed, "recipient_unknown", "550 5.1.1 <ann@customer.test>: Recipient address rejected", now); err != nil {
			return err
		}
		if _, err := tx.ClaimOutbox(ctx, mb.ID, "test", now, now.Add(time.Minute)); err != nil {
			return err
		}
		if ok, err := tx.BeginAttempt(ctx, unknown, "test", now); err != nil || !ok {
			return fmt.Errorf("begin attempt: %v %v", ok, err)
		}
		return tx.MarkUnknown(ctx, unknown, "worker stopped", now)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.signedIn()
	page := fmt.Sprintf("/tickets/%d", id)
	_, body := e.get(c, page)
	wantContains(t, body, "Not sent: 550 5.1.1 &lt;ann@customer.test&gt;: Recipient address rejected",
		"The recipient address does not exist: check it and send again.",
		"Postdesk stopped while sending this reply and cannot tell whether the server accepted it",
		fmt.Sprintf(`action="/tickets/%d/replies/%d/retry"`, id, failed), fmt.Sprintf(`action="/tickets/%d/replies/%d/mark-sent"`, id, unknown))
	wantNotContains(t, body, fmt.Sprintf(`/replies/%d/mark-sent`, failed))
	csrf := formToken(t, body)

	res := e.post(c, fmt.Sprintf("%s/replies/%d/retry", page, failed), url.Values{"csrf": {csrf}})
	wantStatus(t, res, http.StatusSeeOther)
	_, body = e.get(c, page)
	wantContains(t, body, "Sending the reply again. Queued: sending in a moment.")
	res = e.post(c, fmt.Sprintf("%s/replies/%d/mark-sent", page, unknown), url.Values{"csrf": {csrf}})
	wantStatus(t, res, http.StatusSeeOther)
	_, body = e.get(c, page)
	wantContains(t, body, "Marked the reply as sent", `<span class="dchip dchip-ok">Sent</span>`)

	// A second Mark as sent is refused at the reply; another ticket's reply is not found; no token, no change.
	res = e.post(c, fmt.Sprintf("%s/replies/%d/mark-sent", page, unknown), url.Values{"csrf": {csrf}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	b, _ := io.ReadAll(res.Body)
	wantContains(t, string(b), `<p class="form-error" role="alert">This reply is sent: only a reply whose fate is unknown can be marked as sent.</p>`)
	res = e.post(c, fmt.Sprintf("/tickets/%d/replies/%d/retry", other, failed), url.Values{"csrf": {csrf}})
	wantStatus(t, res, http.StatusNotFound)
	res = e.post(c, fmt.Sprintf("%s/replies/%d/retry", page, failed), url.Values{})
	wantStatus(t, res, http.StatusForbidden)
}

// A ticket whose email came without a usable sender (no From, or a From
// that is not an address) gets a To field: the agent says whom to answer,
// is told at that field when it is empty or wrong, and the reply goes to
// the address given. Other tickets have no To field.
func TestTicketReplyNoRequesterAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mb := e.smtpMailbox("help@example.com")
	garbled, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Garbled sender", RequesterAddress: "not an address at all"},
		store.Message{TextBody: "Who am I?"})
	var empty int64
	err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		var err error
		empty, err = tx.CreateTicket(context.Background(), store.Ticket{MailboxID: mb.ID, Subject: "No sender", CreatedAt: time.Now().UTC()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	normal, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Normal"}, store.Message{TextBody: "Hi"})
	c := e.signedIn()

	// A ticket with an address: To is prefilled, and can be changed (a
	// bounced or wrong address: the advice after a bounce said "write the
	// reply again to the right one", which the page did not allow).
	page := fmt.Sprintf("/tickets/%d", normal)
	_, body := e.get(c, page)
	wantContains(t, body, `id="reply-to" name="to" value="`, "change it to answer at another one")
	wantNotContains(t, body, `name="to" value=""`)
	res, _ := e.postMultipart(c, page+"/replies", []replyField{{name: "csrf", value: formToken(t, body)}, {name: "to", value: "Right <right@customer.test>"},
		{name: "cc", value: ""}, {name: "text", value: "To the right address."}})
	wantStatus(t, res, http.StatusSeeOther)
	if out := e.outgoing(normal); len(out) != 1 || !strings.Contains(out[0].To, "right@customer.test") {
		t.Errorf("outgoing %+v, want one reply to right@customer.test", out)
	}
	for _, id := range []int64{garbled, empty} {
		page := fmt.Sprintf("/tickets/%d", id)
		res, body := e.get(c, page)
		wantStatus(t, res, http.StatusOK)
		wantContains(t, body, `<label for="reply-to" class="reply-key">To</label>`, `id="reply-to" name="to" value=""`,
			"This email came without a sender")
		if id == empty {
			wantContains(t, body, `<span class="addr">(no address)</span>`)
		}
		csrf := formToken(t, body)
		for _, to := range []string{"", "still not an address"} {
			res, body = e.postMultipart(c, page+"/replies", []replyField{{name: "csrf", value: csrf}, {name: "to", value: to},
				{name: "cc", value: ""}, {name: "text", value: "Keep this text"}})
			wantStatus(t, res, http.StatusUnprocessableEntity)
			wantContains(t, body, `<p class="form-error" id="reply-to-error" role="alert">`, ">Keep this text</textarea>",
				`aria-describedby="reply-to-hint reply-to-error" aria-invalid="true" autofocus`, `name="to" value="`+to+`"`)
		}
		res, _ = e.postMultipart(c, page+"/replies", []replyField{{name: "csrf", value: csrf}, {name: "to", value: "Fixed <fixed@customer.test>"},
			{name: "cc", value: ""}, {name: "text", value: "Found you."}})
		wantStatus(t, res, http.StatusSeeOther)
		out := e.outgoing(id)
		if len(out) != 1 || !strings.Contains(out[0].To, "fixed@customer.test") || out[0].TextBody != "Found you." {
			t.Errorf("ticket %d: outgoing %+v, want one reply to fixed@customer.test", id, out)
		}
	}
}

// The composer carries a fresh key in each form: the same form posted
// twice (a retried request, a double submission the browser did not
// stop) sends one reply, and both answers lead to it; a new form is a new
// reply.
func TestTicketReplyFormSentTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mb := e.smtpMailbox("help@example.com")
	id, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Twice"}, store.Message{TextBody: "Hello?"})
	c := e.signedIn()
	page := fmt.Sprintf("/tickets/%d", id)
	keyRe := regexp.MustCompile(`<input type="hidden" name="key" value="([A-Z2-7]{26})">`)
	_, body := e.get(c, page)
	k := keyRe.FindStringSubmatch(body)
	if k == nil {
		t.Fatal("the composer has no key")
	}
	form := []replyField{{name: "csrf", value: formToken(t, body)}, {name: "key", value: k[1]}, {name: "cc", value: ""}, {name: "text", value: "Hello back."}}
	res1, _ := e.postMultipart(c, page+"/replies", form)
	res2, _ := e.postMultipart(c, page+"/replies", form)
	wantStatus(t, res1, http.StatusSeeOther)
	wantStatus(t, res2, http.StatusSeeOther)
	out := e.outgoing(id)
	if len(out) != 1 || res1.Header.Get("Location") != res2.Header.Get("Location") {
		t.Fatalf("%d outgoing messages, redirects %q and %q: want one reply", len(out), res1.Header.Get("Location"), res2.Header.Get("Location"))
	}
	_, body = e.get(c, page)
	if k2 := keyRe.FindStringSubmatch(body); k2 == nil || k2[1] == k[1] {
		t.Errorf("the next form's key %v, the first %q: want a new one", k2, k[1])
	}

	// The first form again with other text (its first send stalled, the
	// agent edited and sent again): refused above the form, the text kept,
	// and a new key, with which Send sends the new text.
	form[3].value = "Hello back, edited."
	res, body := e.postMultipart(c, page+"/replies", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body, `id="reply-error" role="alert">This form was already sent, with other text`, ">Hello back, edited.</textarea>")
	k3 := keyRe.FindStringSubmatch(body)
	if k3 == nil || k3[1] == k[1] || len(e.outgoing(id)) != 1 {
		t.Fatalf("after the refusal: key %v (first %q), %d outgoing", k3, k[1], len(e.outgoing(id)))
	}
	form[1].value = k3[1]
	res, _ = e.postMultipart(c, page+"/replies", form)
	wantStatus(t, res, http.StatusSeeOther)
	if out := e.outgoing(id); len(out) != 2 || out[1].TextBody != "Hello back, edited." {
		t.Errorf("after Send with the new key: %d outgoing", len(out))
	}
}

// Two agents answer one ticket from pages opened together: the second
// reply is refused above the form (the other's reply is on the page now),
// its text kept; sent again, it goes. Before, the customer got both.
func TestTicketReplyAfterAnothersReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mb := e.smtpMailbox("help@example.com")
	id, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Both at once"}, store.Message{TextBody: "Hello?"})
	_, maria := e.maria()
	me := e.signedIn()
	page := fmt.Sprintf("/tickets/%d", id)
	formOf := func(c *http.Client, body, text string) []replyField {
		t.Helper()
		key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(body)
		seen := regexp.MustCompile(`name="seen" value="(\d+)"`).FindStringSubmatch(body)
		if key == nil || seen == nil {
			t.Fatalf("the composer lacks its key or what it saw")
		}
		return []replyField{{name: "csrf", value: formToken(t, body)}, {name: "key", value: key[1]}, {name: "seen", value: seen[1]},
			{name: "cc", value: ""}, {name: "text", value: text}}
	}
	_, mine := e.get(me, page)
	_, hers := e.get(maria, page)
	res, _ := e.postMultipart(maria, page+"/replies", formOf(maria, hers, "Maria here: on it."))
	wantStatus(t, res, http.StatusSeeOther)
	res, body := e.postMultipart(me, page+"/replies", formOf(me, mine, "Unplug it."))
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body, `role="alert">Maria Santos replied a moment ago, after you opened this ticket`, ">Unplug it.</textarea>", "Maria here: on it.")
	if n := len(e.outgoing(id)); n != 1 {
		t.Fatalf("%d replies after the refusal, want Maria's", n)
	}
	res, _ = e.postMultipart(me, page+"/replies", formOf(me, body, "Unplug it."))
	wantStatus(t, res, http.StatusSeeOther)
	if n := len(e.outgoing(id)); n != 2 {
		t.Errorf("%d replies once sent again, want 2", n)
	}
}
