package oauth_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// One refresh token serves both resources: a mailbox that fetches through
// Graph and sends over SMTP is granted both resources' scopes at sign-in,
// and the mail servers' and Graph's access tokens are refreshed through
// the one gate. With callers of both asking at once, every cycle after
// cycle, no refresh token is ever presented twice, each caller gets a
// token for its own resource, and both are kept side by side.
func TestGraphAndMailTokensShareOneRefreshToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, slowIdP(200*time.Millisecond))
		if err := db.Write(e.ctx, func(tx *store.Tx) error {
			return tx.PutMailboxServer(e.ctx, store.MailboxServer{MailboxID: e.mb.ID, IMAPHost: "outlook.office365.com", IMAPPort: 993,
				IMAPSecurity: "tls", SMTPHost: "smtp.office365.com", SMTPPort: 587, AuthMethod: "xoauth2", Enabled: true,
				FetchTransport: store.TransportGraph, SendTransport: store.TransportSMTP})
		}); err != nil {
			t.Fatal(err)
		}
		e.connect(e.mb)
		a, err := db.MailboxAuth(e.ctx, e.mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"https://graph.microsoft.com/Mail.ReadWrite", "https://outlook.office.com/SMTP.Send", "offline_access"} {
			if !slices.Contains(a.Granted(), s) {
				t.Fatalf("the sign-in did not ask for %s: %v", s, a.Granted())
			}
		}
		if slices.Contains(a.Granted(), "https://graph.microsoft.com/Mail.Send") {
			t.Errorf("sending over SMTP, yet the sign-in asked for Graph's Mail.Send: %v", a.Granted())
		}
		graph := e.svc.GraphTokenFunc(e.mb.ID)
		for cycle := range 3 {
			e.clock.Advance(56 * time.Minute) // the hour's tokens are due
			calls := []func() (string, error){
				func() (string, error) { return e.svc.TokenFor(e.ctx, e.mb.ID) },
				func() (string, error) { return graph(e.ctx, false) },
				func() (string, error) { return e.svc.FreshToken(e.ctx, e.mb.ID) },
				func() (string, error) { return graph(e.ctx, true) },
				func() (string, error) { return graph(e.ctx, false) },
			}
			wantGraph := []bool{false, true, false, true, true}
			tokens := make([]string, len(calls))
			errs := make([]error, len(calls))
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i, call := range calls {
				wg.Go(func() {
					<-gate
					tokens[i], errs[i] = call()
				})
			}
			close(gate)
			wg.Wait()
			for i := range calls {
				if errs[i] != nil {
					t.Fatalf("cycle %d: caller %d: %v", cycle, i, errs[i])
				}
				info, ok := e.idp.AccessTokenInfo(tokens[i])
				if !ok {
					t.Fatalf("cycle %d: caller %d got a token the stand-in does not know", cycle, i)
				}
				if isGraph := info.Audience == "https://graph.microsoft.com"; isGraph != wantGraph[i] {
					t.Errorf("cycle %d: caller %d got a token for %s", cycle, i, info.Audience)
				}
			}
			e.noReuse()
		}
		a, err = db.MailboxAuth(e.ctx, e.mb.ID)
		if err != nil || a.AccessTokenSealed == "" || a.GraphAccessTokenSealed == "" || a.State != store.AuthOK {
			t.Errorf("after the cycles: mail token %v, Graph token %v, state %s, %v", a.AccessTokenSealed != "", a.GraphAccessTokenSealed != "", a.State, err)
		}
		if _, err := e.svc.GraphClient(e.ctx, e.mb.ID); err != nil {
			t.Errorf("Graph client: %v", err)
		}
	})
}
