package mailtest

import (
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/sasl"
)

// TestIMAPAuth logs in over IMAP with every mechanism Postdesk uses, against
// tokens introspected at the stack's fakeidp.
func TestIMAPAuth(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	const agent = "agent@example.com"

	t.Run("xoauth2", func(t *testing.T) {
		c, err := imapLogin(t, s.IMAPAddr, sasl.NewXOAuth2Client(agent, mustToken(t, s, agent)), nil)
		if err != nil {
			t.Fatalf("XOAUTH2: %v", err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		const user = "revoked@example.com"
		tok := mustToken(t, s, user)
		if err := s.IdP.Revoke(user); err != nil {
			t.Fatal(err)
		}
		x := sasl.NewXOAuth2Client(user, tok)
		_, err := imapLogin(t, s.IMAPAddr, x, nil)
		wantAuthFailed(t, err)
		f := x.Failure()
		if f == nil || f.Malformed || f.Status == "" {
			t.Fatalf("Failure() = %+v, want the server's JSON error", f)
		}
		t.Logf("server's error: status=%q schemes=%q scope=%q", f.Status, f.Schemes, f.Scope)
		// Signing in again gives a token that works (nothing is cached).
		if _, err := imapLogin(t, s.IMAPAddr, sasl.NewXOAuth2Client(user, mustToken(t, s, user)), nil); err != nil {
			t.Fatalf("new token after revoke: %v", err)
		}
	})
	t.Run("other account's token", func(t *testing.T) {
		x := sasl.NewXOAuth2Client(agent, mustToken(t, s, "intruder@example.com"))
		_, err := imapLogin(t, s.IMAPAddr, x, nil)
		wantAuthFailed(t, err)
		if x.Failure() == nil {
			t.Error("no Failure() from the server")
		}
	})
	t.Run("oauthbearer", func(t *testing.T) {
		host, port := splitAddr(t, s.IMAPAddr)
		c := sasl.NewOAuthBearerClient(agent, mustToken(t, s, agent), host, port)
		if _, err := imapLogin(t, s.IMAPAddr, c, nil); err != nil {
			t.Fatalf("OAUTHBEARER: %v", err)
		}
		bad := sasl.NewOAuthBearerClient(agent, "not-a-token", host, port)
		_, err := imapLogin(t, s.IMAPAddr, bad, nil)
		wantAuthFailed(t, err)
		if bad.Failure() == nil {
			t.Error("no Failure() from the server")
		}
	})
	t.Run("plain password user", func(t *testing.T) {
		const user = "Support@Example.org"
		if err := s.AddPasswordUser(user, "s3cret"); err != nil {
			t.Fatal(err)
		}
		if _, err := imapLogin(t, s.IMAPAddr, sasl.NewPlainClient("", user, "s3cret"), nil); err != nil {
			t.Fatalf("PLAIN: %v", err)
		}
		_, err := imapLogin(t, s.IMAPAddr, sasl.NewPlainClient("", user, "wrong"), nil)
		wantAuthFailed(t, err)
		// A changed password is seen at the next login, even within the same second.
		if err := s.AddPasswordUser(user, "n3wpw!"); err != nil {
			t.Fatal(err)
		}
		if _, err := imapLogin(t, s.IMAPAddr, sasl.NewPlainClient("", user, "n3wpw!"), nil); err != nil {
			t.Fatalf("PLAIN after password change: %v", err)
		}
		_, err = imapLogin(t, s.IMAPAddr, sasl.NewPlainClient("", user, "s3cret"), nil)
		wantAuthFailed(t, err)
	})
	t.Run("master user only through authzid", func(t *testing.T) {
		// The helpers' master login must not be usable as a plain login.
		_, err := imapLogin(t, s.IMAPAddr, sasl.NewPlainClient("", s.masterUser, s.masterPass), nil)
		wantAuthFailed(t, err)
		if strings.Contains(s.Logs(), s.masterPass) {
			t.Error("the master password is in the logs")
		}
	})
}
