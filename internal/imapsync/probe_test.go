package imapsync

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/mailtest"
)

// TestProbeSteps: Probe names the step that failed, against a real
// Dovecot and against ports that answer wrongly or not at all.
func TestProbeSteps(t *testing.T) {
	const user, pw = "help@corp.example", "right-pw"
	stack := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{user: pw}})
	ctx := context.Background()
	base := Config{Addr: stack.IMAPAddr, Security: SecurityNone, Username: user, Auth: AuthPlain, Logger: testLogger(t)}
	with := func(pass string, change func(*Config)) Config {
		c := base
		c.Password = func(context.Context) (string, error) { return pass, nil }
		if change != nil {
			change(&c)
		}
		return c
	}
	if err := Probe(ctx, with(pw, nil)); err != nil {
		t.Fatalf("probe of a working mailbox: %v", err)
	}

	// A port that accepts and says nothing IMAP; a port nobody listens on.
	junk, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	go func() {
		for {
			c, err := junk.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("220 this is SMTP, not IMAP\r\n"))
			c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name       string
		cfg        Config
		step       ProbeStep
		folder     string
		serverText string
	}{
		{"wrong password", with("wrong-pw", nil), StepAuth, "", "uthentication failed"},
		{"missing folder", with(pw, func(c *Config) { c.Folders = []string{"INBOX", "Nope"} }), StepFolder, "Nope", "Mailbox doesn't exist"},
		{"missing move-to folder", with(pw, func(c *Config) { c.AfterProcessing, c.MoveTo = ActionMove, "Done" }), StepFolder, "Done", ""},
		{"no such host", with(pw, func(c *Config) {
			c.Addr, c.Security, c.Resolver = "imap.postdesk-test.invalid:993", SecurityTLS, mailtest.NoSuchHost()
		}), StepDNS, "", ""},
		{"nothing listens", with(pw, func(c *Config) { c.Addr = closedAddr }), StepTCP, "", ""},
		{"not IMAP", with(pw, func(c *Config) { c.Addr = junk.Addr().String() }), StepGreeting, "", ""},
		{"TLS to a plain server", with(pw, func(c *Config) { c.Addr, c.Security = stack.IMAPAddr, SecurityTLS }), StepTLS, "", ""},
		// Dovecot with ssl = no answers STARTTLS with an IMAP refusal: the
		// server is IMAP, its TLS is what is missing.
		{"STARTTLS to a plain server", with(pw, func(c *Config) { c.Addr, c.Security = stack.IMAPAddr, SecurityStartTLS }), StepTLS, "", "TLS support isn't enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Probe(ctx, tc.cfg)
			var pe *ProbeError
			if !errors.As(err, &pe) {
				t.Fatalf("Probe = %v, want a *ProbeError", err)
			}
			if pe.Step != tc.step || pe.Folder != tc.folder || !strings.Contains(pe.ServerText, tc.serverText) {
				t.Fatalf("Probe = step %q folder %q server %q (%v), want %q %q %q", pe.Step, pe.Folder, pe.ServerText, err, tc.step, tc.folder, tc.serverText)
			}
		})
	}
}
