package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/demo"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/store"
)

// startDemo runs the demo in-process on free ports with a temporary data
// folder; it stops (and must stop cleanly) at the test's end.
func startDemo(t *testing.T, mailEvery time.Duration) (*demoRun, *logtest.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr logtest.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	ready := make(chan *demoRun, 1)
	done := make(chan error, 1)
	go func() {
		done <- runDemoWith(ctx, e, demoOptions{listen: "127.0.0.1:0", mailEvery: mailEvery,
			ready: func(r *demoRun) { ready <- r }})
	}()
	var run *demoRun
	select {
	case run = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("demo ended before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(90 * time.Second):
		// Generous: migrations alone took 9 s on a loaded 2-core machine.
		cancel()
		t.Fatalf("demo not ready after 90 s\n%s", stderr.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the demo's log, last lines:\n%s", tail(stderr.String(), 40))
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo stopped with %v", err)
			}
		case <-time.After(25 * time.Second):
			t.Errorf("demo did not stop within 25 s")
		}
		if !strings.Contains(stderr.String(), "stopped cleanly") {
			t.Errorf("no clean stop in the log:\n%s", tail(stderr.String(), 20))
		}
		if _, err := os.Stat(run.app.cfg.DataDir); !os.IsNotExist(err) {
			t.Errorf("temporary data folder %s not removed: %v", run.app.cfg.DataDir, err)
		}
	})
	return run, &stderr
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ticketsBySubject lists every ticket, by subject.
func ticketsBySubject(t *testing.T, db *store.DB) map[string]store.Ticket {
	t.Helper()
	list, err := db.Tickets(context.Background(), store.TicketFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Ticket{}
	for _, tk := range list {
		out[tk.Subject] = tk
	}
	return out
}

// waitTickets waits until tickets with every subject exist. The waits are
// generous: under a full test run (load 15-20 on 2 cores) a mailbox's
// first fetch took over 15 s.
func waitTickets(t *testing.T, db *store.DB, within time.Duration, subjects ...string) map[string]store.Ticket {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := ticketsBySubject(t, db)
		var missing []string
		for _, s := range subjects {
			if _, ok := got[s]; !ok {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, no tickets for %q (have %d tickets)", within, missing, len(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func authState(t *testing.T, db *store.DB, id int64) store.MailboxAuth {
	t.Helper()
	a, err := db.MailboxAuth(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// formFields returns the hidden inputs of the first form whose action is action.
func formFields(t *testing.T, page, action string) url.Values {
	t.Helper()
	i := strings.Index(page, `action="`+action+`"`)
	if i < 0 {
		t.Fatalf("no form to %s in:\n%s", action, page)
	}
	form := page[i:]
	form = form[:strings.Index(form, "</form>")]
	v := url.Values{}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(form, -1) {
		v.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// browser is an HTTP client that keeps cookies and follows redirects, as
// a browser does.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	// The bound catches a hung server, not a slow one: with the race
	// detector on a loaded 2-core machine, signing in (a password hash and
	// a write beside the demo's first ingest) took over 15 s once.
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: time.Minute}}
}

func (b *browser) do(resp *http.Response, err error) (*http.Response, string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) { b.t.Helper(); return b.do(b.c.Get(u)) }
func (b *browser) post(u string, v url.Values) (*http.Response, string) {
	b.t.Helper()
	return b.do(b.c.PostForm(u, v))
}

func TestDemo(t *testing.T) {
	t.Parallel()
	run, logs := startDemo(t, 200*time.Millisecond)
	ctx := context.Background()
	db := run.app.db
	d := run.env.Domain
	ids := run.prov.Mailboxes

	// The seed mail of the two fetching mailboxes becomes tickets.
	tickets := waitTickets(t, db, 60*time.Second, "Can't sign in after the password reset",
		"Invoice INV-2291 charged twice", "This week: 7 ways to cut support response times", "CSV export broken since the update")
	if tk := tickets["Can't sign in after the password reset"]; tk.MessageCount != 2 {
		t.Errorf("the reply did not join its thread: %d messages", tk.MessageCount)
	}
	if tk := tickets["This week: 7 ways to cut support response times"]; !tk.Bulk {
		t.Errorf("the newsletter is not marked bulk")
	}
	if tk := tickets["CSV export broken since the update"]; tk.RequesterAddress != "luis.ortega@tailspin.example" {
		t.Errorf("the agent's forward is from %s, want the original customer", tk.RequesterAddress)
	}
	msgs, err := db.TicketMessages(ctx, tickets["Invoice INV-2291 charged twice"].ID)
	if err != nil || len(msgs) != 1 || len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Filename != "INV-2291.pdf" {
		t.Errorf("invoice messages = %+v, %v; want one with INV-2291.pdf", msgs, err)
	}
	if _, ok := tickets["Automatic reply: Your request about the API limits"]; ok {
		t.Errorf("the out-of-office opened a ticket")
	}
	for _, s := range []string{"Quote for 40 seats", "Demo call next week?"} {
		if _, ok := tickets[s]; ok {
			t.Errorf("sales@ mail %q was fetched although the mailbox needs re-authentication", s)
		}
	}
	// sales@'s earlier ticket has the agent's reply, held.
	upgrade := waitTickets(t, db, time.Second, "Upgrading to the Business plan")["Upgrading to the Business plan"]
	const hannah = "hannah.schmidt@cohowinery.example"
	held := heldReply(t, run, upgrade, hannah)

	// A reply on support@ goes out to Jane's mailbox on the demo's mail
	// server, and her answer joins the ticket.
	const jane = "jane.cooper@northwind.example"
	checkReplyAnswered(t, run, tickets["Can't sign in after the password reset"], jane)
	if n := len(run.env.Mail.Messages(hannah, "INBOX")); n != 0 {
		t.Errorf("sales@'s held reply went out before re-authentication (%d)", n)
	}

	// The three states.
	if a := authState(t, db, ids[d.Support]); a.State != store.AuthOK {
		t.Errorf("support@ state = %s, want ok", a.State)
	}
	billing := authState(t, db, ids[d.Billing])
	if left := time.Until(billing.ReauthDueAt); billing.State != store.AuthExpiring || left < 5*24*time.Hour || left > 7*24*time.Hour {
		t.Errorf("billing@ state = %s, due in %s; want expiring in ~6 days", billing.State, left)
	}
	if a := authState(t, db, ids[d.Sales]); a.State != store.AuthNeedsReauth || a.ErrorCode != "AADSTS50173" {
		t.Errorf("sales@ state = %s (%s), want needs_reauth AADSTS50173", a.State, a.ErrorCode)
	}

	b := newBrowser(t)
	if resp, body := b.get(run.baseURL + "/healthz"); resp.StatusCode != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}
	if resp, body := b.get(run.env.SignInURL()); resp.StatusCode != 200 || !strings.Contains(body, d.Sales) {
		t.Errorf("stand-in sign-in page = %d, lists %s: %v", resp.StatusCode, d.Sales, strings.Contains(body, d.Sales))
	}

	// An admin signs in, sees the banner, and reauthenticates sales@ as in
	// the browser: Reauthenticate, the stand-in's page, pick the account,
	// back to Admin -> Emails.
	_, page := b.get(run.baseURL + "/login?next=/admin/emails")
	login := formFields(t, page, "/login")
	login.Set("email", d.Admin)
	login.Set("password", demo.Password)
	resp, page := b.post(run.baseURL+"/login", login)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/admin/emails" {
		t.Fatalf("after signing in: %d %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{d.Sales, d.Billing, "Needs reauthentication", "Reauthentication due in 6 days"} {
		if !strings.Contains(page, want) {
			t.Errorf("Admin -> Emails does not mention %q", want)
		}
	}
	connect := "/admin/emails/" + strconv.FormatInt(ids[d.Sales], 10) + "/connect"
	resp, page = b.post(run.baseURL+connect, formFields(t, page, connect))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.String(), run.env.Authority) {
		t.Fatalf("Reauthenticate led to %d %s", resp.StatusCode, resp.Request.URL)
	}
	action := resp.Request.URL.Path
	pick := formFields(t, page, html.EscapeString(action))
	pick.Set("account", d.Sales)
	resp, page = b.post(run.env.Authority+action, pick)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/admin/emails" {
		t.Fatalf("back from the sign-in: %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	if a := authState(t, db, ids[d.Sales]); a.State != store.AuthOK {
		t.Fatalf("sales@ after reauthenticating: %s %s", a.State, a.Error)
	}
	// The held reply goes out, once, and Hannah answers it on the ticket.
	waitInbox(t, run, hannah, held.MessageID, 20*time.Second)
	waitSent(t, db, upgrade.ID, held.MessageID, 10*time.Second)
	waitAnswer(t, db, upgrade.ID, held.MessageID, 30*time.Second)
	if n := countInbox(run, hannah, held.MessageID); n != 1 {
		t.Errorf("the held reply reached %s %d times", hannah, n)
	}
	for _, to := range []string{jane, hannah} {
		if want := `msg="demo: mail delivered" component=demo_mail to=` + to; !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	// The mail that waited becomes tickets.
	tickets = waitTickets(t, db, 60*time.Second, "Quote for 40 seats", "Demo call next week?")
	if tk := tickets["Quote for 40 seats"]; tk.MailboxID != ids[d.Sales] {
		t.Errorf("quote ticket in mailbox %d, want sales@ (%d)", tk.MailboxID, ids[d.Sales])
	}
	// Live mail keeps coming, to sales@ too.
	live := waitTickets(t, db, 10*time.Second, "Feature request: dark mode")
	if tk := live["Feature request: dark mode"]; tk.MailboxID != ids[d.Sales] {
		t.Errorf("live sales mail in mailbox %d, want sales@ (%d)", tk.MailboxID, ids[d.Sales])
	}
	if !strings.Contains(logs.String(), "a customer email arrived") {
		t.Errorf("no live mail logged")
	}
}

// TestDemoInBrowser signs in to a fresh demo in Chromium, shows Admin ->
// Emails and the ticket list (screenshots under POSTDESK_SCREENSHOTS when
// set), and reauthenticates billing@ by clicking through the stand-in.
func TestDemoInBrowser(t *testing.T) {
	t.Parallel()
	run, _ := startDemo(t, 0)
	d := run.env.Domain
	db := run.app.db
	waitTickets(t, db, 60*time.Second, "Can't sign in after the password reset", "CSV export broken since the update")
	ctx := browsertest.New(t)
	step := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	step(chromedp.Navigate(run.baseURL+"/login?next=/admin/emails"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), d.Admin), chromedp.SendKeys(chromedp.CSS("#password"), demo.Password))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	step(chromedp.WaitVisible(chromedp.CSS("form.connect-form")))
	browsertest.Screenshot(t, ctx, "demo-admin-emails")
	browsertest.Axe(t, ctx, "demo: Emails")
	browsertest.AxeAt(t, ctx, "demo: Emails at phone width", 375, 740)
	emails := text()
	for _, want := range []string{d.Support, d.Billing, d.Sales} {
		if !strings.Contains(emails, want) {
			t.Errorf("Admin -> Emails does not show %s", want)
		}
	}

	step(chromedp.Navigate(run.baseURL + "/tickets"))
	browsertest.Screenshot(t, ctx, "demo-tickets")
	browsertest.Axe(t, ctx, "demo: ticket list")
	browsertest.AxeAt(t, ctx, "demo: ticket list at phone width", 375, 740)
	if list := text(); !strings.Contains(list, "CSV export broken since the update") {
		t.Errorf("the ticket list does not show the recovered forward:\n%s", list)
	}

	// sales@'s ticket shows the agent's reply, held.
	upgrade := waitTickets(t, db, time.Second, "Upgrading to the Business plan")["Upgrading to the Business plan"]
	step(chromedp.Navigate(run.baseURL+"/tickets/"+strconv.FormatInt(upgrade.ID, 10)), chromedp.WaitVisible(chromedp.CSS(".delivery-state")))
	browsertest.Screenshot(t, ctx, "demo-held-reply")
	if page := text(); !strings.Contains(page, "Held") || !strings.Contains(page, "Reauthenticate "+d.Sales) {
		t.Errorf("sales@'s ticket does not show the held reply and the way out:\n%s", page)
	}

	// Answer Jane in the composer: the reply goes out, and on reload her
	// answer is on the ticket.
	signin := waitTickets(t, db, time.Second, "Can't sign in after the password reset")["Can't sign in after the password reset"]
	step(chromedp.Navigate(run.baseURL+"/tickets/"+strconv.FormatInt(signin.ID, 10)), chromedp.WaitVisible(chromedp.CSS("#reply-text")),
		chromedp.SendKeys(chromedp.CSS("#reply-text"), "Hi Jane,\n\nWe reset your session on our side: please try again.\n\nMaria"))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`.reply-buttons button[value=""]`))); err != nil {
		t.Fatal(err)
	}
	step(chromedp.WaitVisible(chromedp.CSS(".msg-reply .delivery-state")))
	browsertest.Screenshot(t, ctx, "demo-reply-written")
	var replyID string
	for _, m := range messagesOf(t, db, signin.ID) {
		if m.Direction == "out" {
			replyID = m.MessageID
		}
	}
	if replyID == "" {
		t.Fatal("no reply stored after Send")
	}
	waitInbox(t, run, "jane.cooper@northwind.example", replyID, 20*time.Second)
	waitAnswer(t, db, signin.ID, replyID, 30*time.Second)
	step(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".msg-reply .delivery-state")))
	browsertest.Screenshot(t, ctx, "demo-reply-answered")
	browsertest.Axe(t, ctx, "demo: a ticket with a reply and its answer")
	if page := text(); !strings.Contains(page, "Sent") || !strings.Contains(page, "Thanks, that did it") {
		t.Errorf("the ticket does not show the sent reply and Jane's answer:\n%s", page)
	}

	// Reauthenticate billing@ in the browser: the stand-in's page, pick the
	// account, back to Admin -> Emails.
	billing := run.prov.Mailboxes[d.Billing]
	step(chromedp.Navigate(run.baseURL + "/admin/emails"))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form[action="/admin/emails/`+strconv.FormatInt(billing, 10)+`/connect"] button`))); err != nil {
		t.Fatal(err)
	}
	account := chromedp.CSS(`button[name="account"][value="` + d.Billing + `"]`)
	step(chromedp.WaitVisible(account))
	browsertest.Screenshot(t, ctx, "demo-stand-in-sign-in")
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(account)); err != nil {
		t.Fatal(err)
	}
	step(chromedp.WaitVisible(chromedp.CSS("form.connect-form")))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasPrefix(loc, run.baseURL+"/admin/emails") {
		t.Errorf("after the sign-in at %s", loc)
	}
	browsertest.Screenshot(t, ctx, "demo-admin-emails-after-reauth")
	browsertest.Axe(t, ctx, "demo: Emails after reauthenticating")
	if a := authState(t, db, billing); a.State != store.AuthOK || time.Until(a.ReauthDueAt) < 80*24*time.Hour {
		t.Errorf("billing@ after reauthenticating: %s, due %s", a.State, a.ReauthDueAt)
	}
}

// A demo started again on its kept data folder listens where it did, so
// its mailboxes' server settings stay: no "server changed" notice, and
// support@, connected throughout, gets no notice at all. (With new ports
// every mailbox needed signing in again, each with an emailed notice.)
func TestDemoRestartedOnItsFolder(t *testing.T) {
	dir := t.TempDir()
	runOnce := func() {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr logtest.Buffer
		e := env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		done := make(chan error, 1)
		go func() {
			done <- runDemoWith(ctx, e, demoOptions{listen: "127.0.0.1:0", dataDir: dir, ready: func(*demoRun) { cancel() }})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, tail(stderr.String(), 30))
			}
		case <-time.After(90 * time.Second):
			cancel()
			t.Fatalf("demo not ready after 90 s\n%s", tail(stderr.String(), 30))
		}
	}
	runOnce()
	first, err := os.ReadFile(filepath.Join(dir, "demo-ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	runOnce()
	second, err := os.ReadFile(filepath.Join(dir, "demo-ports.json"))
	if err != nil || string(first) != string(second) {
		t.Errorf("ports %s, then %s (%v): want the same", first, second, err)
	}
	db := openForTest(t, map[string]string{"POSTDESK_DATA": dir})
	notices, err := db.Notices(context.Background(), store.NoticeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	support, err := db.MailboxByAddress(context.Background(), demo.DefaultDomain().Support)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notices {
		if strings.Contains(n.Message, "server changed") || n.MailboxID == support.ID {
			t.Errorf("notice after the restart: %s %s", n.Kind, n.Message)
		}
	}
}
