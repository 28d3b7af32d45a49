package imapsync

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestFetchOrderAndCheckpoint(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	in := msgs("a", 10, time.Hour)
	ms.appendMsgs(t, "INBOX", in)
	st := newStore(t)
	cfg := memConfig(t, ms)

	n, err := SyncOnce(t.Context(), cfg, st)
	if err != nil || n != 10 {
		t.Fatalf("SyncOnce = %d, %v; want 10", n, err)
	}
	wantUIDs(t, st.uids(), seq(1, 10)...)
	for i, g := range st.all() {
		if !bytes.Equal(g.Body, in[i].raw()) {
			t.Errorf("uid %d body %q, want %q", g.UID, g.Body, in[i].raw())
		}
		if g.Size != int64(len(in[i].raw())) || !g.InternalDate.Equal(in[i].date) || g.Truncated {
			t.Errorf("uid %d: size %d date %v truncated %v", g.UID, g.Size, g.InternalDate, g.Truncated)
		}
	}
	uv := ms.uidValidity(t, "INBOX")
	if cp := st.checkpoint("INBOX"); cp != (Checkpoint{"INBOX", uv, 10}) {
		t.Errorf("checkpoint %+v", cp)
	}

	// Nothing new: "UID FETCH 11:*" returns the last message, which must
	// not be handed over again.
	if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 0 {
		t.Fatalf("second SyncOnce = %d, %v; want 0", n, err)
	}
	ms.appendMsgs(t, "INBOX", msgs("b", 3, time.Minute))
	if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 3 {
		t.Fatalf("third SyncOnce = %d, %v; want 3", n, err)
	}
	wantUIDs(t, st.uids(), seq(1, 13)...)
	st.check()
}

func TestHandleErrorResumesAtCheckpoint(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	ms.appendMsgs(t, "INBOX", msgs("a", 10, time.Hour))
	st := newStore(t)
	errDB := errors.New("database is locked")
	failed := false
	st.hook = func(m *Message) error {
		if m.UID == 4 && !failed {
			failed = true
			return errDB
		}
		return nil
	}
	cfg := memConfig(t, ms)
	n, err := SyncOnce(t.Context(), cfg, st)
	if !errors.Is(err, errDB) || n != 3 {
		t.Fatalf("SyncOnce = %d, %v; want 3, %v", n, err, errDB)
	}
	if cp := st.checkpoint("INBOX"); cp.LastUID != 3 {
		t.Fatalf("checkpoint %+v, want LastUID 3", cp)
	}
	n, err = SyncOnce(t.Context(), cfg, st)
	if err != nil || n != 7 {
		t.Fatalf("second SyncOnce = %d, %v; want 7", n, err)
	}
	wantUIDs(t, st.uids(), seq(1, 10)...)
	st.check()
}

func TestFirstConnect(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	day := 24 * time.Hour
	now := time.Now().Truncate(time.Second)
	// UID order is not date order (a migrated message keeps its old date).
	ms.appendMsgs(t, "INBOX", []testMsg{
		{id: "d40", date: now.Add(-40 * day)},
		{id: "d5", date: now.Add(-5 * day)},
		{id: "d20", date: now.Add(-20 * day)},
		{id: "d1", date: now.Add(-1 * day)},
		{id: "d41", date: now.Add(-41 * day)},
		{id: "d2", date: now.Add(-2 * day)},
	})

	t.Run("InitialDays", func(t *testing.T) {
		st := newStore(t)
		cfg := memConfig(t, ms)
		cfg.InitialDays = 10
		if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 3 {
			t.Fatalf("SyncOnce = %d, %v; want 3", n, err)
		}
		wantUIDs(t, st.uids(), 2, 4, 6)
		if len(st.skipped) != 0 {
			t.Errorf("skipped %v: older mail on first connect is not reported", st.skipped)
		}
		if cp := st.checkpoint("INBOX"); cp.LastUID != 6 {
			t.Errorf("checkpoint %+v", cp)
		}
		st.check()
	})
	t.Run("OnlyNew", func(t *testing.T) {
		st := newStore(t)
		cfg := memConfig(t, ms)
		cfg.InitialDays = 0
		if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 0 {
			t.Fatalf("SyncOnce = %d, %v; want 0", n, err)
		}
		uv := ms.uidValidity(t, "INBOX")
		if cp := st.checkpoint("INBOX"); cp != (Checkpoint{"INBOX", uv, 6}) {
			t.Fatalf("checkpoint %+v", cp)
		}
		ms.appendMsgs(t, "INBOX", []testMsg{{id: "new", date: now}})
		if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 1 {
			t.Fatalf("SyncOnce = %d, %v; want 1", n, err)
		}
		wantUIDs(t, st.uids(), 7)
	})
}

func TestMaxAgeSkipsAndReports(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	day := 24 * time.Hour
	now := time.Now().Truncate(time.Second)
	ms.appendMsgs(t, "INBOX", []testMsg{
		{id: "1", date: now.Add(-100 * day)},
		{id: "2", date: now.Add(-1 * day)},
		{id: "3", date: now.Add(-95 * day)},
		{id: "4", date: now.Add(-91 * day)},
		{id: "5", date: now.Add(-89 * day)},
	})
	st := newStore(t)
	// After an outage: the checkpoint is from long ago.
	st.setCheckpoint(Checkpoint{"INBOX", ms.uidValidity(t, "INBOX"), 0})
	if n, err := SyncOnce(t.Context(), memConfig(t, ms), st); err != nil || n != 2 {
		t.Fatalf("SyncOnce = %d, %v; want 2", n, err)
	}
	wantUIDs(t, st.uids(), 2, 5)
	wantUIDs(t, st.skipped, 1, 3, 4)
	if cp := st.checkpoint("INBOX"); cp.LastUID != 5 {
		t.Errorf("checkpoint %+v", cp)
	}
	st.check()
}

func TestUIDValidityChangeRescans(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	c := ms.client(t)
	if err := c.Create("Support", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	in := msgs("s", 5, time.Hour)
	ms.appendMsgs(t, "Support", in)
	st := newStore(t)
	cfg := memConfig(t, ms)
	cfg.Folders = []string{"Support"}
	if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 5 {
		t.Fatalf("SyncOnce = %d, %v", n, err)
	}
	old := st.checkpoint("Support").UIDValidity

	// The folder is recreated with the same messages and one more.
	if err := c.Delete("Support").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Support", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	ms.appendMsgs(t, "Support", append(in, msgs("t", 1, time.Minute)...))
	if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 6 {
		t.Fatalf("SyncOnce after recreate = %d, %v; want 6", n, err)
	}
	if st.resets != 1 {
		t.Errorf("resets = %d, want 1", st.resets)
	}
	cp := st.checkpoint("Support")
	if cp.UIDValidity == old || cp.LastUID != 6 {
		t.Errorf("checkpoint %+v, old uidvalidity %d", cp, old)
	}
	unique := map[string]bool{}
	for _, g := range st.all() {
		unique[g.MessageID] = true
	}
	if len(unique) != 6 {
		t.Errorf("%d unique messages, want 6", len(unique))
	}
	st.check()
}

func TestOversizedMessageTruncated(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	big := testMsg{id: "big", date: time.Now().Truncate(time.Second), pad: 5000}
	ms.appendMsgs(t, "INBOX", []testMsg{{id: "small", date: big.date}, big, {id: "small2", date: big.date}})
	st := newStore(t)
	cfg := memConfig(t, ms)
	cfg.MaxMessageBytes = 1000
	if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 3 {
		t.Fatalf("SyncOnce = %d, %v", n, err)
	}
	wantUIDs(t, st.uids(), 1, 2, 3)
	g := st.all()[1]
	raw := big.raw()
	header, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !g.Truncated || g.Size != int64(len(raw)) || string(g.Body) != string(header)+"\r\n\r\n" {
		t.Errorf("big message: truncated %v size %d body %q", g.Truncated, g.Size, g.Body)
	}
	if st.all()[0].Truncated || st.all()[2].Truncated {
		t.Error("small message truncated")
	}
}

func TestAfterProcessing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		caps   []imap.Cap
		action Action
	}{
		{"seen", nil, ActionSeen},
		{"move", []imap.Cap{imap.CapMove, imap.CapUIDPlus}, ActionMove},
		{"copy-expunge", []imap.Cap{imap.CapUIDPlus}, ActionMove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ms := startMemServer(t, tc.caps...)
			ms.appendMsgs(t, "INBOX", msgs("a", 4, time.Hour))
			st := newStore(t)
			cfg := memConfig(t, ms)
			cfg.AfterProcessing, cfg.MoveTo = tc.action, "Processed"
			if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 4 {
				t.Fatalf("SyncOnce = %d, %v", n, err)
			}
			c := ms.client(t)
			folder := "INBOX"
			if tc.action == ActionMove {
				folder = "Processed"
				if sel, err := c.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != 0 {
					t.Fatalf("INBOX after move: %+v, %v", sel, err)
				}
			}
			if _, err := c.Select(folder, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			bufs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4), &imap.FetchOptions{Flags: true}).Collect()
			if err != nil || len(bufs) != 4 {
				t.Fatalf("fetch %s: %d messages, %v", folder, len(bufs), err)
			}
			for _, b := range bufs {
				seen := false
				for _, f := range b.Flags {
					seen = seen || f == imap.FlagSeen
				}
				if seen != (tc.action == ActionSeen) {
					t.Errorf("%s message %d flags %v", folder, b.SeqNum, b.Flags)
				}
			}
			// Moved messages are gone from INBOX; the next sync fetches nothing.
			if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 0 {
				t.Fatalf("second SyncOnce = %d, %v", n, err)
			}
		})
	}
}

func TestLeaveOpensReadOnly(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	ms.appendMsgs(t, "INBOX", msgs("a", 2, time.Hour))
	if _, err := SyncOnce(t.Context(), memConfig(t, ms), newStore(t)); err != nil {
		t.Fatal(err)
	}
	c := ms.client(t)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	bufs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bufs {
		if len(b.Flags) != 0 {
			t.Errorf("message %d flags %v, want none (BODY.PEEK)", b.SeqNum, b.Flags)
		}
	}
}

func TestPasswordRefused(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	for _, auth := range []AuthMethod{AuthPlain, AuthLogin} {
		cfg := memConfig(t, ms)
		cfg.Auth = auth
		cfg.Password = func(context.Context) (string, error) { return "wrong", nil }
		_, err := SyncOnce(t.Context(), cfg, newStore(t))
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Failure != nil {
			t.Fatalf("%s: err = %v, want *AuthError", auth, err)
		}
		// Run gives up too, reporting auth_failed.
		var kinds []EventKind
		err = Run(t.Context(), &cfg, newStore(t), func(e Event) { kinds = append(kinds, e.Kind) })
		if !errors.As(err, &ae) || len(kinds) != 1 || kinds[0] != EventAuthFailed {
			t.Fatalf("%s: Run = %v, events %v", auth, err, kinds)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tok := func(context.Context) (string, error) { return "t", nil }
	base := Config{Addr: "imap.example.com:993", Username: "a@example.com", Auth: AuthXOAuth2, Token: tok}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"no addr", func(c *Config) { c.Addr = "" }, "no server address"},
		{"no port", func(c *Config) { c.Addr = "imap.example.com" }, "address"},
		{"clear text remote", func(c *Config) { c.Security = SecurityNone }, "loopback"},
		{"clear text loopback", func(c *Config) { c.Security, c.Addr = SecurityNone, "127.0.0.1:143" }, ""},
		{"no token", func(c *Config) { c.Token = nil }, "Token"},
		{"no password", func(c *Config) { c.Auth = AuthPlain }, "Password"},
		{"unknown auth", func(c *Config) { c.Auth = "ntlm" }, "unknown auth"},
		{"move nowhere", func(c *Config) { c.AfterProcessing = ActionMove }, "MoveTo"},
		{"move into itself", func(c *Config) { c.AfterProcessing, c.MoveTo = ActionMove, "inbox" }, "synced folder"},
	} {
		c := base
		tc.change(&c)
		got, err := c.normalize()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		case tc.want == "" && (got.Security != SecurityTLS && got.Security != SecurityNone || got.Folders[0] != "INBOX" || got.MaxAge != DefaultMaxAge):
			t.Errorf("%s: defaults not set: %+v", tc.name, got)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := backoff{min: time.Second, max: 5 * time.Minute}
	prevMax := time.Duration(0)
	for i := range 20 {
		d := b.next()
		ceil := min(time.Second<<i, 5*time.Minute)
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: %v not in [%v, %v]", i, d, ceil/2, ceil)
		}
		prevMax = ceil
	}
	if prevMax != 5*time.Minute {
		t.Errorf("max %v", prevMax)
	}
	b.reset()
	if d := b.next(); d > time.Second {
		t.Errorf("after reset: %v", d)
	}
}
