package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
	"github.com/postdesk/postdesk/internal/webhook"
)

// hookEnv is the web server with webhooks delivered for real: the job
// engine, the event dispatcher and the webhook consumer, as serve wires
// them, with retries a few hundred milliseconds apart.
type hookEnv struct {
	*env
	agent    store.User
	in       *ingest.Ingester
	requests requestLog
}

func newHookEnv(t *testing.T) *hookEnv {
	t.Helper()
	bg := context.Background()
	db := storetest.Open(t, "sqlite")
	e := &hookEnv{env: &env{t: t, db: db, logs: &logtest.Buffer{}}, in: ingest.New(db, ingest.Options{})}
	var err error
	if e.user, _, err = auth.CreateUser(bg, db, adminEmail, "Ada Admin", store.RoleAdmin, testPassword); err != nil {
		t.Fatal(err)
	}
	if e.agent, _, err = auth.CreateUser(bg, db, "agent@example.com", "Agent", store.RoleAgent, testPassword); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(bg, func(tx *store.Tx) error {
		e.mailbox, err = tx.CreateMailbox(bg, "support@example.com", "Support")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.Migrate(bg, db, nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hooks, err := jobs.NewWebhooks(jobs.WebhookOptions{DB: db, Vault: vault, AllowPrivate: true, Logger: log,
		Backoff: []time.Duration{300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(db, jobs.Options{Logger: log, PollInterval: 100 * time.Millisecond, Register: hooks.Register})
	if err != nil {
		t.Fatal(err)
	}
	hooks.SetRunner(runner)
	events, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: db, Logger: log, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events.Register(hooks)
	db.OnEventsCommitted(events.Wake)
	if err := runner.Start(bg); err != nil {
		t.Fatal(err)
	}
	events.Start()
	t.Cleanup(func() {
		events.Stop(bg)
		runner.Stop(bg)
	})
	if e.h, err = New(Options{DB: db, Auth: auth.New(db, 0), Desk: desk.New(db), Version: "test", Logger: log,
		Webhooks: desk.NewWebhookAdmin(db, vault, true, hooks.EnqueueTest), ListPoll: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.requests.wrap(e.h))
	t.Cleanup(e.srv.Close)
	return e
}

// polls counts the list's requests for changes so far.
func (e *hookEnv) polls() int {
	n := 0
	for _, p := range e.requests.all() {
		if strings.HasPrefix(p, "GET /tickets/changes?") {
			n++
		}
	}
	return n
}

// ingestMail stores a customer's email as mail sync would.
func (e *hookEnv) ingestMail(t *testing.T, from, subject, id string) ingest.Result {
	t.Helper()
	raw := fmt.Sprintf("From: %s\r\nTo: support@example.com\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\n\r\nHello.\r\n",
		from, subject, id, time.Now().UTC().Format(time.RFC1123Z))
	res, err := e.in.Ingest(context.Background(), e.mailbox, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// flakyReceiver answers 503 to its first n requests, then 204, and checks
// each signature with secret (set once known).
type flakyReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	failures int
	secret   []byte
	got      []string // "<status> <event> <signature ok>"
}

func newFlakyReceiver(t *testing.T, failures int) *flakyReceiver {
	r := &flakyReceiver{failures: failures}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		sig := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute) == nil
		status := http.StatusNoContent
		if r.failures > 0 {
			r.failures--
			status = http.StatusServiceUnavailable
			w.WriteHeader(status)
			io.WriteString(w, "maintenance window, back soon")
		} else {
			w.WriteHeader(status)
		}
		r.got = append(r.got, fmt.Sprintf("%d %s %v", status, req.Header.Get(webhook.HeaderEvent), sig))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *flakyReceiver) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// Over HTTP: agents are refused; a refused URL is shown beside its field;
// the secret is shown once; the list refresh's endpoint answers changes.
func TestWebhookPages(t *testing.T) {
	e := newHookEnv(t)
	agent := e.client()
	if res := e.postLogin(agent, "agent@example.com", testPassword, ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("agent sign-in: %d", res.StatusCode)
	}
	if res, _ := e.get(agent, "/admin/webhooks"); res.StatusCode != http.StatusForbidden {
		t.Errorf("agent on Admin -> Webhooks: %d", res.StatusCode)
	}
	c := e.signedIn()
	csrf := e.csrf(c)
	res := e.post(c, "/admin/webhooks", url.Values{"csrf": {csrf}, "url": {"gopher://example.com/"}, "events": {store.EventTicketCreated}})
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), `id="wh-url-error">Webhooks are sent over https or http only, not gopher.</p>`) ||
		!strings.Contains(string(body), `value="gopher://example.com/"`) {
		t.Fatalf("refused URL: %d\n%s", res.StatusCode, body)
	}
	res = e.post(c, "/admin/webhooks", url.Values{"csrf": {csrf}, "url": {"https://hooks.example.com/x"}, "events": {store.EventTicketCreated}, "enabled": {"on"}})
	body, _ = io.ReadAll(res.Body)
	secret := between(string(body), `id="secret-value" class="secret-value" type="text" readonly value="`, `"`)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(secret, "whsec_") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("added: %d %q\n%s", res.StatusCode, secret, body)
	}
	_, list := e.get(c, "/admin/webhooks")
	if strings.Contains(list, secret) || !strings.Contains(list, "https://hooks.example.com/x") || !strings.Contains(list, "Nothing sent yet.") {
		t.Fatalf("the list shows the secret again, or not the webhook:\n%s", list)
	}

	// /tickets/changes: nothing since the newest event, then a new ticket.
	var a struct {
		Changed bool  `json:"changed"`
		Last    int64 `json:"last"`
	}
	last, _ := e.db.LastEventID(context.Background())
	_, js := e.get(c, fmt.Sprintf("/tickets/changes?since=%d", last))
	if err := json.Unmarshal([]byte(js), &a); err != nil || a.Changed || a.Last != last {
		t.Fatalf("no change: %s %v", js, err)
	}
	e.ingestMail(t, "dana@customer.example", "Dashboard blank", "d1@customer.example")
	_, js = e.get(c, fmt.Sprintf("/tickets/changes?since=%d", last))
	if err := json.Unmarshal([]byte(js), &a); err != nil || !a.Changed || a.Last <= last {
		t.Fatalf("a change: %s %v", js, err)
	}
	if res, _ := e.get(c, "/tickets/changes?since=x"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad since: %d", res.StatusCode)
	}
	if res, _ := e.get(e.client(), "/tickets/changes?since=0"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("signed out: %d", res.StatusCode)
	}
	_, page := e.get(c, "/tickets")
	if !strings.Contains(page, `id="list-live"`) || !strings.Contains(page, fmt.Sprintf(`data-since="%d"`, a.Last)) {
		t.Errorf("the list does not carry its refresh point:\n%s", page)
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

// TestBrowserWebhooks, in a real Chromium: an admin adds a webhook on
// Admin -> Webhooks and copies its secret; a new ticket's delivery meets
// an endpoint in maintenance (503), is retried until it gives up, and the
// list and the webhook's log show the attempts and the endpoint's answer;
// "Send test event" reaches the endpoint once it is back, signed. Then the
// ticket list notices a new ticket by itself and redraws in place.
func TestBrowserWebhooks(t *testing.T) {
	e := newHookEnv(t)
	r := newFlakyReceiver(t, 4)
	ctx := browsertest.New(t)
	(&oauthEnv{env: e.env}).browserSignIn(t, ctx)

	visit(t, ctx, e.srv.URL+"/admin/webhooks")
	if got := text(t, ctx, ".empty-state h2"); got != "No webhooks yet" {
		t.Fatalf("empty state: %q", got)
	}
	browsertest.Screenshot(t, ctx, "webhooks-empty")
	browsertest.Axe(t, ctx, "Admin -> Webhooks, empty")

	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#wh-url"), r.URL+"/hooks/postdesk"),
		chromedp.SendKeys(chromedp.CSS("#wh-description"), "Ops chat"),
		chromedp.Click(chromedp.CSS(`input[name="events"][value="ticket.created"]`)))
	if status := click(t, ctx, `.webhook-form button[type="submit"]`); status != http.StatusOK {
		t.Fatalf("add: status %d", status)
	}
	secret := eval[string](t, ctx, `document.getElementById('secret-value').value`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown: %q", secret)
	}
	r.mu.Lock()
	r.secret = []byte(secret)
	r.mu.Unlock()
	browsertest.Screenshot(t, ctx, "webhooks-secret-once")
	browsertest.Axe(t, ctx, "Admin -> Webhooks, a new secret")
	hooks, err := e.db.Webhooks(context.Background())
	if err != nil || len(hooks) != 1 || hooks[0].Description != "Ops chat" || strings.Join(hooks[0].Events, ",") != "ticket.created" || !hooks[0].Enabled {
		t.Fatalf("saved: %+v %v", hooks, err)
	}
	id := hooks[0].ID

	// A new ticket: four attempts, all refused by the endpoint in maintenance.
	e.ingestMail(t, "Dana <dana@customer.example>", "The dashboard is blank", "d1@customer.example")
	waitFor(t, "the delivery to give up", func() bool {
		ds, _ := e.db.WebhookDeliveries(context.Background(), id, 5)
		return len(ds) == 1 && ds[0].State == store.WebhookFailed
	})
	visit(t, ctx, e.srv.URL+"/admin/webhooks")
	if got := text(t, ctx, fmt.Sprintf("#webhook-%d .webhook-last", id)); !strings.Contains(got, "Failed") || !strings.Contains(got, "HTTP 503") {
		t.Errorf("last delivery on the list: %q", got)
	}
	wantErr := "gave up after 4 attempts; the last: the endpoint answered HTTP 503: maintenance window, back soon"
	if got := text(t, ctx, fmt.Sprintf("#webhook-%d .delivery-error", id)); got != wantErr {
		t.Errorf("error on the list: %q", got)
	}
	browsertest.Screenshot(t, ctx, "webhooks-failing")
	browsertest.ScreenshotAt(t, ctx, "webhooks-failing-320", 320, 800)
	browsertest.Axe(t, ctx, "Admin -> Webhooks, a failing endpoint")
	browsertest.AxeAt(t, ctx, "Admin -> Webhooks at 320 px", 320, 800)

	click(t, ctx, fmt.Sprintf(`#webhook-%d a[href="/admin/webhooks/%d"]`, id, id))
	row := strings.ToLower(text(t, ctx, ".delivery-row")) // the facts' labels are upper case on screen
	for _, want := range []string{"failed", "new ticket", "attempts 4", "last answer http 503", strings.ToLower(wantErr)} {
		if !strings.Contains(row, want) {
			t.Errorf("the log's row lacks %q: %q", want, row)
		}
	}
	if fits := eval[bool](t, ctx, `document.documentElement.scrollWidth <= window.innerWidth`); !fits {
		t.Error("the webhook page scrolls sideways")
	}
	browsertest.Screenshot(t, ctx, "webhook-log")
	browsertest.ScreenshotAt(t, ctx, "webhook-log-320", 320, 900)
	browsertest.Axe(t, ctx, "a webhook's page")
	browsertest.AxeAt(t, ctx, "a webhook's page at 320 px", 320, 900)

	// The endpoint is back: a test event is delivered, signed.
	click(t, ctx, "#send-test")
	if got := text(t, ctx, "#flash"); !strings.HasPrefix(got, "Test event queued") {
		t.Errorf("flash: %q", got)
	}
	waitFor(t, "the test event", func() bool {
		ds, _ := e.db.WebhookDeliveries(context.Background(), id, 5)
		return len(ds) == 2 && ds[0].State == store.WebhookDelivered
	})
	visit(t, ctx, fmt.Sprintf("%s/admin/webhooks/%d", e.srv.URL, id))
	if got := text(t, ctx, ".delivery-row:first-child .delivery-row-head"); !strings.Contains(got, "Delivered") || !strings.Contains(got, "Test event") {
		t.Errorf("newest row: %q", got)
	}
	browsertest.Screenshot(t, ctx, "webhook-log-delivered")
	want := "503 ticket.created true,503 ticket.created true,503 ticket.created true,503 ticket.created true,204 webhook.test true"
	if got := strings.Join(r.requests(), ","); got != want {
		t.Errorf("the endpoint got %s, want %s", got, want)
	}

	// The ticket list notices a new ticket and redraws in place.
	visit(t, ctx, e.srv.URL+"/tickets")
	if n := eval[int](t, ctx, `window.pdMarker = 1, document.querySelectorAll('.ticket-table tbody tr').length`); n != 1 {
		t.Fatalf("the list shows %d tickets", n)
	}
	e.ingestMail(t, "Eve <eve@customer.example>", "Invoice question", "e1@customer.example")
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#list-refresh")))
	if got := text(t, ctx, "#list-live"); got != "New activity since this list was shown. Refresh" {
		t.Errorf("notice: %q", got)
	}
	browsertest.Screenshot(t, ctx, "tickets-new-activity")
	browsertest.ScreenshotAt(t, ctx, "tickets-new-activity-320", 320, 700)
	browsertest.Axe(t, ctx, "the ticket list with new activity")
	do(t, ctx, chromedp.Click(chromedp.CSS("#list-refresh")))
	waitFor(t, "the list to redraw", func() bool {
		return eval[int](t, ctx, `document.querySelectorAll('.ticket-table tbody tr').length`) == 2
	})
	if same := eval[bool](t, ctx, `window.pdMarker === 1 && document.activeElement.id === 'ticket-results'`); !same {
		t.Error("the list was not redrawn in place with focus on it")
	}
	if got := text(t, ctx, ".ticket-table tbody tr:first-child .col-subject"); !strings.Contains(got, "Invoice question") {
		t.Errorf("first row after refresh: %q", got)
	}
	if got := text(t, ctx, `.tabs a[aria-current="page"] .tab-count`); got != "2" {
		t.Errorf("tab count after refresh: %q", got)
	}
	// The row of whose tickets too (Mine, Unassigned, All): it was left as it was.
	if got := text(t, ctx, `.views a[aria-current="page"] .tab-count`); got != "2" {
		t.Errorf("view count after refresh: %q", got)
	}
	browsertest.Axe(t, ctx, "the ticket list after its refresh")

	// A hidden tab does not poll; coming back polls at once.
	eval[bool](t, ctx, `Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true}),
		document.dispatchEvent(new Event('visibilitychange')), true`)
	time.Sleep(400 * time.Millisecond) // a poll already on its way may land
	before := e.polls()
	time.Sleep(1500 * time.Millisecond) // five polling periods
	if n := e.polls(); n != before {
		t.Errorf("a hidden tab polled %d times", n-before)
	}
	eval[bool](t, ctx, `Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true}),
		document.dispatchEvent(new Event('visibilitychange')), true`)
	waitFor(t, "a poll once visible again", func() bool { return e.polls() > before })
}
