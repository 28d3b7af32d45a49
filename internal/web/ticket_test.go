package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

func TestTicketList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signedIn()

	_, body := e.get(c, "/tickets")
	wantContains(t, body, "No tickets yet", "Mail to <strong>support@example.com</strong> will appear here")

	ctx := context.Background()
	var billing store.Mailbox
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		billing, err = tx.CreateMailbox(ctx, "billing@example.com", "Billing")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	e.ticket(store.Ticket{Subject: "Printer on fire", RequesterName: "Ann Smith", RequesterAddress: "ann@customer.test", CreatedAt: now.Add(-3 * time.Hour)}, store.Message{TextBody: "help"})
	e.ticket(store.Ticket{Subject: "Invoice is wrong", RequesterName: "Bob", RequesterAddress: "bob@customer.test", MailboxID: billing.ID, Status: store.StatusPending, CreatedAt: now.Add(-2 * time.Hour)}, store.Message{TextBody: "money"})
	e.ticket(store.Ticket{Subject: "Weekly newsletter", RequesterAddress: "news@list.test", Bulk: true, Status: store.StatusSolved, CreatedAt: now.Add(-time.Hour)}, store.Message{TextBody: "news"})

	_, body = e.get(c, "/tickets")
	wantContains(t, body, "Printer on fire", "Ann Smith", "ann@customer.test", "Invoice is wrong", "billing@example.com",
		`chip chip-pending`, `chip chip-bulk`, "1 h ago", `title="`, `All <span class="tab-count">3</span>`,
		`Open <span class="tab-count">1</span>`, `Pending <span class="tab-count">1</span>`, `Solved <span class="tab-count">1</span>`)
	if strings.Index(body, "Weekly newsletter") > strings.Index(body, "Printer on fire") {
		t.Error("tickets are not newest activity first")
	}

	for _, tc := range []struct {
		query     string
		want, not []string
	}{
		{"?status=pending", []string{"Invoice is wrong"}, []string{"Printer on fire", "Weekly newsletter"}},
		{"?mailbox=" + fmt.Sprint(billing.ID), []string{"Invoice is wrong", `All <span class="tab-count">1</span>`}, []string{"Printer on fire"}},
		{"?q=ann", []string{"Printer on fire", "Clear filters"}, []string{"Invoice is wrong"}},
		{"?q=INVOICE", []string{"Invoice is wrong"}, []string{"Printer on fire"}},
		{"?q=nothing+like+this", []string{"No tickets match", `href="/tickets"`}, []string{"Printer on fire"}},
		{"?status=open&q=zzz", []string{"No tickets match", `href="/tickets?status=open"`}, nil},
		{"?status=bogus", []string{"Printer on fire", "Invoice is wrong"}, nil},
	} {
		res, body := e.get(c, "/tickets"+tc.query)
		wantStatus(t, res, http.StatusOK)
		for _, s := range tc.want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: page lacks %q", tc.query, s)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(body, s) {
				t.Errorf("%s: page has %q", tc.query, s)
			}
		}
	}
}

func TestTicketListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	base := time.Now().UTC().Add(-48 * time.Hour)
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		for i := range 60 {
			_, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: e.mailbox.ID, Subject: fmt.Sprintf("Question %02d", i),
				RequesterAddress: "x@customer.test", CreatedAt: base.Add(time.Duration(i) * time.Minute)})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.signedIn()
	_, body := e.get(c, "/tickets")
	wantContains(t, body, "1–50 of 60", "Question 59", "Question 10", `href="/tickets?page=2"`)
	wantNotContains(t, body, "Question 09", `rel="prev"`)
	_, body = e.get(c, "/tickets?page=2")
	wantContains(t, body, "51–60 of 60", "Question 09", "Question 00", `href="/tickets"`)
	wantNotContains(t, body, "Question 10", `rel="next"`)

	// A page past the end (a link kept from when there were more) says
	// so and leads to the last one, keeping the filters; not "No tickets".
	res, body := e.get(c, "/tickets?page=99999&status=open&q=question")
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, "There is no page 99999", "These 60 tickets fit on 2 pages.", `href="/tickets?page=2&amp;q=question&amp;status=open"`)
	wantNotContains(t, body, "No open tickets", "No tickets match")
	_, body = e.get(c, "/tickets?page=3&q=nothing-matches-this")
	wantContains(t, body, "No tickets match")
	wantNotContains(t, body, "There is no page")
}

func TestTicketPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sent := time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)
	id, mid := e.ticket(store.Ticket{Subject: "Printer on fire", RequesterName: "Ann Smith"}, store.Message{
		SentAt: sent, To: "support@example.com", Cc: "boss@customer.test",
		TextBody: "Line one\nLine two", HTMLBody: `<p>Hello <b>there</b><img src="https://tracker.test/p.gif"><img src="cid:logo@x"></p>`,
		Problems: []string{"part 2: unknown charset x-klingon"},
		Attachments: []store.Attachment{
			{Filename: "report.pdf", ContentType: "application/pdf", Size: 2048, SHA256: e.blob("%PDF")},
			{Filename: "logo.png", ContentType: "image/png", Size: 4, SHA256: e.blob("\x89PNG"), ContentID: "logo@x", Inline: true},
		},
	})
	ctx := context.Background()
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		return tx.InsertMessage(ctx, &store.Message{MailboxID: e.mailbox.ID, TicketID: id, Direction: "in", Kind: store.KindAutoReply,
			DedupeKey: "auto", FromAddress: "ooo@customer.test", AutoReason: "Auto-Submitted: auto-replied", TextBody: "I am away.", ReceivedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.signedIn()
	res, body := e.get(c, fmt.Sprintf("/tickets/%d", id))
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body,
		"Printer on fire", "Ann Smith", "support@example.com", "4\u00a0Mar\u00a02026, 09:30\u00a0UTC", "Cc: boss@customer.test",
		"Some parts of this email could not be read: part 2: unknown charset x-klingon",
		`<iframe class="mail-frame" sandbox="allow-popups allow-popups-to-escape-sandbox"`,
		"1 remote image blocked.", fmt.Sprintf(`href="/tickets/%d?images=1#m-%d"`, id, mid),
		fmt.Sprintf("/messages/%d/cid/logo@x", mid), // inside the escaped srcdoc
		`Hello &lt;b&gt;there&lt;/b&gt;`,
		"report.pdf", "2.0 KiB", fmt.Sprintf(`href="/attachments/`),
		fmt.Sprintf(`href="/messages/%d/raw"`, mid),
		"Automatic reply from ooo@customer.test — Auto-Submitted: auto-replied", "<details>",
		`name="status" value="solved"`, `aria-pressed="true">Open`,
		`<label id="note-label" for="note-body">`)
	wantNotContains(t, body, "tracker.test", "<script")
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "https:") {
		t.Errorf("remote images allowed without asking: %s", csp)
	}

	// The agent asks for images: the sanitizer keeps them, the CSP allows https.
	res, body = e.get(c, fmt.Sprintf("/tickets/%d?images=1", id))
	wantContains(t, body, "https://tracker.test/p.gif")
	wantNotContains(t, body, "remote image blocked")
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https:") {
		t.Errorf("CSP with images = %s", csp)
	}

	// The text view keeps line breaks and skips the frame.
	_, body = e.get(c, fmt.Sprintf("/tickets/%d?text=%d", id, mid))
	wantContains(t, body, `<div class="text-body">Line one`+"\n"+`Line two</div>`, `aria-current="true">Text`)
	wantNotContains(t, body, "<iframe")

	// The cid image is served to the page.
	res, img := e.get(c, fmt.Sprintf("/messages/%d/cid/logo@x", mid))
	wantStatus(t, res, http.StatusOK)
	if img != "\x89PNG" || res.Header.Get("Content-Type") != "image/png" {
		t.Errorf("cid image: %q %v", img, res.Header)
	}
	res, _ = e.get(c, fmt.Sprintf("/messages/%d/cid/nope@x", mid))
	wantStatus(t, res, http.StatusNotFound)

	// The frame's image requests carry no cookie: the link is signed for
	// the session instead, and only for that image.
	_, body = e.get(c, fmt.Sprintf("/tickets/%d", id))
	m := regexp.MustCompile(`/messages/\d+/cid/logo@x\?s=(\d+)&amp;amp;sig=([\w-]+)`).FindStringSubmatch(body)
	if m == nil {
		i := strings.Index(body, "/cid/")
		t.Fatalf("no signed cid link in page: %s", body[i:min(i+200, len(body))])
	}
	anon := e.client()
	res, img = e.get(anon, fmt.Sprintf("/messages/%d/cid/logo@x?s=%s&sig=%s", mid, m[1], m[2]))
	wantStatus(t, res, http.StatusOK)
	for _, bad := range []string{
		fmt.Sprintf("/messages/%d/cid/logo@x?s=%s&sig=%s", mid, m[1], m[2]+"x"),
		fmt.Sprintf("/messages/%d/cid/other@x?s=%s&sig=%s", mid, m[1], m[2]),
		fmt.Sprintf("/messages/%d/cid/logo@x?s=%s&sig=%s", mid+1, m[1], m[2]),
		fmt.Sprintf("/messages/%d/cid/logo@x", mid),
	} {
		res, _ = e.get(anon, bad)
		wantStatus(t, res, http.StatusNotFound)
	}
	// Signing out ends the links.
	wantStatus(t, e.post(c, "/logout", url.Values{"csrf": {e.csrf(c)}}), http.StatusSeeOther)
	res, _ = e.get(anon, fmt.Sprintf("/messages/%d/cid/logo@x?s=%s&sig=%s", mid, m[1], m[2]))
	wantStatus(t, res, http.StatusNotFound)
}

func TestNoteAndStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.ticket(store.Ticket{Subject: "Printer on fire"}, store.Message{TextBody: "help"})
	c := e.signedIn()
	token := e.csrf(c)
	path := fmt.Sprintf("/tickets/%d", id)

	res := e.post(c, path+"/notes", url.Values{"csrf": {token}, "body": {"Called the customer <b>back</b>.\r\nSecond line."}})
	wantStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	if !regexp.MustCompile(`^` + path + `#note-\d+$`).MatchString(loc) {
		t.Fatalf("Location = %q", loc)
	}
	_, body := e.get(c, path)
	wantContains(t, body, "Internal note", "agent@example.com", "Called the customer &lt;b&gt;back&lt;/b&gt;.\nSecond line.", `id="`+strings.TrimPrefix(loc, path+"#")+`"`)

	res = e.post(c, path+"/notes", url.Values{"csrf": {token}, "body": {"   \r\n "}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	b, _ := io.ReadAll(res.Body)
	wantContains(t, string(b), `role="alert">The note is empty.</p>`, `aria-invalid="true"`)

	// A body past the form's bound is called too long, not an expired form
	// (its csrf field, sent before the text, is past the cut too when the
	// text comes first), and nothing is saved.
	huge := url.Values{"body": {strings.Repeat("log line\r\n", 120_000)}, "csrf": {token}}
	res = e.post(c, path+"/notes", huge)
	wantStatus(t, res, http.StatusRequestEntityTooLarge)
	b, _ = io.ReadAll(res.Body)
	wantContains(t, string(b), "Too long to send", "over 1.0 MB", "Back button", `href="`+path+`"`)
	wantNotContains(t, string(b), "Form expired")
	// From the list's bulk form, the way back is the list.
	res = e.post(c, "/tickets/assign", huge)
	wantStatus(t, res, http.StatusRequestEntityTooLarge)
	b, _ = io.ReadAll(res.Body)
	wantContains(t, string(b), `href="/tickets"`)
	_, body = e.get(c, path)
	if n := strings.Count(body, `<li class="note"`); n != 1 {
		t.Errorf("%d notes shown after the refused one, want 1", n)
	}

	res = e.post(c, path+"/status", url.Values{"csrf": {token}, "status": {"pending"}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != path {
		t.Errorf("Location = %q", loc)
	}
	_, body = e.get(c, path)
	wantContains(t, body, "Status changed from open to pending by agent@example.com", `aria-pressed="true">Pending`)
	res = e.post(c, path+"/status", url.Values{"csrf": {token}, "status": {"closed-forever"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	b, _ = io.ReadAll(res.Body)
	wantContains(t, string(b), "Status must be open, pending or solved")
	if tk, _ := e.db.Ticket(context.Background(), id); tk.Status != store.StatusPending {
		t.Errorf("status = %s", tk.Status)
	}
}

// A ticket recovered from an agent's forward says so and links the forward's source.
func TestTicketPageMarksRecoveredMail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	received := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	id, mid := e.ticket(store.Ticket{Subject: "Broken blender", RequesterName: "Ann Customer"}, store.Message{
		SentAt: received.Add(-72 * time.Hour), ReceivedAt: received, TextBody: "It broke.", RecoveredFrom: 0, RecoveredBy: "agent@example.com"})
	ctx := context.Background()
	// Mark it recovered from a stored forward.
	var fwd store.Message
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		fwd = store.Message{MailboxID: e.mailbox.ID, TicketID: id, Direction: "in", Kind: store.KindForward, DedupeKey: "mid:fwd@x",
			FromAddress: "agent@example.com", ReceivedAt: received}
		if err := tx.InsertMessage(ctx, &fwd); err != nil {
			return err
		}
		return tx.InsertMessage(ctx, &store.Message{MailboxID: e.mailbox.ID, TicketID: id, Direction: "in", Kind: store.KindEmail,
			DedupeKey: "recovered:x", FromAddress: "ann@customer.test", SentAt: received.Add(-72 * time.Hour), ReceivedAt: received,
			TextBody: "Second copy", RecoveredFrom: fwd.ID, RecoveredBy: "agent@example.com"})
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.signedIn()
	_, body := e.get(c, fmt.Sprintf("/tickets/%d", id))
	wantContains(t, body, "Recovered from a forward by agent@example.com on", "View source (the forward)")
	if strings.Count(body, "Recovered from a forward") != 1 {
		t.Errorf("only the recovered message is marked (message %d is not)", mid)
	}
	wantNotContains(t, body, `id="m-`+fmt.Sprint(fwd.ID)+`"`)
}

// Two agents change a ticket's status from pages opened together: the
// second change is refused (the page now shows the first), not applied
// over it; chosen again, it is.
func TestTicketStatusFromAStalePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.ticket(store.Ticket{MailboxID: e.mailbox.ID, Subject: "Both at once"}, store.Message{TextBody: "Hello?"})
	_, maria := e.maria()
	me := e.signedIn()
	page := fmt.Sprintf("/tickets/%d", id)
	_, mine := e.get(me, page)
	_, hers := e.get(maria, page)
	if !strings.Contains(mine, `name="was" value="open"`) {
		t.Fatal("the status form does not say what it showed")
	}
	res := e.post(maria, page+"/status", url.Values{"csrf": {formToken(t, hers)}, "status": {"pending"}, "was": {"open"}})
	wantStatus(t, res, http.StatusSeeOther)
	res = e.post(me, page+"/status", url.Values{"csrf": {formToken(t, mine)}, "status": {"solved"}, "was": {"open"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	body, _ := io.ReadAll(res.Body)
	wantContains(t, string(body), "Someone set this ticket to pending after you opened it (you saw open): nothing was changed.")
	if tk, _ := e.db.Ticket(context.Background(), id); tk.Status != store.StatusPending {
		t.Fatalf("status %s after the refused change, want Maria's pending", tk.Status)
	}
	res = e.post(me, page+"/status", url.Values{"csrf": {formToken(t, mine)}, "status": {"solved"}, "was": {"pending"}})
	wantStatus(t, res, http.StatusSeeOther)
	if tk, _ := e.db.Ticket(context.Background(), id); tk.Status != store.StatusSolved {
		t.Errorf("status %s when chosen again, want solved", tk.Status)
	}
}

// Two agents take one ticket from pages opened together: the second is
// refused (it was silently theirs, and the first lost it unawares);
// chosen again, it changes hands.
func TestTicketTakenFromAStalePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.ticket(store.Ticket{MailboxID: e.mailbox.ID, Subject: "Both take it"}, store.Message{TextBody: "Hello?"})
	maria, mc := e.maria()
	me := e.signedIn()
	page := fmt.Sprintf("/tickets/%d", id)
	_, mine := e.get(me, page)
	_, hers := e.get(mc, page)
	if !strings.Contains(mine, `name="assignee_was" value="0"`) {
		t.Fatal("the assign form does not say whom it showed")
	}
	res := e.post(mc, page+"/assign", url.Values{"csrf": {formToken(t, hers)}, "take": {"1"}, "assignee_was": {"0"}})
	wantStatus(t, res, http.StatusSeeOther)
	res = e.post(me, page+"/assign", url.Values{"csrf": {formToken(t, mine)}, "take": {"1"}, "assignee_was": {"0"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	body, _ := io.ReadAll(res.Body)
	wantContains(t, string(body), "This ticket was given to Maria Santos after you opened it: nothing was changed.")
	if tk, _ := e.db.Ticket(context.Background(), id); tk.AssigneeUserID != maria.ID {
		t.Fatalf("assignee %d after the refused take, want Maria (%d)", tk.AssigneeUserID, maria.ID)
	}
	res = e.post(me, page+"/assign", url.Values{"csrf": {formToken(t, mine)}, "take": {"1"}, "assignee_was": {fmt.Sprint(maria.ID)}})
	wantStatus(t, res, http.StatusSeeOther)
	if tk, _ := e.db.Ticket(context.Background(), id); tk.AssigneeUserID != e.user.ID {
		t.Errorf("assignee %d when taken again, want me (%d)", tk.AssigneeUserID, e.user.ID)
	}
}

// A ticket whose reply failed for good (or may not have arrived) says so
// in the list: it showed only on the ticket's page, and the customer
// waited unanswered.
func TestTicketListShowsAReplyNotSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mb := e.smtpMailbox("help@example.com")
	failed, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Zoë's order"}, store.Message{TextBody: "Hello?"})
	fine, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Anna's order"}, store.Message{TextBody: "Hello?"})
	var replies []int64
	for _, id := range []int64{failed, fine} {
		m, err := desk.New(e.db).Reply(ctx, id, e.user, desk.ReplyInput{Text: "On its way."})
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, m.ID)
	}
	if err := e.db.Write(ctx, func(tx *store.Tx) error {
		return tx.MarkFailed(ctx, replies[0], "permanent", "553 5.6.7 the address is not ASCII and the server does not offer SMTPUTF8", time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	_, body := e.get(e.signedIn(), "/tickets")
	if n := strings.Count(body, ">reply not sent</span>"); n != 1 {
		t.Fatalf("%d tickets marked, want 1", n)
	}
	row := body[strings.Index(body, fmt.Sprintf(`id="check-%d"`, failed)):]
	row = row[:strings.Index(row, "</tr>")]
	wantContains(t, row, "reply not sent")
}
