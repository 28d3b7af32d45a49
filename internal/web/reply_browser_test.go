package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// The Done-when of issue 10's first point, all the way: a reply written
// on the ticket page in a real Chromium is sent by the outbox (River job,
// XOAUTH2 to Postfix's submission port, checked by the stand-in IdP
// through Dovecot) and arrives in the customer's Dovecot mailbox, read
// back over IMAP; the customer's answer joins the same ticket.

const (
	replySupport  = "support@example.com"
	replyCustomer = "jane.cooper@customer.test"
	replyBob      = "bob@customer.test"
	replyCarl     = "carl@customer.test"
)

// replyEnv is Postdesk's pages, its outbox sender and jobs, its mail sync
// and OAuth, on a Postfix + Dovecot stack.
type replyEnv struct {
	*env
	stack   *mailtest.Stack
	mailbox store.Mailbox
}

func newReplyEnv(t *testing.T, dialect string) *replyEnv {
	t.Helper()
	ctx := context.Background()
	idp := fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: replySupport, Name: "Support"}}, SigningKey: idpKey()})
	stack := mailtest.Start(t, mailtest.Options{Postfix: true, IdP: idp})
	db := storetest.Open(t, dialect)
	if err := jobs.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	r := &replyEnv{env: &env{t: t, db: db, logs: &logtest.Buffer{}}, stack: stack}
	var err error
	if r.user, _, err = auth.CreateUser(ctx, db, adminEmail, "Ada Admin", store.RoleAdmin, testPassword); err != nil {
		t.Fatal(err)
	}
	const redirect = "https://desk.example.test/oauth/callback"
	idp.AddApp(fakeidp.App{ClientID: idpClientID, Name: "Postdesk", ClientSecret: idpSecret, RedirectURIs: []string{redirect}})
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", stack.IdPURL)
	p.ClientID, p.ClientSecret = idpClientID, idpSecret
	p.MailHosts = []string{"127.0.0.1"} // the stack's Dovecot and Postfix stand in for Microsoft's servers
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var sender *jobs.Sender
	svc, err := oauth.New(oauth.Config{DB: db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: redirect, Logger: log,
		Sleep:        func(context.Context, time.Duration) error { return nil },
		OnAuthorized: func(ctx context.Context, tx *store.Tx, id int64) error { return sender.Authorized(ctx, tx, id) }})
	if err != nil {
		t.Fatal(err)
	}
	passwords := store.MailboxPasswords(db, vault)
	if sender, err = jobs.NewSender(jobs.SenderOptions{DB: db, OAuth: svc, Passwords: passwords, Logger: log,
		Sweep: time.Second, Backoff: []time.Duration{200 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(db, jobs.Options{Logger: log, Outbox: sender, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sender.Stop(ctx)
		runner.Stop(ctx)
	})
	admin := desk.NewAdmin(db, vault, desk.Providers([]oauth.Provider{p}))
	imapHost, imapPort := splitHostPort(t, stack.IMAPAddr)
	smtpHost, smtpPort := splitHostPort(t, stack.SubmissionAddr)
	r.mailbox, err = admin.AddMailbox(ctx, desk.MailboxSpec{Address: replySupport, Name: "Example Support", Auth: "microsoft",
		IMAPHost: imapHost, IMAPPort: imapPort, IMAPSecurity: "none", SMTPHost: smtpHost, SMTPPort: smtpPort, SMTPSecurity: "none",
		Signature: "Example Support\nhttps://example.com/help"})
	if err != nil {
		t.Fatal(err)
	}
	// Connect the mailbox at the stand-in (the Admin -> Emails flow has its own browser test).
	u, err := svc.Begin(ctx, r.mailbox.ID, r.user.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := idp.SignIn(u, replySupport)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Complete(ctx, r.user.ID, cb.Query()); err != nil {
		t.Fatal(err)
	}
	d := desk.New(db, desk.WithEnqueuer(sender))
	if r.h, err = New(Options{DB: db, Auth: auth.New(db, 0), Desk: d, Version: "test", Logger: log, OAuth: svc, Admin: admin}); err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(r.h)
	t.Cleanup(r.srv.Close)
	startSync(t, mailsync.Options{DB: db, Ingest: ingest.New(db, ingest.Options{}), OAuth: svc, Passwords: passwords, Logger: log,
		Owner: "web-reply-test", Round: 200 * time.Millisecond,
		Tune: func(cfg *imapsync.Config) {
			cfg.BackoffMin, cfg.BackoffMax, cfg.PollInterval = 100*time.Millisecond, time.Second, 300*time.Millisecond
		}})
	return r
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(port)
	if !ok || err != nil {
		t.Fatalf("address %q", addr)
	}
	return host, n
}

// waitFor polls cond every 100 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestBrowserReplyArrives(t *testing.T) {
	r := newReplyEnv(t, "sqlite")
	ctx := context.Background()

	// Jane writes to support, copying Bob; the sync files it as a ticket.
	question := "From: Jane Cooper <" + replyCustomer + ">\r\nTo: Example Support <" + replySupport + ">\r\nCc: Bob <" + replyBob + ">\r\n" +
		"Subject: Printer on fire\r\nMessage-ID: <q1.printer@customer.test>\r\nReferences: <older@customer.test>\r\n" +
		"Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n\r\nThe printer in room 4 is on fire.\r\n"
	if err := r.stack.Deliver(ctx, replySupport, []byte(question)); err != nil {
		t.Fatal(err)
	}
	var ticket store.Ticket
	waitFor(t, "the question's ticket", func() bool {
		list, err := r.db.Tickets(ctx, store.TicketFilter{MailboxID: r.mailbox.ID, Limit: 10})
		if err == nil && len(list) == 1 {
			ticket = list[0]
		}
		return ticket.ID != 0
	})
	page := fmt.Sprintf("%s/tickets/%d", r.srv.URL, ticket.ID)

	b := browsertest.New(t)
	do(t, b, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), adminEmail), chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
	if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	do(t, b, chromedp.WaitVisible(chromedp.CSS("#reply-text")))
	if cc := eval[string](t, b, `document.querySelector('#reply-cc').value`); cc != "Bob <"+replyBob+">" {
		t.Errorf("Cc prefilled with %q", cc)
	}
	if to := eval[string](t, b, `document.querySelector('#reply-to').value`); !strings.Contains(to, replyCustomer) {
		t.Errorf("To shows %q", to)
	}
	browsertest.Screenshot(t, b, "reply-composer")
	browsertest.ScreenshotAt(t, b, "reply-composer-320", 320, 900)
	browsertest.Axe(t, b, "ticket page with the reply composer")
	browsertest.AxeAt(t, b, "ticket page with the reply composer at 320 px", 320, 900)
	wantFits(t, b, 320)

	// The agent adds Carl to Cc, attaches a file, writes and sends.
	file := filepath.Join(t.TempDir(), "replacement-order.txt")
	if err := os.WriteFile(file, []byte("Order 4711: one printer, fireproof.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := "Hello Jane,\n\nplease leave the room; a new printer ships today."
	do(t, b,
		chromedp.SendKeys(chromedp.CSS("#reply-cc"), kb.End+", Carl <"+replyCarl+">"),
		chromedp.SetUploadFiles(chromedp.CSS("#reply-files"), []string{file}),
		chromedp.SendKeys(chromedp.CSS("#reply-text"), text))
	if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(`.reply-buttons button[value=""]`))); err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(b, chromedp.Location())
	out := r.outgoing(ticket.ID)
	if len(out) != 1 {
		t.Fatalf("%d outgoing messages after Send, want 1; at %s the page says:\n%s\n%s", len(out), loc,
			eval[string](t, b, `document.querySelector('main').innerText`), r.logs)
	}
	reply := out[0]
	if want := fmt.Sprintf("/tickets/%d#m-%d", ticket.ID, reply.ID); !strings.HasSuffix(loc, want) {
		t.Errorf("after Send at %s, want …%s", loc, want)
	}
	// At once: the reply is in the conversation with its state, and the status says so.
	msg := fmt.Sprintf("#m-%d", reply.ID)
	state := eval[string](t, b, `document.querySelector('`+msg+` .dchip').textContent`)
	if !slices.Contains([]string{"Queued", "Sending", "Sent"}, state) {
		t.Errorf("new reply's state = %q", state)
	}
	if flash := eval[string](t, b, `(document.querySelector('[role=status].reply-flash')||{}).textContent||''`); !strings.HasPrefix(flash, "Your reply is in the conversation.") {
		t.Errorf("status message = %q", flash)
	}
	if txt := eval[string](t, b, `document.querySelector('`+msg+` .text-body').textContent`); txt != text {
		t.Errorf("reply shown as %q", txt)
	}

	// It arrives in Jane's mailbox, and Bob's and Carl's, once each.
	msgs, err := r.stack.WaitMessages(ctx, replyCustomer, "INBOX", 1)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.logs)
	}
	if len(msgs) != 1 {
		t.Fatalf("Jane got %d messages", len(msgs))
	}
	for _, cc := range []string{replyBob, replyCarl} {
		if got, err := r.stack.WaitMessages(ctx, cc, "INBOX", 1); err != nil || len(got) != 1 || !bytes.Equal(got[0].Raw, msgs[0].Raw) {
			t.Errorf("%s got %d messages (%v)", cc, len(got), err)
		}
	}
	raw := msgs[0].Raw
	var attached bytes.Buffer
	got, err := mailmsg.Parse(bytes.NewReader(raw), mailmsg.ParseOptions{Attachment: func(a *mailmsg.Attachment, content io.Reader) error {
		_, err := attached.ReadFrom(content)
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if attached.String() != "Order 4711: one printer, fireproof.\n" {
		t.Errorf("attachment content = %q", attached.String())
	}
	checkArrived(t, raw, got, ticket, reply, text)

	// The page shows it sent, on reload.
	waitFor(t, "the page to show Sent", func() bool {
		do(t, b, chromedp.Reload())
		return eval[string](t, b, `document.querySelector('`+msg+` .dchip').textContent`) == "Sent"
	})
	if s := eval[string](t, b, `document.querySelector('`+msg+` .delivery-sentence').textContent`); !strings.HasPrefix(s, "Sent ") {
		t.Errorf("sent sentence = %q", s)
	}
	if a := eval[string](t, b, `document.querySelector('`+msg+` .attachments a').textContent`); a != "replacement-order.txt" {
		t.Errorf("attachment shown as %q", a)
	}
	wantFits(t, b, 320)
	browsertest.Screenshot(t, b, "reply-sent")
	browsertest.ScreenshotAt(t, b, "reply-sent-320", 320, 900)
	browsertest.Axe(t, b, "ticket page with a sent reply")

	// The agent marks the ticket solved; Jane's answer will reopen it.
	if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(`button.seg-solved`))); err != nil {
		t.Fatal(err)
	}
	if tk, err := r.db.Ticket(ctx, ticket.ID); err != nil || tk.Status != store.StatusSolved {
		t.Fatalf("after Solved the ticket is %q (%v)", tk.Status, err)
	}

	// Jane answers the reply; her answer joins the same ticket.
	answer := "From: Jane Cooper <" + replyCustomer + ">\r\nTo: Example Support <" + replySupport + ">\r\n" +
		"Subject: Re: " + reply.Subject + "\r\nMessage-ID: <a1.printer@customer.test>\r\nIn-Reply-To: <" + reply.MessageID + ">\r\n" +
		"References: <q1.printer@customer.test> <" + reply.MessageID + ">\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\n\r\nThanks, we are out. It still smokes.\r\n"
	if err := r.stack.SendSMTP(ctx, replyCustomer, []string{replySupport}, []byte(answer)); err != nil {
		t.Fatal(err)
	}
	// Joined, after the reply: its time is the server's INTERNALDATE, whole
	// seconds, so it may be earlier than the reply's within their second.
	waitFor(t, "the answer on the ticket", func() bool {
		msgs, err := r.db.TicketMessages(ctx, ticket.ID)
		return err == nil && len(msgs) == 3 && slices.ContainsFunc(msgs, func(m store.Message) bool { return m.MessageID == "a1.printer@customer.test" })
	})
	if msgs, err := r.db.TicketMessages(ctx, ticket.ID); err != nil || msgs[2].MessageID != "a1.printer@customer.test" {
		t.Errorf("the answer is not last in the conversation (%v)", err)
	}
	if n, err := r.db.CountTickets(ctx, store.TicketFilter{}); err != nil || n != 1 {
		t.Errorf("%d tickets (%v), want 1", n, err)
	}
	do(t, b, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#reply-text")))
	txt := eval[string](t, b, `document.querySelector('.timeline').textContent`)
	if !strings.Contains(txt, "It still smokes.") {
		t.Error("the answer is not in the conversation")
	}
	// The reopen is on the timeline, as an agent's status change is.
	if want := "Status changed from solved to open by an email from " + replyCustomer; !strings.Contains(txt, want) {
		t.Errorf("the timeline does not say %q", want)
	}
	if tk, err := r.db.Ticket(ctx, ticket.ID); err != nil || tk.Status != store.StatusOpen {
		t.Errorf("after the answer the ticket is %q (%v), want open", tk.Status, err)
	}
}

// wantFits checks that the page needs no sideways scrolling at width px.
func wantFits(t *testing.T, b context.Context, width int64) {
	t.Helper()
	do(t, b, chromedp.EmulateViewport(width, 900, chromedp.EmulateMobile), chromedp.Sleep(100*time.Millisecond))
	w := eval[int64](t, b, `document.documentElement.scrollWidth`)
	wide := eval[string](t, b, `[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > innerWidth + 0.5).map(e => e.tagName + '.' + e.className).slice(0, 5).join(', ')`)
	do(t, b, chromedp.EmulateViewport(browsertest.Width, browsertest.Height))
	if w > width {
		t.Errorf("at %d px the page is %d px wide: %s", width, w, wide)
	}
}

// checkArrived compares the email Jane received with the reply Postdesk stored.
func checkArrived(t *testing.T, raw []byte, got *mailmsg.Message, ticket store.Ticket, reply store.Message, text string) {
	t.Helper()
	addrs := func(list []mailmsg.Address) []string {
		var out []string
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	if len(got.From) != 1 || got.From[0].Address != replySupport || got.From[0].Name != "Example Support" {
		t.Errorf("From = %+v", got.From)
	}
	if to := addrs(got.To); !slices.Equal(to, []string{replyCustomer}) {
		t.Errorf("To = %v", to)
	}
	if cc := addrs(got.Cc); !slices.Equal(cc, []string{replyBob, replyCarl}) {
		t.Errorf("Cc = %v", cc)
	}
	if want := fmt.Sprintf("Re: Printer on fire [#%d]", ticket.ID); got.Subject != want {
		t.Errorf("Subject = %q, want %q", got.Subject, want)
	}
	if got.MessageID != reply.MessageID || !strings.HasSuffix(got.MessageID, "@example.com") {
		t.Errorf("Message-ID = %q, stored %q", got.MessageID, reply.MessageID)
	}
	if !slices.Equal(got.InReplyTo, []string{"q1.printer@customer.test"}) {
		t.Errorf("In-Reply-To = %v", got.InReplyTo)
	}
	if !slices.Equal(got.References, []string{"older@customer.test", "q1.printer@customer.test"}) {
		t.Errorf("References = %v", got.References)
	}
	body := strings.ReplaceAll(got.Text, "\r\n", "\n")
	if !strings.HasPrefix(body, text) || !strings.Contains(body, "Example Support\nhttps://example.com/help") ||
		!strings.Contains(body, "The printer in room 4 is on fire.") {
		t.Errorf("body:\n%s", body)
	}
	if len(got.Attachments) != 1 || got.Attachments[0].Filename != "replacement-order.txt" {
		t.Errorf("attachments = %+v", got.Attachments)
	}
	if !strings.Contains(string(raw), "multipart/alternative") {
		t.Error("no multipart/alternative part")
	}
}

// TestBrowserReplyNoSender: an email that reached the support mailbox
// without a From and with a subject of 10,000 characters. The list and the
// ticket page stay short (the subject is cut to a few lines), the composer
// asks whom to answer, refuses to send without it at that field, and the
// reply sent to the address the agent typed arrives there.
func TestBrowserReplyNoSender(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) { browserReplyNoSender(t, dialect) })
	}
}

func browserReplyNoSender(t *testing.T, dialect string) {
	r := newReplyEnv(t, dialect)
	ctx := context.Background()
	subject := "Order " + strings.Repeat("lost parcel ", 833)
	question := "To: Example Support <" + replySupport + ">\r\nSubject: " + subject + "\r\nMessage-ID: <nosender@customer.test>\r\n" +
		"Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n\r\nMy order did not arrive. -- Jane (" + replyCustomer + ")\r\n"
	if err := r.stack.Deliver(ctx, replySupport, []byte(question)); err != nil {
		t.Fatal(err)
	}
	var ticket store.Ticket
	waitFor(t, "the email's ticket", func() bool {
		list, err := r.db.Tickets(ctx, store.TicketFilter{MailboxID: r.mailbox.ID, Limit: 10})
		if err == nil && len(list) == 1 {
			ticket = list[0]
		}
		return ticket.ID != 0
	})
	if ticket.RequesterAddress != "" {
		t.Fatalf("requester %q, want none", ticket.RequesterAddress)
	}

	b := browsertest.New(t)
	do(t, b, chromedp.Navigate(r.srv.URL+"/tickets"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), adminEmail), chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
	click(t, b, `button[type="submit"]`)
	do(t, b, chromedp.WaitVisible(chromedp.CSS(".ticket-table")))
	if h := eval[float64](t, b, `document.querySelector('.ticket-table tbody tr').getBoundingClientRect().height`); h > 150 {
		t.Errorf("the ticket's row in the list is %.0f px tall", h)
	}
	if s := eval[string](t, b, `document.querySelector('.ticket-table tbody .col-requester').textContent`); s != "(no address)" {
		t.Errorf("requester in the list = %q", s)
	}
	browsertest.Screenshot(t, b, "list-long-subject")

	click(t, b, fmt.Sprintf(`a[href="/tickets/%d"]`, ticket.ID))
	do(t, b, chromedp.WaitVisible(chromedp.CSS("#reply-to")))
	if h := eval[float64](t, b, `document.querySelector('.ticket-title h1').getBoundingClientRect().height`); h > 300 {
		t.Errorf("the ticket's heading is %.0f px tall", h)
	}
	// The whole subject is one click away, and read whole by a screen reader there.
	do(t, b, chromedp.Click(chromedp.CSS(".subject-whole summary")))
	if s := eval[string](t, b, `document.querySelector('.subject-whole p').textContent`); s != strings.TrimSpace(subject) {
		t.Errorf("the whole subject shown has %d characters, want %d", len(s), len(subject))
	}
	if h := eval[float64](t, b, `document.querySelector('.subject-whole p').getBoundingClientRect().height`); h > 250 {
		t.Errorf("the whole subject takes %.0f px", h)
	}
	wantFits(t, b, 320)
	browsertest.Screenshot(t, b, "reply-no-sender")
	browsertest.Axe(t, b, "ticket page of an email without a sender")

	// Sent without a To: refused at that field, the text kept.
	text := "Hello Jane, your parcel is on its way."
	do(t, b, chromedp.SendKeys(chromedp.CSS("#reply-text"), text))
	eval[bool](t, b, `document.querySelector('#reply-to').required = false; true`) // past the browser's own check
	if status := click(t, b, `.reply-buttons button[value=""]`); status != 422 {
		t.Errorf("Send without a To: status %d, want 422", status)
	}
	if msg := eval[string](t, b, `(document.querySelector('#reply-to-error')||{}).textContent||''`); !strings.Contains(msg, "say whom to send the reply to") {
		t.Errorf("error at To = %q", msg)
	}
	if got := eval[string](t, b, `document.querySelector('#reply-text').value`); got != text {
		t.Errorf("text after the refusal = %q", got)
	}
	do(t, b, chromedp.SendKeys(chromedp.CSS("#reply-to"), "Jane <"+replyCustomer+">"))
	click(t, b, `.reply-buttons button[value=""]`)
	out := r.outgoing(ticket.ID)
	if len(out) != 1 || !strings.Contains(out[0].To, replyCustomer) {
		t.Fatalf("outgoing after Send: %+v", out)
	}
	msgs, err := r.stack.WaitMessages(ctx, replyCustomer, "INBOX", 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Jane got %d messages (%v)\n%s", len(msgs), err, r.logs)
	}
	if !bytes.Contains(msgs[0].Raw, []byte("your parcel is on its way")) {
		t.Errorf("the reply that arrived:\n%s", msgs[0].Raw)
	}
}
