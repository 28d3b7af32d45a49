package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
	"github.com/postdesk/postdesk/internal/webhook"
)

// receiver is a webhook endpoint on loopback that verifies signatures and
// answers with the statuses it is given, in turn (then 200).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []received
	secret   []byte
}

type received struct {
	header  http.Header
	body    []byte
	payload jobs.Payload
	sigErr  error
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		rec := received{header: req.Header.Clone(), body: body}
		rec.sigErr = webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute)
		if err := json.Unmarshal(body, &rec.payload); err != nil {
			rec.sigErr = errors.Join(rec.sigErr, err)
		}
		r.got = append(r.got, rec)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		w.WriteHeader(status)
		io.WriteString(w, "answer from the receiver\n")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type hookEnv struct {
	db    *store.DB
	hooks *jobs.Webhooks
	admin *desk.WebhookAdmin
	in    *ingest.Ingester
	mb    store.Mailbox
	user  store.User
}

// startWebhooks runs the job engine, the dispatcher and the webhook
// consumer on db, as serve wires them, with short back-offs.
func startWebhooks(t *testing.T, db *store.DB, allowPrivate bool, backoff ...time.Duration) *hookEnv {
	t.Helper()
	ctx := context.Background()
	if err := jobs.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(backoff) == 0 {
		backoff = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	}
	hooks, err := jobs.NewWebhooks(jobs.WebhookOptions{DB: db, Vault: vault, AllowPrivate: allowPrivate, Backoff: backoff,
		BaseURL: "https://desk.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(db, jobs.Options{PollInterval: 100 * time.Millisecond, Register: jobs.All(hooks.Register)})
	if err != nil {
		t.Fatal(err)
	}
	hooks.SetRunner(runner)
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: db, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(hooks)
	db.OnEventsCommitted(d.Wake)
	d.Start()
	t.Cleanup(func() {
		d.Stop(context.Background())
		runner.Stop(context.Background())
	})
	e := &hookEnv{db: db, hooks: hooks, in: ingest.New(db, ingest.Options{}),
		admin: desk.NewWebhookAdmin(db, vault, true, hooks.EnqueueTest)}
	err = db.Write(ctx, func(tx *store.Tx) error {
		if e.mb, err = tx.CreateMailbox(ctx, "support@example.com", "Support"); err != nil {
			return err
		}
		e.user, err = tx.CreateUser(ctx, store.User{Email: "admin@example.com", Name: "Admin", Role: "admin"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *hookEnv) addHook(t *testing.T, url string, bodies bool, events ...string) (store.Webhook, []byte) {
	t.Helper()
	h, secret, err := e.admin.Create(context.Background(), desk.WebhookInput{URL: url, Events: events, IncludeBodies: bodies, Enabled: true}, e.user)
	if err != nil {
		t.Fatal(err)
	}
	return h, []byte(secret)
}

func (e *hookEnv) ingest(t *testing.T, raw string) ingest.Result {
	t.Helper()
	res, err := e.in.Ingest(context.Background(), e.mb, strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitDelivery waits until a delivery of h leaves the pending state.
func (e *hookEnv) waitDelivery(t *testing.T, hookID int64, n int) []store.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := e.db.WebhookDeliveries(context.Background(), hookID, 100)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range ds {
			if d.State != store.WebhookPending {
				done++
			}
		}
		if done >= n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of webhook %d: %+v", hookID, ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const firstMail = `From: Dana Customer <dana@customer.example>
To: support@example.com
Subject: The dashboard is blank
Message-ID: <first@customer.example>
Date: Wed, 2 Dec 2026 09:00:00 +0000

The dashboard shows nothing since this morning.
`

const replyMail = `From: Dana Customer <dana@customer.example>
To: support@example.com
Subject: Re: [#1] The dashboard is blank
Message-ID: <second@customer.example>
In-Reply-To: <first@customer.example>
Date: Wed, 2 Dec 2026 10:00:00 +0000

Still blank after a restart. Secret-ish detail: order 4711.
`

// A customer's answer reaches a webhook subscribed to
// ticket.customer_replied once, signed with its secret, with ids and
// states but no body; a webhook that includes bodies gets the text.
func TestWebhookCustomerReplySigned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startWebhooks(t, db, true)
		replies := newReceiver(t)
		created := newReceiver(t)
		hr, secret := e.addHook(t, replies.URL+"/hook?token=abc", false, store.EventTicketCustomerReplied)
		replies.secret = secret
		hc, secret2 := e.addHook(t, created.URL, true, store.EventTicketCreated)
		created.secret = secret2

		first := e.ingest(t, firstMail)
		reply := e.ingest(t, replyMail)
		if reply.Outcome != ingest.Joined {
			t.Fatalf("reply: %v", reply)
		}
		dr := e.waitDelivery(t, hr.ID, 1)
		dc := e.waitDelivery(t, hc.ID, 1)
		if len(dr) != 1 || dr[0].State != store.WebhookDelivered || dr[0].Attempts != 1 || dr[0].LastStatus != 200 || dr[0].LastError != "" {
			t.Fatalf("reply deliveries: %+v", dr)
		}
		got := replies.requests()
		if len(got) != 1 {
			t.Fatalf("the receiver got %d requests", len(got))
		}
		r := got[0]
		if r.sigErr != nil {
			t.Fatalf("signature: %v", r.sigErr)
		}
		if r.header.Get(webhook.HeaderEvent) != store.EventTicketCustomerReplied || r.header.Get(webhook.HeaderDelivery) == "" ||
			r.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers: %v", r.header)
		}
		p := r.payload
		ticket, _ := p.Data["ticket"].(map[string]any)
		msg, _ := p.Data["message"].(map[string]any)
		if p.Type != store.EventTicketCustomerReplied || p.ID == 0 || ticket["id"] != float64(reply.TicketID) || ticket["status"] != "open" ||
			ticket["subject"] != "The dashboard is blank" || ticket["url"] != "https://desk.example.com/tickets/1" ||
			msg["id"] != float64(reply.MessageID) || p.Data["bulk"] != false {
			t.Errorf("payload: %s", r.body)
		}
		if _, ok := msg["text"]; ok || strings.Contains(string(r.body), "4711") {
			t.Errorf("a body was sent to a webhook without bodies: %s", r.body)
		}
		// Another secret does not verify it.
		if err := webhook.Verify(secret2, r.header.Get(webhook.HeaderSignature), r.body, time.Now(), 0); !errors.Is(err, webhook.ErrSignatureMismatch) {
			t.Errorf("verified with another webhook's secret: %v", err)
		}
		if len(dc) != 1 || dc[0].State != store.WebhookDelivered {
			t.Fatalf("created deliveries: %+v", dc)
		}
		c := created.requests()[0]
		if m, _ := c.payload.Data["message"].(map[string]any); c.sigErr != nil || c.payload.Type != store.EventTicketCreated ||
			m["id"] != float64(first.MessageID) || !strings.Contains(m["text"].(string), "dashboard shows nothing") {
			t.Errorf("with bodies: %v %s", c.sigErr, c.body)
		}
	})
}

// An endpoint that fails is retried with back-off until it answers; a 4xx
// fails at once; an endpoint failing every time is given up after the last
// attempt; each attempt's status and error are in the delivery log.
func TestWebhookRetries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startWebhooks(t, db, true)
		flaky := newReceiver(t, 503, 500)
		gone := newReceiver(t, 410)
		down := newReceiver(t, 502, 502, 502, 502)
		var hooks []store.Webhook
		for _, r := range []*receiver{flaky, gone, down} {
			h, s := e.addHook(t, r.URL, false, store.EventTicketCreated)
			r.secret = s
			hooks = append(hooks, h)
		}
		e.ingest(t, firstMail)

		d := e.waitDelivery(t, hooks[0].ID, 1)[0]
		if d.State != store.WebhookDelivered || d.Attempts != 3 || d.LastStatus != 200 || len(flaky.requests()) != 3 {
			t.Errorf("flaky endpoint: %+v, %d requests", d, len(flaky.requests()))
		}
		reqs := flaky.requests()
		if reqs[0].header.Get(webhook.HeaderDelivery) != reqs[2].header.Get(webhook.HeaderDelivery) || string(reqs[0].body) != string(reqs[2].body) {
			t.Error("a retry is not the same delivery with the same body")
		}
		d = e.waitDelivery(t, hooks[1].ID, 1)[0]
		if d.State != store.WebhookFailed || d.Attempts != 1 || d.LastStatus != 410 ||
			d.LastError != "the endpoint answered HTTP 410: answer from the receiver" {
			t.Errorf("gone endpoint: %+v", d)
		}
		d = e.waitDelivery(t, hooks[2].ID, 1)[0]
		if d.State != store.WebhookFailed || d.Attempts != 3 || d.LastStatus != 502 || !strings.HasPrefix(d.LastError, "gave up after 3 attempts") {
			t.Errorf("down endpoint: %+v", d)
		}
		time.Sleep(500 * time.Millisecond)
		if n := len(gone.requests()); n != 1 {
			t.Errorf("a 410 was retried: %d requests", n)
		}
		if n := len(down.requests()); n != 3 {
			t.Errorf("the down endpoint got %d requests, want 3", n)
		}
		// Each job has one attempt more than its delivery, unused above:
		// a process that dies during the last attempt leaves River a rescue
		// that records the delivery failed, not a discarded job and a
		// delivery pending for ever.
		var spare int
		if err := db.SQL().QueryRow(`SELECT MIN(max_attempts) FROM river_job WHERE kind = 'deliver_webhook'`).Scan(&spare); err != nil || spare != 4 {
			t.Errorf("the delivery jobs' max attempts = %d, %v; want 4 (3 and a spare)", spare, err)
		}
		list, err := db.Webhooks(context.Background())
		if err != nil || len(list) != 3 || list[2].Last.State != store.WebhookFailed || list[2].Last.LastStatus != 502 {
			t.Errorf("webhooks with their last delivery: %+v %v", list, err)
		}
	})
}

// A private target is refused when saved, and, when the name only resolves
// to one, when delivering: the receiver is never reached.
func TestWebhookRefusesPrivateTargets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startWebhooks(t, db, false)
		ctx := context.Background()
		r := newReceiver(t)
		strict := desk.NewWebhookAdmin(db, nil, false, nil)
		_, _, err := strict.Create(ctx, desk.WebhookInput{URL: r.URL, Events: []string{store.EventTicketCreated}, Enabled: true}, e.user)
		var v *desk.ValidationError
		if !errors.As(err, &v) || v.Field != "url" {
			t.Fatalf("a loopback URL was accepted: %v", err)
		}
		// A name that resolves to loopback passes the save-time check of a
		// lenient admin, and is refused by the dialer.
		host := strings.Replace(r.URL, "127.0.0.1", "localhost", 1)
		h, _ := e.addHook(t, host, false, store.EventTicketCreated)
		e.ingest(t, firstMail)
		d := e.waitDelivery(t, h.ID, 1)[0]
		if d.State != store.WebhookFailed || d.Attempts != 1 || !strings.Contains(d.LastError, "private or internal address") {
			t.Errorf("delivery to a private target: %+v", d)
		}
		if n := len(r.requests()); n != 0 {
			t.Errorf("the private receiver was reached %d times", n)
		}
	})
}
