package msgraph_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/msgraph"
)

// fetchAll follows delta rounds from link until a round ends, returning
// every item and the new cursor.
func fetchAll(t *testing.T, c *msgraph.Client, folder, link string, size int) ([]msgraph.DeltaItem, string) {
	t.Helper()
	var items []msgraph.DeltaItem
	for {
		p, err := c.Delta(context.Background(), folder, link, size)
		if err != nil {
			t.Fatalf("delta: %v", err)
		}
		items = append(items, p.Items...)
		if p.DeltaLink != "" {
			return items, p.DeltaLink
		}
		link = p.NextLink
	}
}

func TestSendThenFetchBackKeepsOurHeaders(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	out, _, _ := w.client(t, agent)
	in, _, _ := w.client(t, customer)
	ctx := context.Background()
	for i := range 5 {
		raw := mime(agent, customer, fmt.Sprint("Re: ticket ", i), fmt.Sprintf("<reply-%d@postdesk.test>", i),
			"In-Reply-To: <q@example.net>", "References: <q@example.net>", "Auto-Submitted: auto-replied")
		if err := out.SendMIME(ctx, raw); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	inbox, err := in.FolderID(ctx, "Inbox")
	if err != nil {
		t.Fatal(err)
	}
	items, cursor := fetchAll(t, in, inbox, "", 2)
	if len(items) != 5 {
		t.Fatalf("fetched %d, want 5", len(items))
	}
	for i, it := range items {
		if it.Removed || it.InternetMessageID != fmt.Sprintf("<reply-%d@postdesk.test>", i) || it.ReceivedDateTime.IsZero() {
			t.Fatalf("item %d: %+v", i, it)
		}
		rc, err := in.MIME(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := string(b)
		if !strings.Contains(got, "Message-ID: "+it.InternetMessageID) || !strings.Contains(got, "In-Reply-To: <q@example.net>") ||
			!strings.Contains(got, "References: <q@example.net>") || strings.Contains(got, "Auto-Submitted") {
			t.Fatalf("fetched MIME:\n%s", got)
		}
	}
	// The sender's copy is in Sent Items, found by its well-known name.
	sent, err := out.FolderID(ctx, "sentitems")
	if err != nil {
		t.Fatal(err)
	}
	if items, _ := fetchAll(t, out, sent, "", 0); len(items) != 5 {
		t.Fatalf("sent items: %d", len(items))
	}
	// Whether a reply went out, by its Message-ID.
	if ids, err := out.FindMessage(ctx, "sentitems", "<reply-3@postdesk.test>"); err != nil || len(ids) != 1 {
		t.Fatalf("find sent: %v %v", ids, err)
	}
	if ids, err := out.FindMessage(ctx, "sentitems", "<never@postdesk.test>"); err != nil || len(ids) != 0 {
		t.Fatalf("find unsent: %v %v", ids, err)
	}
	if ids, err := in.FindMessage(ctx, "", "<reply-0@postdesk.test>"); err != nil || len(ids) != 1 || ids[0] != items[0].ID {
		t.Fatalf("find in the whole mailbox: %v %v", ids, err)
	}
	// A quiet round, then a removal and a new message.
	if items, c2 := fetchAll(t, in, inbox, cursor, 2); len(items) != 0 {
		t.Fatalf("quiet round: %+v", items)
	} else {
		cursor = c2
	}
	w.g.Remove(customer, items[0].ID)
	w.g.Deliver(customer, "inbox", mime("x@example.org", customer, "new", "<new@example.org>"))
	items, _ = fetchAll(t, in, inbox, cursor, 2)
	if len(items) != 2 || !items[0].Removed || items[1].InternetMessageID != "<new@example.org>" {
		t.Fatalf("change round: %+v", items)
	}
	// A display name, with a child.
	sup, _ := w.g.AddFolder(customer, "", "Support")
	esc, _ := w.g.AddFolder(customer, sup, "Escalations")
	if id, err := in.FolderID(ctx, "Support/Escalations"); err != nil || id != esc {
		t.Fatalf("nested folder: %q %v", id, err)
	}
	if _, err := in.FolderID(ctx, "Nope"); graphErr(t, err).Kind != msgraph.KindNotFound {
		t.Fatalf("missing folder: %v", err)
	}
}

func TestBackOffHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, sl := w.client(t, customer)
	ctx := context.Background()
	w.g.Throttle(customer, fakegraph.OpFolders, 2, "3")
	if _, err := c.FolderID(ctx, "inbox"); err != nil {
		t.Fatalf("after two throttles with Retry-After: %v", err)
	}
	got := sl.all()
	if len(got) != 2 || got[0] < 3*time.Second || got[0] > 3300*time.Millisecond || got[1] < 3*time.Second {
		t.Fatalf("waits %v, want two of 3 s (+ up to 10%% jitter)", got)
	}

	// Without Retry-After: exponential from 1 s, jittered to [d/2, d).
	c, _, sl = w.client(t, customer)
	w.g.Throttle(customer, fakegraph.OpDelta, 3, "")
	w.g.Unavailable(customer, fakegraph.OpDelta, 1)
	if _, err := c.Delta(ctx, "inbox", "", 10); err != nil {
		t.Fatalf("after 429s and a 503: %v", err)
	}
	want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second}
	if got := sl.all(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", got, want)
	}

	// An HTTP date works as well.
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	c, _, sl = w.client(t, customer)
	c.Now = func() time.Time { return now }
	w.g.Fail(fakegraph.Fault{User: customer, Status: 429, Code: "ApplicationThrottled", RetryAfter: now.Add(20 * time.Second).Format(http.TimeFormat)})
	if _, err := c.FolderID(ctx, "inbox"); err != nil || len(sl.all()) != 1 || sl.all()[0] < 20*time.Second {
		t.Fatalf("HTTP-date Retry-After: %v, waits %v", err, sl.all())
	}

	// A storm longer than the bound: KindThrottled with the server's
	// Retry-After, after MaxAttempts tries.
	c, _, sl = w.client(t, customer)
	before := w.g.Requests()
	w.g.Throttle(customer, fakegraph.OpAny, 50, "2")
	_, err := c.FolderID(ctx, "inbox")
	e := graphErr(t, err)
	if e.Kind != msgraph.KindThrottled || e.RetryAfter != 2*time.Second || e.Code != "ApplicationThrottled" ||
		w.g.Requests()-before != msgraph.DefaultMaxAttempts || len(sl.all()) != msgraph.DefaultMaxAttempts-1 {
		t.Fatalf("storm: %+v after %d requests, waits %v", e, w.g.Requests()-before, sl.all())
	}
	// A Retry-After beyond MaxWait is not waited for.
	w.g.ClearFaults()
	c, _, sl = w.client(t, customer)
	w.g.Fail(fakegraph.Fault{User: customer, Status: 429, Times: 50, RetryAfter: "600"})
	if _, err := c.FolderID(ctx, "inbox"); graphErr(t, err).RetryAfter != 10*time.Minute || len(sl.all()) != 0 {
		t.Fatalf("long Retry-After: %v, waits %v", err, sl.all())
	}
	// 503 for good: KindUnavailable.
	w.g.ClearFaults()
	c, _, _ = w.client(t, customer)
	w.g.Unavailable(customer, fakegraph.OpAny, 50)
	if _, err := c.FolderID(ctx, "inbox"); graphErr(t, err).Kind != msgraph.KindUnavailable {
		t.Fatalf("503s: %v", err)
	}
}

func TestNeverMoreThanFourInFlight(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		maxInFlight int
		wantOK      bool
	}{{0, true}, {8, false}} { // 8: the control, proving the stand-in counts
		t.Run(fmt.Sprint(c.maxInFlight), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			cl, _, _ := w.client(t, customer)
			cl.MaxInFlight = c.maxInFlight
			var ids []string
			for i := range 20 {
				ids = append(ids, w.g.Deliver(customer, "inbox", mime("x@example.org", customer, "s", fmt.Sprintf("<%d@x>", i))))
			}
			w.g.SetLatency(150 * time.Millisecond)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := range 20 {
				wg.Go(func() {
					var err error
					switch i % 3 {
					case 0:
						_, err = cl.Delta(ctx, "inbox", "", 5)
					case 1:
						_, err = cl.FolderID(ctx, "inbox")
					default:
						var rc io.ReadCloser
						if rc, err = cl.MIME(ctx, ids[i]); err == nil {
							_, err = io.Copy(io.Discard, rc)
							rc.Close()
						}
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil && c.wantOK { // the control's excess is refused
					t.Errorf("call: %v", err)
				}
			}
			peak := w.g.MaxInFlightSeen(customer)
			t.Logf("MaxInFlight %d: the stand-in saw at most %d requests in flight", c.maxInFlight, peak)
			if c.wantOK && peak > 4 || !c.wantOK && peak <= 4 {
				t.Fatalf("peak %d in flight", peak)
			}
		})
	}
}

func TestOpenMIMEStreamHoldsItsSlot(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, _ := w.client(t, customer)
	ctx := context.Background()
	var open []io.ReadCloser
	for i := range 4 {
		rc, err := c.MIME(ctx, w.g.Deliver(customer, "inbox", mime("x@example.org", customer, "s", fmt.Sprintf("<%d@x>", i))))
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, rc)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.FolderID(short, "inbox"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a fifth request while four streams are open: %v, want to wait", err)
	}
	open[0].Close()
	open[0].Close() // twice is harmless
	if _, err := c.FolderID(ctx, "inbox"); err != nil {
		t.Fatalf("after one stream closed: %v", err)
	}
	for _, rc := range open[1:] {
		rc.Close()
	}
}

func TestUnauthorizedRefreshesOnceThenKindAuth(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, tk, _ := w.client(t, customer)
	ctx := context.Background()
	w.g.RejectToken(customer, fakegraph.OpAny, 1)
	if _, err := c.FolderID(ctx, "inbox"); err != nil || tk.fresh != 1 {
		t.Fatalf("one 401: %v, %d refreshes", err, tk.fresh)
	}
	w.g.RejectToken(customer, fakegraph.OpAny, 2)
	_, err := c.FolderID(ctx, "inbox")
	if e := graphErr(t, err); e.Kind != msgraph.KindAuth || e.Code != "InvalidAuthenticationToken" || tk.fresh != 2 {
		t.Fatalf("two 401s: %+v, %d refreshes (want 2 in all)", e, tk.fresh)
	}
	// A real expiry: the IdP revokes the sign-in; the refreshed token
	// (issued after) works.
	w.idp.Revoke(customer)
	if _, err := c.FolderID(ctx, "inbox"); err != nil || tk.fresh != 3 {
		t.Fatalf("after revocation: %v, %d refreshes", err, tk.fresh)
	}
	// The token's own error is the caller's, not a Graph error.
	sentinel := errors.New("needs sign-in")
	c.Token = func(context.Context, bool) (string, error) { return "", sentinel }
	_, err = c.FolderID(ctx, "inbox")
	if !errors.Is(err, sentinel) {
		t.Fatalf("token error: %v", err)
	}
	var e *msgraph.Error
	if errors.As(err, &e) {
		t.Fatal("a token error must not look like Graph's answer")
	}
}

func TestForbiddenExplainsAccessPolicy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, _ := w.client(t, customer)
	ctx := context.Background()
	w.g.BlockByPolicy(customer, true)
	e := graphErr(t, c.SendMIME(ctx, mime(customer, agent, "x", "<x@y>")))
	if e.Kind != msgraph.KindForbidden || !e.AccessPolicy || !strings.Contains(e.Explain(), "application access policy") {
		t.Fatalf("policy: %+v: %s", e, e.Explain())
	}
	w.g.BlockByPolicy(customer, false)
	readOnly, _, _ := w.client(t, customer, "https://graph.microsoft.com/Mail.ReadWrite")
	e = graphErr(t, readOnly.SendMIME(ctx, mime(customer, agent, "x", "<x@y>")))
	if e.Kind != msgraph.KindForbidden || e.AccessPolicy || !strings.Contains(e.Explain(), "Mail.Send") {
		t.Fatalf("missing scope: %+v", e)
	}
}

func TestSyncResetAndBoundedResync(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, _ := w.client(t, customer)
	ctx := context.Background()
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 6 {
		w.g.DeliverAt(customer, "inbox", mime("x@example.org", customer, "s", fmt.Sprintf("<%d@x>", i)), day.AddDate(0, 0, i))
	}
	_, cursor := fetchAll(t, c, "inbox", "", 4)
	w.g.ResetDelta(customer)
	_, err := c.Delta(ctx, "inbox", cursor, 4)
	if e := graphErr(t, err); e.Kind != msgraph.KindSyncReset || e.Status != http.StatusGone {
		t.Fatalf("after reset: %+v", e)
	}
	p, err := c.DeltaSince(ctx, "inbox", day.AddDate(0, 0, 4), 10)
	if err != nil || len(p.Items) != 2 || p.DeltaLink == "" || p.Items[0].InternetMessageID != "<4@x>" {
		t.Fatalf("bounded resync: %+v %v", p, err)
	}
	// A tampered cursor is refused, and asks for a resync too.
	tampered := strings.Replace(p.DeltaLink, "deltatoken=", "deltatoken=x", 1)
	if _, err := c.Delta(ctx, "inbox", tampered, 4); graphErr(t, err).Kind != msgraph.KindSyncReset {
		t.Fatalf("tampered: %v", err)
	}
	// A link to another host is never followed with our token.
	before := w.g.Requests()
	if _, err := c.Delta(ctx, "inbox", "https://evil.example/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=x", 4); !errors.Is(err, msgraph.ErrForeignLink) || w.g.Requests() != before {
		t.Fatalf("foreign link: %v", err)
	}
}

func TestReplaysAreVisibleToTheCaller(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, _ := w.client(t, customer)
	for i := range 6 {
		w.g.Deliver(customer, "inbox", mime("x@example.org", customer, "s", fmt.Sprintf("<%d@x>", i)))
	}
	w.g.Replay(customer, 1)
	items, _ := fetchAll(t, c, "inbox", "", 2)
	seen := map[string]int{}
	for _, it := range items {
		seen[it.InternetMessageID]++
	}
	if len(items) != 8 || len(seen) != 6 {
		t.Fatalf("replayed round: %d items, %d distinct", len(items), len(seen))
	}
}

func TestSendIsNotRetriedWhenItMayHaveTakenEffect(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, sl := w.client(t, customer)
	ctx := context.Background()
	w.g.Fail(fakegraph.Fault{User: customer, Op: fakegraph.OpSend, Status: 500, Code: "InternalServerError"})
	before := w.g.Requests()
	e := graphErr(t, c.SendMIME(ctx, mime(customer, agent, "x", "<x@y>")))
	if e.Kind != msgraph.KindTemporary || w.g.Requests()-before != 1 || len(sl.all()) != 0 {
		t.Fatalf("500 on send: %+v, %d requests", e, w.g.Requests()-before)
	}
	w.g.Fail(fakegraph.Fault{User: customer, Op: fakegraph.OpSend, Status: 504, Code: "GatewayTimeout"})
	if e := graphErr(t, c.SendMIME(ctx, mime(customer, agent, "x", "<x@y>"))); e.Kind != msgraph.KindTemporary || len(sl.all()) != 0 {
		t.Fatalf("504 on send: %+v", e)
	}
	// 429 and 503 say the request was not processed: retried.
	w.g.Throttle(customer, fakegraph.OpSend, 1, "1")
	w.g.Unavailable(customer, fakegraph.OpSend, 1)
	if err := c.SendMIME(ctx, mime(customer, agent, "y", "<y@y>")); err != nil || len(w.g.Sent(customer)) != 1 {
		t.Fatalf("send after 429 and 503: %v, sent %d", err, len(w.g.Sent(customer)))
	}
	w.g.Fail(fakegraph.Fault{User: customer, Op: fakegraph.OpSend, Status: 400, Code: "ErrorMimeContentInvalidBase64String"})
	if e := graphErr(t, c.SendMIME(ctx, mime(customer, agent, "z", "<z@y>"))); e.Kind != msgraph.KindInvalidMIME {
		t.Fatalf("invalid MIME: %+v", e)
	}
}
