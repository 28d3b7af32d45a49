package smtpsend

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
)

// SendWhen sends everything but the end of data before asking ready, and
// sends the end only if ready says so: a message whose ready fails never
// reaches the server, and the connection is not used again.
func TestSendWhen(t *testing.T) {
	t.Parallel()
	var rcpts atomic.Int32
	f := startFake(t, func(f *fakeServer) {
		f.rcpt = func(string) error { rcpts.Add(1); return nil }
	})
	c := dialFake(t, f)
	first := testMessage(testUser, "jane@example.net", "first")
	calls := 0
	err := c.SendWhen(t.Context(), testUser, []string{"jane@example.net"}, first, func() error {
		calls++
		if rcpts.Load() != 1 {
			t.Errorf("ready called before the recipient was given (%d)", rcpts.Load())
		}
		if n := len(f.received()); n != 0 {
			t.Errorf("ready called after the server took %d messages", n)
		}
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("SendWhen: %v, ready called %d times", err, calls)
	}
	if got := f.received(); len(got) != 1 || !bytes.Equal(got[0].raw, first) {
		t.Fatalf("server received %d messages, want the first", len(got))
	}

	notReady := errors.New("attempt not recorded")
	second := testMessage(testUser, "jane@example.net", "second")
	err = c.SendWhen(t.Context(), testUser, []string{"jane@example.net"}, second, func() error { return notReady })
	e := wantError(t, err, KindTemporary, StageData, 0, "")
	if !errors.Is(e, notReady) {
		t.Errorf("error %v does not wrap ready's", err)
	}
	if c.Usable() {
		t.Fatal("connection usable after a message was cut off before its end")
	}
	wantError(t, c.Send(t.Context(), testUser, []string{"jane@example.net"}, second), KindTemporary, StageConnect, 0, "")

	third := testMessage(testUser, "jane@example.net", "third")
	c = dialFake(t, f)
	if err := c.SendWhen(t.Context(), testUser, []string{"jane@example.net"}, third, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	got := f.received()
	if len(got) != 2 || !bytes.Equal(got[1].raw, third) {
		t.Fatalf("server received %d messages, want the first and the third (never the second)", len(got))
	}
}
