package web

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// graphEnv is the OAuth env with the stand-in Graph mounted beside the
// stand-in sign-in (as `postdesk fakeidp` serves it, so the provider's
// Graph URL points at it), the outbox sender and its jobs running, and
// the pages' Desk waking the sender. Its clock runs: the sender, the sync
// and the stand-ins share real time.
type graphEnv struct {
	*oauthEnv
	graph  *fakegraph.Server
	sender *jobs.Sender
}

func newGraphEnv(t *testing.T, dialect string) *graphEnv {
	t.Helper()
	g := &graphEnv{}
	g.oauthEnv = newOAuthEnv(t, dialect, oauthHooks{
		clock: new(fakeidp.Clock), // not frozen: real time
		idp: func(idp *fakeidp.IdP) {
			g.graph = fakegraph.New(fakegraph.Options{Tokens: fakegraph.FromIdP(idp), Mailboxes: []string{supportAddr}})
			idp.Mount("/graph/", http.StripPrefix("/graph", g.graph), "graph", "/graph/v1.0")
		},
		oauth: func(c *oauth.Config) {
			c.OnAuthorized = func(ctx context.Context, tx *store.Tx, id int64) error { return g.sender.Authorized(ctx, tx, id) }
		},
		web: func(opts *Options) {
			g.sender = startSender(t, opts.DB, opts.OAuth, opts.Logger)
			opts.Desk = desk.New(opts.DB, desk.WithEnqueuer(g.sender))
		},
	})
	return g
}

// startSender runs the outbox sender and its job engine until cleanup.
func startSender(t *testing.T, db *store.DB, svc *oauth.Service, log *slog.Logger) *jobs.Sender {
	t.Helper()
	ctx := context.Background()
	if err := jobs.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	sender, err := jobs.NewSender(jobs.SenderOptions{DB: db, OAuth: svc, Logger: log,
		Sweep: time.Second, Backoff: []time.Duration{200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(db, jobs.Options{Logger: log, Outbox: sender, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sender.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sender.Stop(ctx)
		runner.Stop(ctx)
	})
	return sender
}

// The first Done-when of issue 14 through the real surface: in Chromium,
// the admin switches a Microsoft mailbox to Microsoft Graph for fetching
// and sending in Admin -> Emails (the stand-in sign-in is asked for
// Graph's scopes); with the sync and the sender running, a customer's
// email delivered to the stand-in Graph becomes a ticket through delta;
// the agent's reply, written in the ticket page's composer, reaches
// sendMail with our Message-ID and threading headers; the customer's
// answer joins the same ticket and the page shows it.
func TestBrowserGraphMailboxRoundTrip(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) { testBrowserGraphMailboxRoundTrip(t, dialect) })
	}
}

func testBrowserGraphMailboxRoundTrip(t *testing.T, dialect string) {
	g := newGraphEnv(t, dialect)
	bg := context.Background()
	mb, err := g.h.mailboxes.AddMailbox(bg, desk.MailboxSpec{Address: supportAddr, Name: "Example Support", Auth: "microsoft"})
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(t)
	g.browserSignIn(t, b)
	g.reauthenticate(t, b, mb.ID, supportAddr) // connected over IMAP and SMTP, the default

	// Admin -> Emails: fetch and send through Microsoft Graph.
	visit(t, b, g.srv.URL+"/admin/emails")
	do(t, b, chromedp.Click(chromedp.CSS(fmt.Sprintf("#transport-%d summary", mb.ID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#transport-%d input[name="fetch"][value="graph"]`, mb.ID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#transport-%d input[name="send"][value="graph"]`, mb.ID))))
	click(t, b, fmt.Sprintf("#transport-%d .transport-form button", mb.ID))
	scope := authQuery(t, location(t, b)).Get("scope")
	for _, want := range []string{"https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send", "offline_access"} {
		if !strings.Contains(scope, want) {
			t.Fatalf("the sign-in asks for %q, want %s", scope, want)
		}
	}
	g.pickAccount(t, b, supportAddr)
	visit(t, b, g.srv.URL+"/admin/emails")
	if got := text(t, b, fmt.Sprintf("#transport-%d summary", mb.ID)); got != "Transport: Fetches mail over Microsoft Graph, sends replies through Microsoft Graph." {
		t.Fatalf("transport = %q", got)
	}

	startSync(t, mailsync.Options{DB: g.db, Ingest: ingest.New(g.db, ingest.Options{}), OAuth: g.svc, Logger: g.h.log,
		Owner: "web-graph-test", Round: 200 * time.Millisecond,
		Transports: map[string]mailsync.Transport{mailsync.TransportGraph: mailsync.Graph{Poll: 200 * time.Millisecond,
			BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second}}})

	// The customer writes; delta brings it in as a ticket.
	const customer = "jane.cooper@customer.test"
	question := "From: Jane Cooper <" + customer + ">\r\nTo: Example Support <" + supportAddr + ">\r\n" +
		"Subject: Printer on fire\r\nMessage-ID: <q1.graph@customer.test>\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\n\r\nThe printer in room 4 is on fire.\r\n"
	g.graph.Deliver(supportAddr, "inbox", []byte(question))
	var ticketID int64
	waitFor(t, "the question's ticket", func() bool {
		ticketID, _ = g.db.TicketForMessageIDs(bg, mb.ID, []string{"q1.graph@customer.test"})
		return ticketID != 0
	})

	// The agent replies from the ticket page.
	visit(t, b, fmt.Sprintf("%s/tickets/%d", g.srv.URL, ticketID))
	replyText := "Hello Jane,\n\nplease leave the room; a new printer ships today."
	do(t, b, chromedp.WaitVisible(chromedp.CSS("#reply-text")), chromedp.SendKeys(chromedp.CSS("#reply-text"), replyText))
	click(t, b, `.reply-buttons button[value=""]`)
	var reply store.Message
	msgs, err := g.db.TicketMessages(bg, ticketID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Direction == "out" {
			reply = m
		}
	}
	if reply.ID == 0 {
		t.Fatalf("no reply on ticket %d after Send; the page says:\n%s\n%s", ticketID,
			eval[string](t, b, `document.querySelector('main').innerText`), g.logs)
	}

	// It reaches sendMail as Postdesk composed it.
	waitFor(t, "the reply at sendMail", func() bool { return len(g.graph.Sent(supportAddr)) > 0 })
	sent := g.graph.Sent(supportAddr)
	if len(sent) != 1 {
		t.Fatalf("Graph sent %d messages, want the reply", len(sent))
	}
	got, err := mailmsg.Parse(bytes.NewReader(sent[0]), mailmsg.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageID != reply.MessageID || !strings.HasSuffix(got.MessageID, "@example.com") {
		t.Errorf("Message-ID = %q, stored %q", got.MessageID, reply.MessageID)
	}
	if !slices.Equal(got.InReplyTo, []string{"q1.graph@customer.test"}) || !slices.Equal(got.References, []string{"q1.graph@customer.test"}) {
		t.Errorf("In-Reply-To = %v, References = %v", got.InReplyTo, got.References)
	}
	if len(got.To) != 1 || got.To[0].Address != customer || !strings.Contains(strings.ReplaceAll(got.Text, "\r\n", "\n"), replyText) {
		t.Errorf("To = %+v, body:\n%s", got.To, got.Text)
	}
	waitFor(t, "the reply marked sent", func() bool {
		m, err := g.db.Message(bg, reply.ID)
		return err == nil && m.Delivery != nil && m.Delivery.State == store.DeliverySent
	})

	// The customer answers the reply; it joins the same ticket.
	answer := "From: Jane Cooper <" + customer + ">\r\nTo: Example Support <" + supportAddr + ">\r\n" +
		"Subject: Re: " + got.Subject + "\r\nMessage-ID: <a1.graph@customer.test>\r\nIn-Reply-To: <" + reply.MessageID + ">\r\n" +
		"References: <q1.graph@customer.test> <" + reply.MessageID + ">\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\n\r\nThanks, we are out. It still smokes.\r\n"
	g.graph.Deliver(supportAddr, "inbox", []byte(answer))
	waitFor(t, "the answer on a ticket", func() bool {
		id, _ := g.db.TicketForMessageIDs(bg, mb.ID, []string{"a1.graph@customer.test"})
		return id != 0
	})
	if id, _ := g.db.TicketForMessageIDs(bg, mb.ID, []string{"a1.graph@customer.test"}); id != ticketID {
		t.Fatalf("the answer is on ticket %d, want %d", id, ticketID)
	}
	if n, err := g.db.CountTickets(bg, store.TicketFilter{}); err != nil || n != 1 {
		t.Errorf("%d tickets (%v), want 1", n, err)
	}
	visit(t, b, fmt.Sprintf("%s/tickets/%d", g.srv.URL, ticketID))
	if txt := eval[string](t, b, `document.querySelector('.timeline').textContent`); !strings.Contains(txt, "It still smokes.") {
		t.Error("the answer is not in the conversation")
	}
	if n := g.graph.MaxInFlightSeen(supportAddr); n > 4 {
		t.Errorf("%d requests in flight for the mailbox", n)
	}
	browsertest.Screenshot(t, b, "graph-ticket-answered-"+dialect)
	browsertest.Axe(t, b, "ticket page of a Graph mailbox with the customer's answer")
}
