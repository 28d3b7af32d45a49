package mailtest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/sasl"
)

// TestTwoStacksRestartStop runs two stacks at once (started concurrently),
// restarts Dovecot under an open session, and checks that Stop leaves no
// process, listener or folder behind.
func TestTwoStacksRestartStop(t *testing.T) {
	t.Parallel()
	if err := CheckInstalled(Options{}); err != nil {
		t.Skip(err)
	}
	ctx := testCtx(t)
	stacks := make([]*Stack, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stacks {
		wg.Go(func() {
			began := time.Now()
			stacks[i], errs[i] = StartStack(ctx, Options{})
			t.Logf("stack %d started in %v", i, time.Since(began).Round(time.Millisecond))
		})
	}
	wg.Wait()
	for i, s := range stacks {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { s.Stop() })
	}
	a, b := stacks[0], stacks[1]
	seen := map[string]bool{}
	for _, addr := range []string{a.IMAPAddr, a.LMTPAddr, a.DovecotSubmissionAddr, a.IdPURL, b.IMAPAddr, b.LMTPAddr, b.DovecotSubmissionAddr, b.IdPURL} {
		if seen[addr] {
			t.Fatalf("address %s used twice", addr)
		}
		seen[addr] = true
	}

	const user = "support@example.com"
	raw := testMessage("customer@example.net", user, "only in A")
	if err := a.Deliver(ctx, user, raw); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Messages(ctx, user, "INBOX"); err != nil || len(got) != 0 {
		t.Fatalf("stack B has %d messages (err %v), want 0", len(got), err)
	}
	// Tokens of one stack's IdP are unknown to the other's.
	if _, err := imapLogin(t, b.IMAPAddr, sasl.NewXOAuth2Client(user, mustToken(t, a, user)), nil); err == nil {
		t.Fatal("stack A's token logged in to stack B")
	}

	t.Run("restart", func(t *testing.T) {
		c, err := imapLogin(t, a.IMAPAddr, sasl.NewXOAuth2Client(user, mustToken(t, a, user)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if err := a.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("Dovecot restarted in %v", time.Since(began).Round(time.Millisecond))
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
			t.Fatal("the open session survived the restart")
		}
		got, err := a.Messages(ctx, user, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		wantSameRaw(t, got, [][]byte{raw})

		if err := a.StopDovecot(); err != nil {
			t.Fatal(err)
		}
		if listening(a.IMAPAddr) {
			t.Fatal("IMAP still listening after StopDovecot")
		}
		if err := a.Deliver(ctx, user, raw); err == nil {
			t.Fatal("delivered with Dovecot stopped")
		}
		if err := a.StartDovecot(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := imapLogin(t, a.IMAPAddr, sasl.NewXOAuth2Client(user, mustToken(t, a, user)), nil); err != nil {
			t.Fatalf("login after StartDovecot: %v", err)
		}
	})

	t.Run("stop", func(t *testing.T) {
		if len(processesIn(a.Dir)) == 0 {
			t.Fatal("found no process of the running stack: the check is broken")
		}
		began := time.Now()
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Logf("stopped in %v", time.Since(began).Round(time.Millisecond))
		if pids := processesIn(a.Dir); len(pids) > 0 {
			t.Errorf("processes left running: %v", pids)
		}
		for _, addr := range []string{a.IMAPAddr, a.LMTPAddr, a.IdPURL[len("http://"):]} {
			if listening(addr) {
				t.Errorf("%s still listening", addr)
			}
		}
		if _, err := os.Stat(a.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("instance folder left: %v", err)
		}
		if err := a.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if err := a.StartDovecot(context.Background()); err == nil {
			t.Error("StartDovecot after Stop succeeded")
		}
		// B is untouched.
		if _, err := b.Messages(ctx, user, "INBOX"); err != nil {
			t.Fatalf("stack B after A stopped: %v", err)
		}
	})
}

// TestStopPostfix checks the same for Postfix's processes.
func TestStopPostfix(t *testing.T) {
	t.Parallel()
	if err := CheckInstalled(Options{Postfix: true}); err != nil {
		t.Skip(err)
	}
	s, err := StartStack(testCtx(t), Options{Postfix: true, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := readPidFile(s.postfixPidFile())
	if err != nil || !s.ownsPostfix(pid) {
		s.Stop()
		t.Fatalf("postfix master %d (err %v) not recognised as this instance's", pid, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if pids := processesIn(s.Dir); len(pids) > 0 {
		t.Errorf("processes left running: %v", pids)
	}
	if listening(s.SMTPAddr) || listening(s.SubmissionAddr) || listening(s.SubmissionsAddr) {
		t.Error("postfix still listening")
	}
}

// TestPortClash starts a second instance on the first one's ports: Dovecot
// refuses to bind them, and Postfix, which binds with SO_REUSEPORT and would
// silently share them, is caught by the listener count. StartStack retries
// such a start on other ports.
func TestPortClash(t *testing.T) {
	t.Parallel()
	a := Start(t, Options{Postfix: true})
	b := &Stack{opts: Options{Postfix: true}, users: map[string]string{}}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := b.makeDir(); err != nil {
		t.Fatal(err)
	}
	b.cfg = a.cfg
	b.cfg.Root, b.cfg.Instance = b.Dir, a.cfg.Instance+"-b"
	b.IMAPAddr, b.LMTPAddr, b.SMTPAddr, b.SubmissionAddr = a.IMAPAddr, a.LMTPAddr, a.SMTPAddr, a.SubmissionAddr
	if err := b.writeUsers(); err != nil {
		t.Fatal(err)
	}
	if err := writeConfig(b.cfg); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	began := time.Now()
	if err := b.startDovecot(ctx); !errors.Is(err, errPortInUse) {
		t.Errorf("dovecot on taken ports: %v, want errPortInUse", err)
	}
	t.Logf("dovecot refused in %v", time.Since(began))
	began = time.Now()
	if err := b.startPostfix(ctx); !errors.Is(err, errPortInUse) {
		t.Errorf("postfix on taken ports: %v, want errPortInUse", err)
	}
	t.Logf("postfix refused in %v", time.Since(began))
	if err := b.stopPostfix(); err != nil {
		t.Fatal(err)
	}
	if n := listeners(a.cfg.SMTPPort); n != 1 {
		t.Errorf("%d listeners on A's SMTP port after B stopped, want 1", n)
	}
	t.Logf("b stopped at %v", time.Since(began))
	// A still works.
	raw := testMessage("customer@example.net", "clash@example.com", "still A")
	if err := a.SendSMTP(ctx, "customer@example.net", []string{"clash@example.com"}, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitMessages(ctx, "clash@example.com", "INBOX", 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("delivered at %v", time.Since(began))
}
