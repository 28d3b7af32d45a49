package main

import (
	"context"
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// The crash done-when of issue 14: `postdesk serve` fetching a Microsoft
// mailbox through Graph's delta query is killed with SIGKILL 5 times
// during a 2,000-message sync; at the end exactly 2,000 are stored, each a
// ticket, none twice. The stand-in sign-in and Graph run in the test (as
// `postdesk fakeidp` serves them); the mailbox is added with the CLI and
// signed in through the oauth service on the same database and key.
func TestServeGraphSurvivesSIGKILL(t *testing.T) {
	const (
		address  = "support@example.com"
		clientID = "postdesk-graph-crash"
		secret   = "graph~crash~secret"
		baseURL  = "http://127.0.0.1:9"
		total    = 2000
		kills    = 5
	)
	idp := fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: address, Name: "Support"}}})
	idp.AddApp(fakeidp.App{ClientID: clientID, Name: "Postdesk", ClientSecret: secret, RedirectURIs: []string{baseURL + "/oauth/callback"}})
	g := fakegraph.New(fakegraph.Options{Tokens: fakegraph.FromIdP(idp), Mailboxes: []string{address}})
	idp.Mount("/graph/", http.StripPrefix("/graph", g), "graph", "/graph/v1.0")
	idpSrv := httptest.NewServer(idp)
	t.Cleanup(idpSrv.Close)

	bin := buildPostdesk(t)
	data := t.TempDir()
	key := store.GenerateKey()
	p := newProcEnv(t, bin, "POSTDESK_DATA="+data, "POSTDESK_SYNC_OWNER=graph-crash", "POSTDESK_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		"POSTDESK_MICROSOFT_CLIENT_ID="+clientID, "POSTDESK_MICROSOFT_CLIENT_SECRET="+secret, "POSTDESK_MICROSOFT_AUTHORITY="+idpSrv.URL,
		"POSTDESK_BASE_URL="+baseURL, "POSTDESK_GRAPH_POLL=1s")
	out := p.run("", "mailbox", "add", "--address", address, "--auth", "microsoft", "--fetch-transport", "graph")
	if !strings.Contains(out, "added mailbox "+address) {
		t.Fatalf("mailbox add: %s", out)
	}
	db := openStore(t, store.Config{DataDir: data})
	signInGraph(t, db, key, idp, idpSrv.URL, clientID, secret, baseURL, address)

	rng := rand.New(rand.NewPCG(5, 6))
	for i := range total {
		g.Deliver(address, "inbox", customerMail(address, i, rng))
	}
	diag := func() string { return p.logTail("serve", 40) }
	srv := p.serve("serve")
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill points seed %d", seed)
	kr := rand.New(rand.NewPCG(seed, 7))
	var atKill []int
	for len(atKill) < kills {
		// Kill at a random point around the next fifth of the sync.
		target := (len(atKill)+1)*total/(kills+1) - kr.IntN(150)
		deadline := time.Now().Add(60 * time.Second)
		for n, _, _ := storedCounts(t, db); n < target && time.Now().Before(deadline) && !srv.exited(); n, _, _ = storedCounts(t, db) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(kr.IntN(40)) * time.Millisecond)
		if srv.exited() {
			t.Fatalf("serve exited by itself:\n%s", diag())
		}
		srv.kill()
		n, _, _ := storedCounts(t, db)
		atKill = append(atKill, n)
		srv = p.serve("serve")
	}
	t.Logf("killed serve %d times; messages stored at each kill: %v", kills, atKill)
	if atKill[len(atKill)-1] >= total {
		t.Logf("note: the last kill came after all %d messages were stored", total)
	}
	took := waitStored(t, db, total, 3*time.Minute, diag)
	t.Logf("caught up on %d messages in %s after the last restart", total-atKill[len(atKill)-1], took.Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // a late duplicate shows itself: a poll or two more
	messages, distinct, tickets := storedCounts(t, db)
	if messages != total || distinct != total || tickets != total {
		t.Fatalf("stored %d messages (%d distinct Message-IDs) and %d tickets, want %d of each", messages, distinct, tickets, total)
	}
	if n := g.MaxInFlightSeen(address); n > 4 {
		t.Errorf("%d Graph requests in flight for the mailbox", n)
	}
	if a, err := db.MailboxAuth(context.Background(), 1); err != nil || a.State != store.AuthOK {
		t.Errorf("sign-in after the kills: %s %v", a.State, err)
	}
	if srv.exited() {
		t.Fatalf("serve exited by itself:\n%s", diag())
	}
}

// signInGraph completes the mailbox's sign-in against the stand-in with
// the oauth service on the processes' database and key.
func signInGraph(t *testing.T, db *store.DB, key []byte, idp *fakeidp.IdP, authority, clientID, secret, baseURL, address string) {
	t.Helper()
	ctx := context.Background()
	vault, err := store.NewVault(key)
	if err != nil {
		t.Fatal(err)
	}
	pr := oauth.Microsoft("organizations", authority)
	pr.ClientID, pr.ClientSecret = clientID, secret
	svc, err := oauth.New(oauth.Config{DB: db, Vault: vault, Providers: []oauth.Provider{pr}, RedirectURL: baseURL + "/oauth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := db.MailboxByAddress(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	u, err := svc.Begin(ctx, mb.ID, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := idp.SignIn(u, address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Complete(ctx, 1, cb.Query()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
