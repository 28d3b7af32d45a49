package main

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// `postdesk mailbox update` cannot send an OAuth mailbox's token to
// another server: a host the provider does not trust is refused (naming
// the flag), another port of a trusted host forgets the sign-in and says
// so. Through sync cycles and a refresh, the other server never receives a
// bearer token; the trusted one does once the mailbox is connected again.
func TestMailboxUpdateKeepsTokensWithTheirProvider(t *testing.T) {
	legit, attack := mailtest.NewIMAPRecorder(t), mailtest.NewIMAPRecorder(t)
	const addr, clientID, secret = "support@example.com", "cli-hosts-app", "cli-hosts-secret"
	vars := dialectEnv(t, "sqlite")
	redirect := "http://localhost:8080/oauth/callback"
	idp := fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: addr, Name: "Support"}},
		Apps: []fakeidp.App{{ClientID: clientID, Name: "Postdesk", ClientSecret: secret, RedirectURIs: []string{redirect}}}})
	idpSrv := httptest.NewServer(idp)
	t.Cleanup(idpSrv.Close)
	vars["POSTDESK_MICROSOFT_CLIENT_ID"], vars["POSTDESK_MICROSOFT_CLIENT_SECRET"] = clientID, secret
	vars["POSTDESK_MICROSOFT_AUTHORITY"] = idpSrv.URL
	vars["POSTDESK_OAUTH_ALLOWED_HOSTS"] = legit.Host() // the recorder stands in for Microsoft's server

	out, _, err := cli(t, vars, "", "mailbox", "add", "--address", addr, "--auth", "microsoft",
		"--imap-host", legit.Host(), "--imap-port", strconv.Itoa(legit.Port()), "--imap-security", "none")
	if err != nil {
		t.Fatalf("mailbox add: %v\n%s", err, out)
	}
	ctx := context.Background()
	db := openForTest(t, vars)
	key, err := store.LoadKey(vars["POSTDESK_DATA"], "")
	if err != nil {
		t.Fatal(err)
	}
	vault, err := store.NewVault(key)
	if err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", idpSrv.URL)
	p.ClientID, p.ClientSecret, p.MailHosts = clientID, secret, []string{legit.Host()}
	svc, err := oauth.New(oauth.Config{DB: db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: redirect,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := db.MailboxByAddress(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	connect := func() {
		t.Helper()
		u, err := svc.Begin(ctx, mb.ID, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := idp.SignIn(u, addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Complete(ctx, 1, cb.Query()); err != nil {
			t.Fatal(err)
		}
	}
	runSync := func(d time.Duration, until func() bool) {
		t.Helper()
		s, err := mailsync.New(mailsync.Options{DB: db, Ingest: ingest.New(db, ingest.Options{}), OAuth: svc, Owner: "cli-test",
			Round: 50 * time.Millisecond, Tune: func(cfg *imapsync.Config) { cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 100*time.Millisecond }})
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(sctx) }()
		for deadline := time.Now().Add(d); time.Now().Before(deadline) && !until(); {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		wg.Wait()
	}
	never := func() bool { return false }
	connect()
	port := strconv.Itoa(attack.Port())

	_, _, err = cli(t, vars, "", "mailbox", "update", "--imap-host", "localhost", "--imap-port", port, addr)
	if err == nil || !strings.Contains(err.Error(), "--imap-host: localhost is not a mail server of microsoft") {
		t.Fatalf("update to an untrusted host: %v, want it refused naming --imap-host", err)
	}
	if au, _ := db.MailboxAuth(ctx, mb.ID); au.RefreshTokenSealed == "" {
		t.Fatal("a refused update forgot the tokens")
	}

	out, _, err = cli(t, vars, "", "mailbox", "update", "--imap-port", port, addr)
	if err != nil || !strings.Contains(out, "sign-in forgotten: The IMAP server changed from "+legit.Addr()+" (none) to "+attack.Addr()+" (none)") ||
		!strings.Contains(out, "reconnect it in Admin -> Emails") {
		t.Fatalf("update to another port: %v\n%s", err, out)
	}
	if au, _ := db.MailboxAuth(ctx, mb.ID); au.RefreshTokenSealed != "" || au.AccessTokenSealed != "" || au.State != store.AuthNeedsReauth {
		t.Fatalf("after the port change: state %s, tokens kept %v", au.State, au.RefreshTokenSealed != "" || au.AccessTokenSealed != "")
	}
	if err := svc.RefreshNow(ctx, mb.ID); err == nil {
		t.Error("a forgotten sign-in was refreshed")
	}
	runSync(time.Second, never)
	out, _, err = cli(t, vars, "", "mailbox", "show", addr)
	if err != nil || !strings.Contains(out, "forgot the mailbox's sign-in") {
		t.Errorf("mailbox show does not say the sign-in was forgotten: %v\n%s", err, out)
	}

	// Control: on the trusted server and connected again, the sync sends
	// the token there, and a refreshed one after the refusal.
	if out, _, err = cli(t, vars, "", "mailbox", "update", "--imap-port", strconv.Itoa(legit.Port()), addr); err != nil || strings.Contains(out, "forgotten") {
		t.Fatalf("back to the trusted port: %v\n%s", err, out)
	}
	connect()
	runSync(15*time.Second, func() bool { return len(legit.Bearers()) >= 2 })
	if n := len(legit.Bearers()); n < 2 {
		t.Fatalf("the trusted server received %d bearer tokens, want 2 (received %q)", n, legit.Received())
	}
	if n, got := attack.Connections(), attack.Bearers(); n > 0 || len(got) > 0 {
		t.Fatalf("the other server was connected to %d times and received %d bearer tokens", n, len(got))
	}
}
